"""sim_node's command rule and lockstep turn-taking, without ROS (so it can be tested on its own).

Command rule: each control tick applies the latest command if it arrived no more than ``action_timeout`` sim
seconds before the tick, else the arm holds still (zero motion, gripper unchanged). A ``gripper_cmd`` sets the
gripper of later twists and replaces the gripper of the command in force (or starts a still command).

Lockstep: a step is granted once a step-triggering command (``action`` or ``delta_twist_cmds``) was received
after the latest observation began to be published, or after ``lockstep_timeout`` wall seconds (0: never).
The step answers that observation (its number); a reset publishes a newer one, which voids the grant.

Pacing: steps are spaced ``1 / (control_hz * real_time_factor)`` wall seconds apart (0: as fast as possible);
a slow step is not caught up on.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

import numpy as np

#: tolerance for values on a limit (a command of exactly 1.0, a twist of exactly the arm's speed)
EPS = 1e-9


@dataclasses.dataclass
class Command:
    action: np.ndarray  # (7,) float64 in [-1, 1]
    tick: int  # node tick at arrival


def action_problem(a: np.ndarray) -> tuple[str, str] | None:
    """(reason, detail) why a 7-D action command is rejected, or None when it is valid."""
    if a.shape != (7,):
        return "length", f"action needs 7 values (dx dy dz droll dpitch dyaw gripper), got {a.size}"
    if not np.all(np.isfinite(a)):
        return "non_finite", f"action has NaN/inf: {a.tolist()}"
    if np.any(np.abs(a) > 1.0 + EPS):
        return "out_of_range", f"action values must lie in [-1, 1]: {a.tolist()}"
    return None


def twist_problem(frame: str, world: str, linear: np.ndarray, angular: np.ndarray) -> tuple[str, str] | None:
    """(reason, detail) why a twist command is rejected (another frame than ``world`` or empty, NaN/inf), or None."""
    if frame not in ("", world):
        return "frame", f"twist in frame {frame!r}; only {world!r} (or empty) is accepted"
    if not (np.all(np.isfinite(linear)) and np.all(np.isfinite(angular))):
        return "non_finite", f"twist has NaN/inf: {linear.tolist()} {angular.tolist()}"
    return None


def twist_action(linear: np.ndarray, angular: np.ndarray, gripper: float, dt: float) -> tuple[np.ndarray, bool]:
    """The env action of a (valid) twist held for ``dt`` seconds with ``gripper``, and whether the twist was faster
    than the arm moves in one step (2 cm, 0.05 rad), so the action is clipped."""
    from ivm_ros_sim.calvin.env import MAX_REL_ORN, MAX_REL_POS, twist_to_action  # CALVIN's (pybullet) only here

    too_fast = (np.abs(linear).max() * dt > MAX_REL_POS * (1 + EPS)
                or np.abs(angular).max() * dt > MAX_REL_ORN * (1 + EPS))
    return twist_to_action(linear, angular, gripper, dt), bool(too_fast)


def hold_action(gripper: float) -> np.ndarray:
    """Hold still: zero motion, the gripper as it is."""
    hold = np.zeros(7)
    hold[6] = gripper
    return hold


class CommandSlot:
    """The latest command and gripper command, and the lockstep state, shared by the executor's callbacks and the
    worker thread (one condition guards them and wakes a waiting worker). Ticks are control periods."""

    def __init__(self, control_hz: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.control_hz = control_hz
        self.clock = clock
        self.cond = threading.Condition()
        self.command: Command | None = None
        self.gripper: float | None = None  # latest gripper_cmd (+1 open / -1 closed)
        self.fresh = False  # a step-triggering command arrived since the latest observation began to be published
        self.published_at = clock()
        self.published = 0  # observations published so far (a step is granted for one of them)

    # ------------------------------------------------------------------------------------------ commands
    def in_force(self, cmd: Command, tick: int, timeout: float) -> bool:
        """Whether ``cmd`` still applies at ``tick``: it arrived at most ``timeout`` sim seconds before."""
        return (tick - cmd.tick) / self.control_hz <= timeout + EPS

    def put(self, action: np.ndarray, tick: int) -> None:
        """A step-triggering command (action or twist) arrived at ``tick``."""
        with self.cond:
            self.command = Command(action, tick)
            self.fresh = True
            self.cond.notify_all()

    def put_gripper(self, gripper: float, tick: int, timeout: float) -> None:
        """A gripper command: replaces the gripper of the command in force (keeping its arrival tick), else starts
        a still command at ``tick``. Never triggers a lockstep step."""
        with self.cond:
            self.gripper = gripper
            cmd = self.command
            if cmd is not None and self.in_force(cmd, tick, timeout):
                action = cmd.action.copy()
                action[6] = gripper
                self.command = Command(action, cmd.tick)
            else:
                self.command = Command(hold_action(gripper), tick)

    def select(self, tick: int, timeout: float) -> np.ndarray | None:
        """The action of the command in force at ``tick``, or None: hold still."""
        with self.cond:
            cmd = self.command
            if cmd is not None and self.in_force(cmd, tick, timeout):
                return cmd.action
        return None

    def clear(self) -> None:
        """Forgets the command and the gripper command (a reset)."""
        with self.cond:
            self.command, self.gripper = None, None

    # ------------------------------------------------------------------------------------------ lockstep
    def observation_begins(self) -> None:
        """An observation starts to be published: from now on a command answers it."""
        with self.cond:
            self.fresh = False

    def observation_published(self) -> None:
        with self.cond:
            self.published_at = self.clock()
            self.published += 1

    def wake(self) -> None:
        """Wakes a waiting worker to re-read its conditions (a parameter changed, shutdown)."""
        with self.cond:
            self.cond.notify_all()

    def idle(self, seconds: float) -> None:
        """Waits up to ``seconds`` or until woken (nothing to step)."""
        with self.cond:
            self.cond.wait(seconds)

    def wait_turn(self, running: Callable[[], bool], lockstep: Callable[[], bool],
                  timeout: Callable[[], float]) -> tuple[int | None, bool]:
        """Blocks until a step may be taken: at once without ``lockstep()``, else after a fresh command or
        ``timeout()`` wall seconds since the latest observation was published (0: wait for a command). The
        callables are re-read while waiting. Returns (the number of the observation the step answers, or None
        once ``running()`` is false; whether the lockstep wait timed out)."""
        with self.cond:
            while running() and lockstep() and not self.fresh:
                seconds = timeout()
                remaining = self.published_at + seconds - self.clock() if seconds > 0 else 0.1
                if remaining <= 0:
                    return self.published, True
                self.cond.wait(min(remaining, 0.1))
            return (self.published if running() else None), False


class Pacer:
    """Spaces steps to ``real_time_factor`` x real time (0: as fast as possible) without catching up."""

    def __init__(self, control_hz: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.control_hz = control_hz
        self.clock = clock
        self.due = clock()

    def wait(self, real_time_factor: float, stop: threading.Event) -> bool:
        """Waits until the next step is due; False when ``stop`` was set meanwhile."""
        if real_time_factor > 0:
            if stop.wait(max(0.0, self.due - self.clock())):
                return False
            self.due = max(self.due + 1.0 / (self.control_hz * real_time_factor), self.clock())
        return True
