"""Masks at camera rate: run the predictor at a low rate and carry its newest mask to the frames between.

A heavy predictor (IVM-V1.0 at a few Hz) behind a 30 Hz camera: :class:`MaskTracker` decides per frame whether
the predictor runs (at most ``predictor_rate`` Hz by the frames' own timestamps, or every ``predictor_every``
frames; always on the first frame, on a new instruction, when the frame size changes or when time runs
backwards) and otherwise derives this frame's probabilities from the last frame's:

* ``flow``: dense optical flow from this frame back to the previous one (OpenCV DIS, ultrafast preset refined
  down to pyramid level 1, on grey frames shrunk so their long side is at most ``flow_size`` px) warps the
  previous probability map to this frame (frame to frame, so each step is a small motion). A confidence check
  (photometric: the fraction of the mask region, dilated by a few pixels, where the previous frame warped by
  the same flow matches this frame within ``photometric_tol`` grey levels; or forward-backward consistency)
  decides whether the warp is trusted. Below ``min_confidence`` the ``fallback`` applies: ``repredict`` runs
  the predictor on this frame, ``whole_frame`` keeps the whole frame (probability 1 everywhere) until the next
  scheduled prediction. Either is counted (:attr:`MaskTracker.counts`), never silent.
* ``hold``: the last predicted map, unchanged (the baseline the flow is measured against).
* ``off``: the predictor on every frame.

ROS-free and model-free: the predictor is a callable the caller passes in. NumPy/OpenCV on the CPU; the
probabilities come back as a torch tensor on the device the predictor's output was on.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

#: How frames between predictions get their mask.
PROPAGATION_MODES = ("flow", "hold", "off")
#: What a frame whose propagated mask is not trusted gets.
FALLBACKS = ("repredict", "whole_frame")
#: Dense optical flow methods (OpenCV).
FLOW_METHODS = ("dis", "farneback")
#: Confidence checks of a propagated mask.
CHECKS = ("photometric", "forward_backward")
#: Where a frame's probabilities came from (``Tracked.source``) and the counters they add to.
SOURCES = ("predicted", "propagated", "held", "repredicted", "whole_frame")
COUNTER_NAMES = {"predicted": "predicted", "propagated": "propagated", "held": "held",
                 "repredicted": "fallback_repredict", "whole_frame": "fallback_whole_frame"}
#: DIS's finest pyramid level (the ultrafast preset stops at 2: a 4x coarser field that cost 0.07 mIoU here).
DIS_FINEST_SCALE = 1
#: The carried map's long side is at most this many times ``flow_size`` (a 640x480 map warped at 400x300:
#: 1.4 instead of 4 ms; masks are dilated and feathered afterwards, and apply_mask resizes any map to the frame).
MAP_SCALE = 2
_STAMP_SLACK = 1e-3  # fraction of the predictor period a stamp may fall short (30 Hz stamps are not exact)


@dataclasses.dataclass(frozen=True)
class PropagationSettings:
    """How often the predictor runs and how the frames between get their mask (see the module docstring).

    mode: ``flow``, ``hold`` or ``off``. predictor_rate: Hz by frame timestamp, at most (0: every frame).
    predictor_every: predict every K frames (0: use ``predictor_rate``; > 0 overrides it). fallback:
    ``repredict`` or ``whole_frame``. flow: ``dis`` or ``farneback``. flow_size: long side (px) of the grey
    frames the flow is computed on (smaller frames are not enlarged). check: ``photometric`` or
    ``forward_backward``. min_confidence: in [0, 1], fraction of the mask region that must pass the check.
    photometric_tol: grey levels (0-255) a warped pixel may differ by. fb_tol: px a forward-backward round trip
    may miss by (plus 5 % of the motion)."""

    mode: str = "off"
    predictor_rate: float = 0.0
    predictor_every: int = 0
    fallback: str = "repredict"
    flow: str = "dis"
    flow_size: int = 200
    check: str = "photometric"
    min_confidence: float = 0.9
    photometric_tol: float = 24.0
    fb_tol: float = 1.0

    def __post_init__(self) -> None:
        for name, value, allowed in (("mode", self.mode, PROPAGATION_MODES), ("fallback", self.fallback, FALLBACKS),
                                     ("flow", self.flow, FLOW_METHODS), ("check", self.check, CHECKS)):
            if value not in allowed:
                raise ValueError(f"propagation {name} must be one of {allowed}, got {value!r}")
        if not (math.isfinite(self.predictor_rate) and self.predictor_rate >= 0):
            raise ValueError(f"predictor_rate must be >= 0 Hz (0: every frame), got {self.predictor_rate}")
        if self.predictor_every < 0 or self.flow_size < 8:
            raise ValueError("predictor_every must be >= 0 and flow_size >= 8")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")

    @property
    def active(self) -> bool:
        """Whether any frame can be given a mask without the predictor (else predict every frame)."""
        return self.mode != "off" and (self.predictor_rate > 0 or self.predictor_every > 0)


@dataclasses.dataclass
class Tracked:
    """One frame's probabilities: ``probs`` (1, h, w) float32 in [0, 1] on the predictor's device, at the
    predictor's output size; ``source`` one of :data:`SOURCES`; ``reason`` why the predictor ran ("first",
    "instruction", "rate", "every", "size", "stamp_back", "low_confidence", "off"; "" when it did not);
    ``confidence`` of the propagation in [0, 1] (nan when none was checked); times in ms of CPU wall clock."""

    probs: torch.Tensor
    source: str
    reason: str = ""
    confidence: float = float("nan")
    predictor_ms: float = 0.0
    propagation_ms: float = 0.0


def check_frame(image: np.ndarray) -> np.ndarray:
    """The (H, W) uint8 grey version of an (H, W, 3) RGB or (H, W) grey uint8 frame; ValueError otherwise."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 numpy arrays, got {getattr(image, 'dtype', type(image))}")
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 2:
        raise ValueError(f"frames must be (H, W, 3) RGB or (H, W) grey, got shape {image.shape}")
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def check_probs(probs: torch.Tensor) -> torch.Tensor:
    """A predictor output as (1, h, w) float; ValueError for other shapes."""
    if not isinstance(probs, torch.Tensor):
        raise ValueError(f"the predictor must return a torch tensor, got {type(probs).__name__}")
    if probs.ndim == 2:
        probs = probs[None]
    if probs.ndim != 3 or probs.shape[0] != 1 or min(probs.shape[1:]) < 1:
        raise ValueError(f"the predictor must return (1, h, w) probabilities, got shape {tuple(probs.shape)}")
    return probs


