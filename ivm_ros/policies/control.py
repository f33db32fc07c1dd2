"""The ROS-free control core that policy_node drives: what to publish, when to hold, when to restart the task.

It owns, under one lock, everything the node's callbacks, its control timer and its worker share:
- the instruction (text and the node-clock time it arrived) and the actuation gate (:meth:`set_enabled`);
- the *generation*: a number bumped by every event that voids the current plan and restarts the policy's task
  (a changed instruction, enable, ``~/reset``, a gap in the frames longer than ``observation_timeout``, the
  first watchdog hold of a fault); the worker resets the policy when the generation it last saw is older;
- the watchdog (:meth:`watchdog`): ``no_instruction``, ``instruction_stale``, ``no_observation``,
  ``observation_stale`` or "" when actuation may go on;
- the pending actions of the newest plan (timer mode executes them one per tick, each once: they are deltas)
  and the gripper command a hold repeats;
- the newest wrist image and proprio vector, paired with each frame at its arrival (:class:`Pairing`) and
  assembled with the decoded frame into the policy's :class:`Observation` (:meth:`observation`).

Times are seconds on the node's clock (sim time under ``use_sim_time``), passed in by the caller, so every
decision is a plain function of its inputs and testable without ROS. Actions are (7,) float arrays
``dx dy dz droll dpitch dyaw gripper`` in the policy's units.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ivm_ros.inputs import InputRejected
from ivm_ros.policies.base import ACTION_DIM, Observation, check_actions
from ivm_ros.runtime import Counters

WATCHDOG_ACTIONS = ("hold", "silent")


@dataclasses.dataclass
class ControlSettings:
    """What the node's parameters set; the node updates the fields when its parameters change."""

    act_on_every_frame: bool = False  #: one action per processed frame instead of a timer
    observation_timeout: float = 0.5  #: s without a valid frame before the watchdog holds; 0 = off
    instruction_timeout: float = 0.0  #: s since the latest instruction message before it is stale; 0 = never
    watchdog_action: str = "hold"  #: "hold" (zero motion, last gripper) or "silent" (publish nothing)
    action_limit: float = 1.0  #: published actions are clipped to +-limit (counted); 0 = no clipping
    initial_gripper: float = 1.0  #: gripper command of holds before the first action (> 0 open)


@dataclasses.dataclass(frozen=True)
class Pairing:
    """The newest wrist image (opaque to the core, with its stamp in ns) and proprio vector when a frame
    arrived; None where the node does not subscribe or nothing has arrived yet."""

    wrist: Any = None
    wrist_stamp_ns: int = 0
    proprio: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class Tick:
    """What one control tick publishes: ``action`` (None: nothing), the watchdog ``fault`` that made it a hold
    ("" when none) and whether it is a policy action (``executed``) rather than a hold."""

    action: np.ndarray | None
    fault: str = ""
    executed: bool = False


@dataclasses.dataclass(frozen=True)
class Step:
    """What the worker does with one frame (:meth:`PolicyControl.begin_step`): hold for ``fault``, or act on
    ``instruction``, first resetting the policy when ``reset``."""

    generation: int
    instruction: str = ""
    reset: bool = False
    fault: str = ""


