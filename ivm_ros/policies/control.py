"""The ROS-free control core that policy_node drives: what to publish, when to hold, when to restart the task.

It owns, under one lock, everything the node's callbacks, its control timer and its worker share:
- the instruction (text and the node-clock time it arrived) and the actuation gate (:meth:`set_enabled`);
- the *generation*: a number bumped by every event that voids the current plan and restarts the policy's task
  (a changed instruction, enable, ``~/reset``, a gap in the frames longer than ``observation_timeout``, the
  first watchdog hold of a fault); the worker resets the policy when the generation it last saw is older;
- the watchdog (:meth:`watchdog`): ``no_instruction``, ``instruction_stale``, ``no_proprio``,
  ``proprio_rejected``, ``proprio_stale``, ``no_observation``, ``observation_stale`` or "" when actuation may go
  on;
- the pending actions of the newest plan (timer mode executes them one per tick, each once: they are deltas)
  and the gripper command a hold repeats;
- the wrist images and proprio vector (:class:`~ivm_ros.policies.sensors.Sensors`: a proprio vector that is
  missing, implausible or stale makes the watchdog hold), paired with each frame by capture stamp and assembled
  with the decoded frame into the policy's :class:`Observation` (:meth:`observation`), with the number of plan
  actions executed since the previous one (so chunk wrappers stay aligned when the timer outpaces the camera);
- the publishing gate (:meth:`publishing`): once :meth:`set_enabled` ``(False)`` returns, no motion goes out.

Times are seconds on the node's clock (sim time under ``use_sim_time``), passed in by the caller, so every
decision is a plain function of its inputs and testable without ROS. Actions are (7,) float arrays
``dx dy dz droll dpitch dyaw gripper`` in the policy's units.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ivm_ros.policies.base import ACTION_DIM, Observation, check_actions
from ivm_ros.policies.sensors import Sensors
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
    on_disable: str = "hold"  #: on disable: "hold" publishes one zero-motion action at once, "silent" nothing
    proprio_timeout: float = 0.5  #: s since the newest valid proprio vector before it is stale; 0 = never
    pairing_wait: float = 0.05  #: wall s the worker waits for the wrist image of a frame's stamp


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
    executed_at_start: int = 0  #: plan actions executed in total when the step began
    elapsed_steps: int = 1  #: plan actions executed since the previous step began


class PolicyControl:
    """See the module docstring. ``counters`` receives the core's events (``watchdog_<reason>``,
    ``starved_ticks``, ``plans_voided``, ``policy_resets``, ``clipped_actions``, ``actions_out``, ...)."""

    def __init__(self, settings: ControlSettings, counters: Counters, enabled: bool = False,
                 sensors: Sensors | None = None) -> None:
        self.settings = settings
        self.counters = counters
        self.sensors = sensors if sensors is not None else Sensors()
        self._lock = threading.Lock()
        self._gate = threading.Lock()  # held while a command is published and while actuation is switched off
        self._enabled = enabled
        self._instruction: tuple[str, float] | None = None  # (text, node clock s)
        self._last_frame: float | None = None  # node clock s of the newest valid frame
        self._pending: collections.deque[np.ndarray] = collections.deque()
        self._executed = 0  # plan actions executed in total (ages the policy's chunks)
        self._executed_at_last_step = 0
        self._gripper = float(settings.initial_gripper)
        self._generation = 0
        self._policy_generation = -1  # the generation the policy was last reset for (worker)
        self._fault = ""

    # ------------------------------------------------------------------------------------------- inputs

    @property
    def enabled(self) -> bool:
        return self._enabled

    def set_enabled(self, enabled: bool) -> np.ndarray | None:
        """Opens or closes actuation; enabling restarts the task; pending actions are dropped. Disabling waits
        for a command being published to finish (see :meth:`publishing`), so once it returns no motion is
        published; returns the final hold to publish with :meth:`publishing` ``(final=True)`` (``on_disable:
        hold``, when it was enabled), else None."""
        with self._gate, self._lock:
            was = self._enabled
            if enabled and not was:
                self._generation += 1
            self._enabled = bool(enabled)
            self._pending.clear()
        if was and not enabled and self.settings.on_disable == "hold":
            self.counters.add("disable_holds")
            return self.hold_action()
        return None

    @contextlib.contextmanager
    def publishing(self, final: bool = False) -> Iterator[bool]:
        """Wraps the publishing of one command: yields whether it may go out (actuation enabled, or ``final``:
        the hold that :meth:`set_enabled` returned). A command refused here is counted
        (``dropped_disabled``). Disabling waits for a command inside this block, which closes the race between
        a worker that decided to act and an operator who disabled meanwhile."""
        with self._gate:
            allowed = self._enabled or final
            if not allowed:
                self.counters.add("dropped_disabled")
            yield allowed

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

    def receive_frame(self, now: float) -> bool:
        """A valid frame arrived: notes its time (a gap longer than ``observation_timeout`` restarts the task).
        False while disabled (counted ``frames_disabled``): the frame is not acted on."""
        with self._lock:
            timeout = self.settings.observation_timeout
            if self._last_frame is not None and timeout > 0 and now - self._last_frame > timeout:
                self._generation += 1  # a hole in the history: start the task afresh
            self._last_frame = now
            enabled = self._enabled
        if not enabled:
            self.counters.add("frames_disabled")
        return enabled

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
        fault = self._instruction_fault(now) or self.sensors.fault(now, self.settings.proprio_timeout)
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
        self._executed += 1
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
            # (the wrist image is awaited in observation(): it may follow the frame by a few ms)
            fault = self._instruction_fault(now) or self.sensors.fault(now, self.settings.proprio_timeout, False)
            executed, elapsed = self._executed, self._executed - self._executed_at_last_step
        if not enabled:
            return None
        if fault:
            return Step(generation, fault=fault)
        reset = generation != self._policy_generation
        self._executed_at_last_step = executed
        return Step(generation, instruction[0], reset, executed_at_start=executed,
                    elapsed_steps=1 if reset else elapsed)

    def policy_was_reset(self, step: Step) -> None:
        """The worker reset the policy for ``step`` (counted ``policy_resets``); a failed reset is retried."""
        self._policy_generation = step.generation
        self.counters.add("policy_resets")

    def observation(self, image: np.ndarray, stamp_ns: int, step: Step,
                    decode_wrist: Callable[[Any], np.ndarray]) -> Observation | None:
        """The policy's input for ``step``: the decoded (H, W, 3) uint8 RGB frame captured at ``stamp_ns``, the
        wrist image of the same stamp (waiting up to ``pairing_wait`` for it; otherwise the newest, counted
        ``wrist_stamp_mismatch``), decoded by ``decode_wrist``, the newest valid proprio vector, and the plan
        actions executed since the policy's previous observation. None when the policy takes a wrist image and
        none has arrived yet (the caller holds: ``no_wrist_image``)."""
        wrist, proprio, matched = self.sensors.pair(stamp_ns, self.settings.pairing_wait, decode_wrist)
        if wrist is None and self.sensors.use_wrist:
            return None
        if wrist is not None and not matched:
            self.counters.add("wrist_stamp_mismatch")
        stamp = stamp_ns // 1_000_000_000 + (stamp_ns % 1_000_000_000) * 1e-9  # = sec + nanosec * 1e-9
        return Observation(image, wrist, proprio, stamp=stamp, elapsed_steps=step.elapsed_steps)

    def finish_step(self, step: Step, actions: Any) -> np.ndarray | None:
        """The policy's output for ``step``: validated (ValueError for a bad shape or non-finite values). In
        every-frame mode returns its first action, executed, to publish now; in timer mode it becomes the plan
        the ticks execute (less the steps the previous plan executed while the policy ran), unless the
        generation moved on or actuation was disabled meanwhile (counted ``plans_voided``); returns None."""
        actions = check_actions(actions)
        if self.settings.act_on_every_frame:
            return self.execute(actions[0])
        with self._lock:
            if step.generation != self._generation or not self._enabled:
                self.counters.add("plans_voided")
                return None
            ran = self._executed - step.executed_at_start  # the old plan's actions executed during inference
            self._pending = collections.deque(actions[ran:])
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