class FlowWarper:
    """Dense optical flow between two grey frames at a reduced size, and the warp of a map by it."""

    def __init__(self, settings: PropagationSettings) -> None:
        self.settings = settings
        self._dis = None
        if settings.flow == "dis":
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
            self._dis.setFinestScale(DIS_FINEST_SCALE)
        self._grids: dict[tuple[int, int], np.ndarray] = {}

    def shrink(self, gray: np.ndarray) -> np.ndarray:
        """(H, W) uint8 -> (h, w) uint8 whose long side is at most ``flow_size`` (area interpolation)."""
        h, w = gray.shape
        scale = min(1.0, self.settings.flow_size / max(h, w))
        if scale >= 1.0:
            return np.ascontiguousarray(gray)
        return cv2.resize(gray, (max(2, round(w * scale)), max(2, round(h * scale))), interpolation=cv2.INTER_AREA)

    def flow(self, frm: np.ndarray, to: np.ndarray) -> np.ndarray:
        """(h, w, 2) float32 px: pixel (y, x) of ``frm`` is seen at (y + f[..., 1], x + f[..., 0]) in ``to``."""
        if self._dis is not None:
            return self._dis.calc(frm, to, None)
        return cv2.calcOpticalFlowFarneback(frm, to, None, 0.5, 3, 15, 3, 5, 1.2, 0)

    def _grid(self, h: int, w: int) -> np.ndarray:
        """(h, w, 2) float32 pixel coordinates (x, y)."""
        if (h, w) not in self._grids:
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grids[(h, w)] = np.dstack([xs, ys])
        return self._grids[(h, w)]

    def cap(self, probs: np.ndarray) -> np.ndarray:
        """(H', W') float32 shrunk (area) so its long side is at most ``MAP_SCALE * flow_size``."""
        h, w = probs.shape
        scale = MAP_SCALE * self.settings.flow_size / max(h, w)
        if scale >= 1.0:
            return probs
        return cv2.resize(probs, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)

    def warp(self, values: np.ndarray, flow: np.ndarray, border: float = 0.0) -> np.ndarray:
        """``values`` (H', W') float32 or uint8 sampled where ``flow`` (h, w, 2), computed at another size, points:
        out(x) = values(x + flow(x)) with the flow resized and rescaled to (H', W'); outside -> ``border``."""
        hv, wv = values.shape[:2]
        hf, wf = flow.shape[:2]
        if (hv, wv) != (hf, wf):
            flow = cv2.resize(flow, (wv, hv), interpolation=cv2.INTER_LINEAR)
            flow *= np.array([wv / wf, hv / hf], np.float32)
        return cv2.remap(values, self._grid(hv, wv) + flow, None, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=border)


