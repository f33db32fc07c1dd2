"""The robot's other inputs beside the main camera, kept for the policy: wrist images and the proprio vector.

:class:`Sensors` keeps the last few wrist images by their capture stamp and the newest valid proprio vector with
its arrival time, checks each proprio vector against the policy's :class:`~ivm_ros.policies.base.ProprioSpec`,
says when proprio is missing, rejected or stale (:meth:`Sensors.fault`), and pairs a main frame with the wrist
image of the same capture stamp (:meth:`Sensors.pair`: waiting a bounded time for one that has not arrived yet,
since a camera driver publishes its two images one after the other). No ROS; times are seconds on the node's
clock, waits are wall-clock seconds.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ivm_ros.inputs import InputRejected
from ivm_ros.policies.base import ProprioSpec

#: Wrist images kept for pairing (by stamp): enough for a few frames of skew between the two cameras.
WRIST_BUFFER = 8
#: Upper bound on a proprio vector's length (a sanity bound before any policy-specific check).
MAX_PROPRIO = 10000


class Sensors:
    """See the module docstring. ``spec`` (set when the policy is loaded) and ``max_abs`` bound proprio values."""

    def __init__(self, use_wrist: bool = False, use_proprio: bool = False, max_abs: float = 1e6) -> None:
        self.use_wrist, self.use_proprio, self.max_abs = use_wrist, use_proprio, max_abs
        self.spec: ProprioSpec | None = None
        self._cond = threading.Condition()
        self._wrists: collections.deque[tuple[int, Any]] = collections.deque(maxlen=WRIST_BUFFER)
        self._proprio: tuple[np.ndarray, float] | None = None  # (state, node clock s at arrival)
        self._proprio_fault = "no_proprio"

    def receive_wrist(self, image: Any, stamp_ns: int) -> None:
        """Keeps a (validated) wrist image with its capture stamp in ns."""
        with self._cond:
            self._wrists.append((stamp_ns, image))
            self._cond.notify_all()

    def receive_proprio(self, values: Any, now: float) -> None:
        """Takes the robot state vector as (P,) float32 if it is plausible: 1..MAX_PROPRIO finite values within
        +-``max_abs`` and the policy's spec (length, range). Otherwise raises
        :class:`~ivm_ros.inputs.InputRejected` (``proprio_size``, ``proprio_non_finite``, ``proprio_range``) and
        forgets the previous vector: the policy never acts on an old vector after a bad one."""
        try:
            state = self._check(values)
        except InputRejected:
            with self._cond:
                self._proprio, self._proprio_fault = None, "proprio_rejected"
            raise
        with self._cond:
            self._proprio, self._proprio_fault = (state, now), ""

    def _check(self, values: Any) -> np.ndarray:
        state = np.asarray(values, dtype=np.float32).reshape(-1)
        if state.size == 0 or state.size > MAX_PROPRIO:
            raise InputRejected("proprio_size", f"proprio needs 1..{MAX_PROPRIO} values, got {state.size}")
        if not np.all(np.isfinite(state)):
            raise InputRejected("proprio_non_finite", f"proprio has NaN/inf: {state.tolist()}")
        if np.any(np.abs(state) > self.max_abs):
            raise InputRejected("proprio_range", f"proprio value beyond +-{self.max_abs:g}: {state.tolist()}")
        if self.spec is not None:
            self.spec.check(state)
        return state

    def fault(self, now: float, timeout: float, wrist: bool = True) -> str:
        """Why the policy cannot act now: ``no_wrist_image`` (with ``wrist``: it takes one and none has arrived
        yet, a start-up race), ``no_proprio`` (none yet), ``proprio_rejected`` (the newest message was bad),
        ``proprio_stale`` (older than ``timeout`` s; 0 = never), or ""."""
        with self._cond:
            if wrist and self.use_wrist and not self._wrists:
                return "no_wrist_image"
        if not self.use_proprio:
            return ""
        with self._cond:
            if self._proprio is None:
                return self._proprio_fault or "no_proprio"
            if timeout > 0 and now - self._proprio[1] > timeout:
                return "proprio_stale"
        return ""

    def pair(self, stamp_ns: int, wait_s: float, decode: Callable[[Any], np.ndarray]
             ) -> tuple[np.ndarray | None, np.ndarray | None, bool]:
        """(decoded wrist image, proprio vector, whether the wrist image has the frame's stamp) for a frame
        captured at ``stamp_ns``. Waits up to ``wait_s`` for the wrist image of that stamp; then takes the newest
        one (not matched). The proprio vector is the newest valid one at return."""
        wrist, matched = None, False
        if self.use_wrist:
            deadline = time.monotonic() + wait_s
            with self._cond:
                while not (found := self._find(stamp_ns)) and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                if found:
                    wrist, matched = found[0], True
                elif self._wrists:
                    wrist = self._wrists[-1][1]
        with self._cond:
            proprio = self._proprio[0] if self._proprio is not None else None
        return (decode(wrist) if wrist is not None else None), proprio, matched

    def _find(self, stamp_ns: int) -> tuple[Any] | None:
        for stamp, image in reversed(self._wrists):
            if stamp == stamp_ns:
                return (image,)
        return None