class PolicyControl:
    """See the module docstring. ``counters`` receives the core's events (``watchdog_<reason>``,
    ``starved_ticks``, ``plans_voided``, ``policy_resets``, ``clipped_actions``, ``actions_out``, ...)."""

    def __init__(self, settings: ControlSettings, counters: Counters, enabled: bool = False) -> None:
        self.settings = settings
        self.counters = counters
        self._lock = threading.Lock()
        self._enabled = enabled
        self._instruction: tuple[str, float] | None = None  # (text, node clock s)
        self._last_frame: float | None = None  # node clock s of the newest valid frame
        self._wrist: tuple[Any, int] | None = None  # (image, stamp ns)
        self._proprio: np.ndarray | None = None
        self._pending: collections.deque[np.ndarray] = collections.deque()
        self._gripper = float(settings.initial_gripper)
        self._generation = 0
        self._policy_generation = -1  # the generation the policy was last reset for (worker)
        self._fault = ""

    # ------------------------------------------------------------------------------------------- inputs

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> None:
        """Opens or closes the actuation gate; enabling restarts the task. Pending actions are dropped."""
        with self._lock:
            if enabled and not self._enabled:
                self._generation += 1
            self._enabled = bool(enabled)
            self._pending.clear()

    def request_reset(self) -> None:
        """The policy restarts its task (history, pending actions) before its next frame."""
        with self._lock:
            self._generation += 1
            self._pending.clear()

    def restart(self) -> None:
        """On activation: what a previous activation planned is void."""
        self.request_reset()

    def clear_pending(self) -> None:
        with self._lock:
            self._pending.clear()

    def set_instruction(self, text: str, now: float) -> bool:
        """Takes a validated instruction; True when its text differs from the current one (a new task)."""
        with self._lock:
            changed = self._instruction is None or self._instruction[0] != text
            self._instruction = (text, now)
            if changed:
                self._generation += 1
                self._pending.clear()
        self.counters.add("instructions")
        return changed

    def receive_wrist(self, image: Any, stamp_ns: int) -> None:
        self._wrist = (image, stamp_ns)

    def receive_proprio(self, values: Any) -> None:
        """Takes the robot state vector (1..10000 finite values) as (P,) float32; raises
        :class:`~ivm_ros.inputs.InputRejected` (``proprio_size``, ``proprio_non_finite``) for others."""
        state = np.asarray(values, dtype=np.float32)
        if state.size == 0 or state.size > 10000:
            raise InputRejected("proprio_size", f"proprio needs 1..10000 values, got {state.size}")
        if not np.all(np.isfinite(state)):
            raise InputRejected("proprio_non_finite", f"proprio has NaN/inf: {state.tolist()}")
        self._proprio = state

    def receive_frame(self, now: float) -> Pairing | None:
        """A valid frame arrived: notes its time (a gap longer than ``observation_timeout`` restarts the task)
        and returns what to pair it with, or None while disabled (counted ``frames_disabled``)."""
        with self._lock:
            timeout = self.settings.observation_timeout
            if self._last_frame is not None and timeout > 0 and now - self._last_frame > timeout:
                self._generation += 1  # a hole in the history: start the task afresh
            self._last_frame = now
            enabled = self._enabled
        if not enabled:
            self.counters.add("frames_disabled")
            return None
        wrist = self._wrist
        return Pairing(wrist[0] if wrist else None, wrist[1] if wrist else 0, self._proprio)

    # ----------------------------------------------------------------------------------------- watchdog

    def _instruction_fault(self, now: float) -> str:
        """"no_instruction", "instruction_stale" or "" (call with the lock held)."""
        if self._instruction is None:
            return "no_instruction"
        timeout = self.settings.instruction_timeout
        if timeout > 0 and now - self._instruction[1] > timeout:
            return "instruction_stale"
        return ""

    def watchdog(self, now: float) -> str:
        """The reason actuation must hold now, or ""."""
        with self._lock:
            return self._watchdog(now)

    def _watchdog(self, now: float) -> str:
        fault = self._instruction_fault(now)
        if fault:
            return fault
        if self._last_frame is None:
            return "no_observation"
        timeout = self.settings.observation_timeout
        if timeout > 0 and now - self._last_frame > timeout:
            return "observation_stale"
        return ""

    # ------------------------------------------------------------------------------------------ outputs

    def hold_action(self) -> np.ndarray:
        """Zero motion with the last gripper command: (7,) float64."""
        action = np.zeros(ACTION_DIM)
        action[6] = self._gripper
        return action

    def hold(self, reason: str) -> np.ndarray | None:
        """Counts ``watchdog_<reason>``; the hold to publish, or None with ``watchdog_action: silent``."""
        self.counters.add(f"watchdog_{reason}")
        return self.hold_action() if self.settings.watchdog_action == "hold" else None

    def hold_frame(self, reason: str) -> np.ndarray | None:
        """Every-frame mode: a frame that gets no action gets a hold (None: timer mode, disabled or silent)."""
        if self.settings.act_on_every_frame and self._enabled:
            return self.hold(reason)
        return None

    def execute(self, action: np.ndarray) -> np.ndarray:
        """A policy action about to be published: (7,) float64 clipped to +-``action_limit`` (counted
        ``clipped_actions``); its gripper becomes the one holds repeat."""
        a = np.asarray(action, dtype=np.float64)
        limit = self.settings.action_limit
        if limit > 0 and np.any(np.abs(a) > limit):
            self.counters.add("clipped_actions")
            a = np.clip(a, -limit, limit)
        self._gripper = float(a[6])
        self.counters.add("actions_out")
        return a

    def tick(self, now: float) -> Tick:
        """One control-timer tick. Executes the plan's next action; holds (counted ``starved_ticks``) when none
        is left; on a fault drops the plan, restarts the task once per fault and holds as :meth:`hold` says.
        Disabled: publishes nothing."""
        with self._lock:
            if not self._enabled:
                self.counters.add("ticks_disabled")
                return Tick(None)
            fault = self._watchdog(now)
            if fault and not self._fault:
                self._generation += 1  # what comes after the fault starts afresh
            self._fault = fault
            action = None
            if fault:
                self._pending.clear()
            elif self._pending:
                action = self._pending.popleft()
        if fault:
            return Tick(self.hold(fault), fault)
        if action is not None:
            return Tick(self.execute(action), executed=True)
        self.counters.add("starved_ticks")
        return Tick(self.hold_action())

    # ------------------------------------------------------------------------------------------- worker

    def begin_step(self, now: float) -> Step | None:
        """The worker's decision for a frame: None while disabled; a :class:`Step` that holds for a missing or
        stale instruction, or acts (resetting the policy first when the generation moved on)."""
        with self._lock:
            instruction, generation, enabled = self._instruction, self._generation, self._enabled
            fault = self._instruction_fault(now)
        if not enabled:
            return None
        if fault:
            return Step(generation, fault=fault)
        return Step(generation, instruction[0], reset=generation != self._policy_generation)

    def policy_was_reset(self, step: Step) -> None:
        """The worker reset the policy for ``step`` (counted ``policy_resets``); a failed reset is retried."""
        self._policy_generation = step.generation
        self.counters.add("policy_resets")

    def observation(self, image: np.ndarray, stamp_ns: int, pairing: Pairing,
                    decode_wrist: Callable[[Any], np.ndarray]) -> Observation:
        """The policy's input: the decoded (H, W, 3) uint8 RGB frame captured at ``stamp_ns``, the wrist image
        paired with it (decoded by ``decode_wrist``; one with another stamp is still used and counted
        ``wrist_stamp_mismatch``) and the proprio vector."""
        wrist = None
        if pairing.wrist is not None:
            wrist = decode_wrist(pairing.wrist)
            if pairing.wrist_stamp_ns != stamp_ns:  # a different capture time: informative, still used
                self.counters.add("wrist_stamp_mismatch")
        stamp = stamp_ns // 1_000_000_000 + (stamp_ns % 1_000_000_000) * 1e-9  # = sec + nanosec * 1e-9
        return Observation(image, wrist, pairing.proprio, stamp=stamp)

    def finish_step(self, step: Step, actions: Any) -> np.ndarray | None:
        """The policy's output for ``step``: validated (ValueError for a bad shape or non-finite values). In
        every-frame mode returns its first action, executed, to publish now; in timer mode it becomes the plan
        the ticks execute, unless the generation moved on or actuation was disabled meanwhile (counted
        ``plans_voided``); returns None."""
        actions = check_actions(actions)
        if self.settings.act_on_every_frame:
            return self.execute(actions[0])
        with self._lock:
            if step.generation != self._generation or not self._enabled:
                self.counters.add("plans_voided")
                return None
            self._pending = collections.deque(actions)
        return None

    # -------------------------------------------------------------------------------------- diagnostics

    def report(self, now: float) -> dict[str, Any]:
        """The control state for diagnostics."""
        with self._lock:
            instruction, last_frame, enabled, fault = self._instruction, self._last_frame, self._enabled, self._fault
            pending = len(self._pending)
        return {
            "enabled": enabled,
            "watchdog": fault or "ok",
            "pending_actions": pending,
            "instruction": instruction[0] if instruction else "",
            "instruction_age_s": now - instruction[1] if instruction else float("nan"),
            "observation_age_s": now - last_frame if last_frame is not None else float("nan"),
        }