class MaskTracker:
    """Per frame: predict, or carry the newest probabilities to this frame (see the module docstring).

    Call :meth:`track` once per frame, in time order, from one thread. :attr:`counts` holds frames per source
    (``predicted``, ``propagated``, ``held``, ``fallback_repredict``, ``fallback_whole_frame``)."""

    def __init__(self, settings: PropagationSettings | None = None) -> None:
        self._settings = settings or PropagationSettings()
        self._warper = FlowWarper(self._settings)
        self._pending: PropagationSettings | None = None
        self._pending_lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.reset()

    @property
    def settings(self) -> PropagationSettings:
        """The settings in force, or those set to take effect at the next frame."""
        with self._pending_lock:
            return self._pending or self._settings

    @settings.setter
    def settings(self, value: PropagationSettings) -> None:
        """New settings take effect from the next frame, which is predicted (counts are kept). Safe to set from
        another thread (a parameter callback) while :meth:`track` runs: they are applied when the next frame starts,
        never in the middle of one."""
        with self._pending_lock:
            self._pending = value

    def _apply_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._settings, self._warper = pending, FlowWarper(pending)
            self.reset()

    def reset(self) -> None:
        """Forgets the mask, so the next frame is predicted."""
        self._instruction: str | None = None
        self._probs: np.ndarray | None = None  # (h, w) float32: the newest map, predicted or carried
        self._device = torch.device("cpu")
        self._small: np.ndarray | None = None  # previous frame, grey, shrunk for the flow
        self._size: tuple[int, int] | None = None
        self._last_stamp: float | None = None
        self._predicted_stamp = -math.inf
        self._since_predicted = 0
        self._lost = False  # whole_frame fallback in force until the next prediction

    def due(self, stamp: float, instruction: str, size: tuple[int, int]) -> str:
        """Why the predictor must run on a frame of ``size`` (H, W) at ``stamp`` s for ``instruction``; "" if it
        need not."""
        s = self._settings
        if not s.active:
            return "off"
        if self._probs is None:
            return "first"
        if instruction != self._instruction:
            return "instruction"
        if size != self._size:
            return "size"
        if self._last_stamp is not None and stamp < self._last_stamp:
            return "stamp_back"
        if s.predictor_every > 0:
            return "every" if self._since_predicted + 1 >= s.predictor_every else ""
        period = 1.0 / s.predictor_rate
        return "rate" if stamp - self._predicted_stamp >= period * (1 - _STAMP_SLACK) else ""

    def track(self, image: np.ndarray, stamp: float, instruction: str,
              predict: Callable[[], torch.Tensor]) -> Tracked:
        """This frame's probabilities. ``image``: (H, W, 3) RGB or (H, W) grey uint8; ``stamp``: the frame's time
        in s (its header stamp: rates follow the camera's clock, not this computer's); ``predict()``: runs the
        predictor on this frame and returns (1, h, w) or (h, w) float probabilities in [0, 1]."""
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be a finite time in seconds, got {stamp}")
        self._apply_pending()
        s = self._settings
        if not s.active:
            t0 = time.perf_counter()
            probs = check_probs(predict())
            self.counts["predicted"] += 1
            return Tracked(probs, "predicted", "off", predictor_ms=(time.perf_counter() - t0) * 1e3)
        gray = check_frame(image)
        t0 = time.perf_counter()
        small = self._warper.shrink(gray) if s.mode == "flow" else None
        reason = self.due(stamp, instruction, gray.shape)
        if reason:
            result = self._predict(predict, reason, "predicted", t0)
        elif self._lost:
            result = self._whole_frame(float("nan"), t0)
        elif s.mode == "hold":
            result = Tracked(self._tensor(self._probs), "held", propagation_ms=(time.perf_counter() - t0) * 1e3)
        else:
            result = self._propagate(small, predict, t0)
        self._instruction, self._size, self._small = instruction, gray.shape, small
        self._last_stamp = stamp
        if result.source in ("predicted", "repredicted"):
            self._predicted_stamp, self._since_predicted = stamp, 0
        else:
            self._since_predicted += 1
        self.counts[COUNTER_NAMES[result.source]] += 1
        return result

    def _tensor(self, probs: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(probs)[None].to(self._device)

    def _predict(self, predict: Callable[[], torch.Tensor], reason: str, source: str, t0: float,
                 propagation_ms: float = 0.0, confidence: float = float("nan")) -> Tracked:
        t1 = time.perf_counter()
        probs = check_probs(predict())
        self._probs = probs[0].detach().float().cpu().numpy()
        self._device, self._lost = probs.device, False
        return Tracked(probs, source, reason, confidence, (time.perf_counter() - t1) * 1e3,
                       propagation_ms or (t1 - t0) * 1e3)

    def _whole_frame(self, confidence: float, t0: float) -> Tracked:
        self._lost = True
        ones = torch.ones((1, *self._probs.shape), dtype=torch.float32, device=self._device)  # type: ignore[union-attr]
        return Tracked(ones, "whole_frame", "", confidence, propagation_ms=(time.perf_counter() - t0) * 1e3)

    def _propagate(self, small: np.ndarray, predict: Callable[[], torch.Tensor], t0: float) -> Tracked:
        """Warps the previous map to this frame by the flow this frame -> the previous one; checks it."""
        assert self._small is not None and self._probs is not None
        warper, s = self._warper, self._settings
        back = warper.flow(small, self._small)
        region_prev = cv2.resize(self._probs, small.shape[::-1], interpolation=cv2.INTER_LINEAR)
        region = cv2.dilate((warper.warp(region_prev, back) > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        confidence = self._confidence(small, back, region)
        if confidence < s.min_confidence:
            if s.fallback == "repredict":
                return self._predict(predict, "low_confidence", "repredicted", t0,
                                     (time.perf_counter() - t0) * 1e3, confidence)
            return self._whole_frame(confidence, t0)
        self._probs = warper.warp(warper.cap(self._probs), back)
        return Tracked(self._tensor(self._probs), "propagated", "", confidence,
                       propagation_ms=(time.perf_counter() - t0) * 1e3)

    def _confidence(self, small: np.ndarray, back: np.ndarray, region: np.ndarray) -> float:
        """Fraction of ``region`` (h, w) bool of this frame where the flow ``back`` (h, w, 2) passes the check;
        1.0 for an empty region (nothing to carry)."""
        if not region.any():
            return 1.0
        s = self._settings
        if s.check == "photometric":
            warped = self._warper.warp(self._small.astype(np.float32), back, border=-1e3)  # type: ignore[union-attr]
            ok = np.abs(small.astype(np.float32) - warped) <= s.photometric_tol
        else:
            fwd = self._warper.flow(self._small, small)  # type: ignore[arg-type]
            round_trip = back + self._warper.warp(fwd, back, border=1e3)
            ok = np.linalg.norm(round_trip, axis=2) <= s.fb_tol + 0.05 * np.linalg.norm(back, axis=2)
        return float(ok[region].mean())
