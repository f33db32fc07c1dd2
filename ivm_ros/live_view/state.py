"""The newest frame of each stream, the current instruction and the latest diagnostics, shared between the
thread that receives them and the threads that serve them; JPEG snapshots are made on demand, once per frame."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Protocol

import cv2
import numpy as np

#: The three image streams a view shows, left to right.
STREAMS = ("camera", "mask", "masked")
#: encoding -> cv2 conversion to BGR (None: already BGR); unknown encodings are not shown.
_TO_BGR = {"rgb8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGBA2BGR, "bgr8": None, "8UC3": None,
           "bgra8": cv2.COLOR_BGRA2BGR, "mono8": None, "8UC1": None}


class ViewSink(Protocol):
    """What a view receives: frames, the instruction, diagnostics (a list of status dicts: name, level, message,
    values); ``close`` stops its server."""

    def put_frame(self, stream: str, array: np.ndarray, encoding: str, stamp_ns: int = 0, frame_id: str = "") -> None:
        ...

    def set_instruction(self, text: str) -> None:
        ...

    def set_diagnostics(self, statuses: list[dict[str, Any]]) -> None:
        ...

    def close(self) -> None:
        ...


def to_bgr(array: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W, 3) BGR or (H, W) grey uint8 for cv2; raises ValueError for an encoding it cannot show."""
    if encoding not in _TO_BGR:
        raise ValueError(f"cannot show encoding {encoding!r}; one of {sorted(_TO_BGR)}")
    code = _TO_BGR[encoding]
    out = array if code is None else cv2.cvtColor(array, code)
    return out[..., 0] if out.ndim == 3 and out.shape[2] == 1 else out


def encode_jpeg(array: np.ndarray, encoding: str, quality: int = 80, max_width: int = 0) -> bytes:
    """A JPEG of the frame, scaled down to ``max_width`` pixels wide when it is wider (0: full size)."""
    bgr = to_bgr(array, encoding)
    if max_width and bgr.shape[1] > max_width:
        h = max(1, round(bgr.shape[0] * max_width / bgr.shape[1]))
        bgr = cv2.resize(bgr, (max_width, h), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class RateGate:
    """At most ``rate_hz`` accepted events per key (0: all): :meth:`ready` says whether one may be taken now, so
    a 30 Hz camera costs a viewer only the frames it shows. Counts what it skipped."""

    def __init__(self, rate_hz: float) -> None:
        self.period = 1.0 / rate_hz if rate_hz > 0 else 0.0
        self._last: dict[str, float] = {}
        self.skipped: dict[str, int] = {}

    def ready(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._last.get(key, -1e18) < self.period:
            self.skipped[key] = self.skipped.get(key, 0) + 1
            return False
        self._last[key] = now
        return True


@dataclasses.dataclass
class Snapshot:
    """One stream's newest frame (a private copy) and, once asked for, its JPEG."""

    seq: int
    array: np.ndarray
    encoding: str
    stamp_ns: int
    frame_id: str
    received: float  # time.monotonic()
    jpeg: bytes | None = None


class LiveState:
    """The web view's model (a :class:`ViewSink`): thread-safe, newest-only; :meth:`jpeg` encodes a frame the
    first time it is asked for and caches it; :meth:`as_dict` is what the page polls."""

    def __init__(self, jpeg_quality: int = 80, max_width: int = 640, poll_ms: int = 250) -> None:
        self.jpeg_quality, self.max_width, self.poll_ms = jpeg_quality, max_width, poll_ms
        self._lock = threading.Lock()
        self._frames: dict[str, Snapshot] = {}
        self._seq = 0
        self._instruction: tuple[str, float] | None = None  # (text, time.time() it arrived)
        self._diagnostics: dict[str, dict[str, Any]] = {}  # by status name, newest of each
        self.topics: dict[str, str] = {}  # stream or "instruction" -> its ROS topic (shown on the page)

    def put_frame(self, stream: str, array: np.ndarray, encoding: str, stamp_ns: int = 0, frame_id: str = "") -> None:
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}; one of {STREAMS}")
        copy = np.array(array, copy=True)  # the message's buffer goes back to the middleware
        with self._lock:
            self._seq += 1
            self._frames[stream] = Snapshot(self._seq, copy, encoding, stamp_ns, frame_id, time.monotonic())

    def set_instruction(self, text: str) -> None:
        with self._lock:
            self._instruction = (text, time.time())

    def set_diagnostics(self, statuses: list[dict[str, Any]]) -> None:
        with self._lock:
            for status in statuses:
                self._diagnostics[status["name"]] = {**status, "received": time.time()}

    def close(self) -> None:
        """Nothing to stop (the HTTP server is closed by its owner)."""

    def jpeg(self, stream: str) -> tuple[int, bytes] | None:
        """(seq, JPEG bytes) of the stream's newest frame, or None before the first one."""
        with self._lock:
            snap = self._frames.get(stream)
        if snap is None:
            return None
        if snap.jpeg is None:  # two requests may both encode the same frame: harmless, and no lock held meanwhile
            snap.jpeg = encode_jpeg(snap.array, snap.encoding, self.jpeg_quality, self.max_width)
        return snap.seq, snap.jpeg

    def as_dict(self) -> dict[str, Any]:
        """Everything the page shows but the pixels: per stream its seq, size, encoding, stamp and age; the
        instruction; the diagnostics; the poll period."""
        now = time.monotonic()
        with self._lock:
            frames = {name: {"seq": s.seq, "width": int(s.array.shape[1]), "height": int(s.array.shape[0]),
                             "encoding": s.encoding, "stamp": s.stamp_ns * 1e-9, "frame_id": s.frame_id,
                             "age_s": round(now - s.received, 3)} for name, s in self._frames.items()}
            instruction = self._instruction
            diagnostics = sorted(self._diagnostics.values(), key=lambda d: d["name"])
        return {"frames": frames, "instruction": instruction[0] if instruction else "",
                "instruction_time": instruction[1] if instruction else None,
                "diagnostics": diagnostics, "topics": dict(self.topics), "poll_ms": self.poll_ms}
