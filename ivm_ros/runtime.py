"""ROS-free runtime pieces of the nodes: the latest-frame mailbox and rate/latency/drop statistics."""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

#: glibc mallopt parameters and the values :func:`tune_malloc` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit
TRIM_THRESHOLD = 128 << 20


def ignore_further_interrupts() -> None:
    """From the main thread at the start of a node's shutdown: SIGINT is ignored from now on. A Ctrl-C in a
    terminal running ``ros2 launch`` reaches every node twice (from the terminal and again from launch); the
    second one would otherwise interrupt the worker join and kill the node mid-cleanup with exit code -2."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def quiet_progress_bars() -> None:
    """No progress bars in a node's log (transformers' "Loading weights" bar, hub downloads, any tqdm): set before
    those libraries are imported; a value the user set wins."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")


def tune_malloc() -> bool:
    """Lets glibc reuse frame-sized buffers instead of mapping fresh pages for each one; call once per process.

    By default glibc serves a ~1 MB allocation (one 640x480 frame, its serialized message, rclpy's copies)
    with a fresh ``mmap`` or returns the heap top to the OS soon after it is freed, so every frame pays
    ~225 page faults per buffer: ~1 ms per conversion on the 2-core machines here, 5-20x the copy itself.
    A fixed mmap threshold of 32 MB and a trim threshold of 128 MB keep those buffers in the heap; the cost
    is up to 128 MB of freed memory kept mapped. Skipped (False) off glibc or when the user already set
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``GLIBC_TUNABLES``.

    glibc adapts its thresholds at run time, so whether a process falls into this depends on the order of its
    first allocations and frees: measured here, rclpy's deserialisation of a 640x480 Image 1.7 -> 0.33 ms,
    ``array_to_image`` + serialisation 2.0 -> 0.12 ms, a camera loop's serialize + publish ~2.0 -> ~0.6 ms, and
    ``ivm-ros bench node``'s relay (take + republish) 3.3 -> 1.35 ms CPU per frame, 0 page faults. masking_node's
    main() and the bench's processes call it; in masking_node runs that happened not to fall into it, it changed
    nothing measurable, and it removes the runs that did (raw path +1 ms CPU per frame).
    """
    if not sys.platform.startswith("linux"):
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


class LatestMailbox(Generic[T]):
    """A one-slot mailbox: ``put`` replaces an unread item (returning it, so the caller counts the drop),
    ``get`` waits for an item. A slow consumer therefore never builds a queue."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> T | None:
        """Stores ``item``; returns the unread item it displaced, or None."""
        with self._cond:
            displaced, self._item = self._item, item
            self._cond.notify()
            return displaced

    def get(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to ``timeout`` s; None on timeout or after :meth:`close`."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wakes a waiting ``get``; later gets return None once the slot is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._item = None


class RateMeter:
    """Events per second over a sliding window of ``window_s`` seconds (monotonic clock)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], 1e-9)
            return (
                len(self._times) / span
                if span >= 0.5 * self.window_s
                else (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-9)
            )

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()


class LatencyWindow:
    """The last ``size`` samples of a duration (milliseconds) and their percentiles."""

    def __init__(self, size: int = 300) -> None:
        self._samples: collections.deque[float] = collections.deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, ms: float) -> None:
        with self._lock:
            self._samples.append(ms)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100), interpolated as ``np.percentile`` does; NaN when empty.

        Pure Python on the sorted window: ~10x cheaper than NumPy for a few hundred samples, which matters
        because the diagnostics timer computes a dozen of these holding the GIL (0.75 ms -> ~0.1 ms).
        """
        with self._lock:
            ordered = sorted(self._samples)
        if not ordered:
            return float("nan")
        pos = (len(ordered) - 1) * min(max(q, 0.0), 100.0) / 100.0
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


class Counters:
    """Thread-safe named counters (frames in/out, drops and rejections by reason)."""

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts[key]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class SeenRecently:
    """Remembers the last ``size`` keys: :meth:`first_time` is True for a key not among them (and remembers it).
    Used to take a message that reaches two subscriptions once."""

    def __init__(self, size: int = 64) -> None:
        self._order: collections.deque = collections.deque(maxlen=size)
        self._keys: set = set()

    def first_time(self, key: Hashable) -> bool:
        if key in self._keys:
            return False
        if len(self._order) == self._order.maxlen:
            self._keys.discard(self._order[0])
        self._order.append(key)
        self._keys.add(key)
        return True
