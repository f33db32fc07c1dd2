"""History and action-chunk execution, kept apart from the models (as Octo's gym wrappers are).

* :class:`History` keeps the last ``window`` observations for a model with an observation window (Octo: 2).
* :class:`TemporalEnsemble` averages the predictions different chunks made for each coming step (ACT's
  temporal ensembling, as Octo's ``TemporalEnsembleWrapper``, for the current step and the ones after it).
* :class:`RecedingHorizon` executes the first ``execute_steps`` actions of a chunk, then asks the model again
  (Octo's ``RHCWrapper``).

Every call returns the actions from now on ((k, 7), executed one per control step); the next observation's
``elapsed_steps`` tells the wrappers how many were executed (1 in lockstep, where each call's first row is
exactly what Octo's wrappers return), so a controller faster than the camera executes the plan between frames.
* :class:`StickyGripper` turns a continuous gripper output into open/closed commands that switch only after
  ``repeat`` consecutive requests (Octo's WidowX evaluation).

The last three wrap a :class:`~ivm_ros.policies.base.Policy` and are policies themselves. Order them
model -> TemporalEnsemble or RecedingHorizon -> StickyGripper: the gripper is decided on executed actions.
NumPy only.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from ivm_ros.policies.base import Observation, Policy, check_actions


class History:
    """The last ``window`` observations of each key, stacked, with Octo's timestep pad mask.

    The first :meth:`push` after :meth:`reset` fills the whole window with copies of that observation (so the
    model always sees ``window`` frames); the pad mask marks those copies as padding until real frames
    replace them.
    """

    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._frames: collections.deque[dict[str, np.ndarray]] = collections.deque(maxlen=window)
        self.count = 0  # observations pushed since reset

    def reset(self) -> None:
        self._frames.clear()
        self.count = 0

    def push(self, items: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Adds one observation (key -> array, e.g. ``{"image_primary": (256, 256, 3) uint8}``).

        Returns (key -> (window, ...) stacked arrays, oldest first; pad mask (window,) bool, True where the
        step is a real observation).
        """
        if self._frames and set(items) != set(self._frames[-1]):
            raise ValueError(f"observation keys changed from {sorted(self._frames[-1])} to {sorted(items)}")
        if not self._frames:
            self._frames.extend([items] * self.window)
        else:
            self._frames.append(items)
        self.count += 1
        stacked = {k: np.stack([f[k] for f in self._frames]) for k in items}
        mask = np.zeros(self.window, dtype=bool)
        mask[self.window - min(self.count, self.window) :] = True
        return stacked, mask


class PolicyWrapper(Policy):
    """A policy that forwards to ``policy`` (reset, close) and post-processes its actions."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy.config)
        self.policy = policy

    def reset(self, instruction: str) -> None:
        self.policy.reset(instruction)

    def close(self) -> None:
        self.policy.close()

    def describe(self) -> dict[str, Any]:
        return {**self.policy.describe(), "wrappers": self._chain()}

    def _chain(self) -> str:
        inner = self.policy._chain() if isinstance(self.policy, PolicyWrapper) else type(self.policy).__name__
        return f"{type(self).__name__}({inner})"


class TemporalEnsemble(PolicyWrapper):
    """Executes, at every step, a weighted average of the actions the last chunks predicted for it.

    A chunk predicted ``a`` steps ago (its age, advanced by each observation's ``elapsed_steps``) contributes
    its row ``a + k`` to step ``now + k``; chunks older than ``horizon`` steps are dropped. Weights are
    ``exp(-exp_weight * j)`` with ``j = 0`` for the oldest contributing chunk (so ``exp_weight > 0`` trusts
    older predictions more, as in Octo; 0 is a plain mean), normalised to sum 1. Returns (horizon, 7): row ``k``
    is the ensemble for step ``now + k`` from the chunks known now, so a caller that executes several steps
    between observations has them (row 0 alone is ACT's / Octo's temporal ensembling).
    """

    def __init__(self, policy: Policy, horizon: int, exp_weight: float = 0.0) -> None:
        super().__init__(policy)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.horizon = horizon
        self.exp_weight = exp_weight
        self._chunks: list[tuple[int, np.ndarray]] = []  # (age in steps, chunk), oldest first

    def reset(self, instruction: str) -> None:
        self._chunks.clear()
        super().reset(instruction)

    def act(self, obs: Observation) -> np.ndarray:
        chunk = check_actions(self.policy.act(obs))
        if len(chunk) < self.horizon:
            raise ValueError(f"temporal ensembling over {self.horizon} steps needs chunks of >= {self.horizon}, "
                             f"got {len(chunk)}")
        elapsed = max(int(obs.elapsed_steps), 0)
        self._chunks = [(age + elapsed, c) for age, c in self._chunks if age + elapsed < self.horizon]
        self._chunks.append((0, chunk[: self.horizon]))
        rows = []
        for k in range(self.horizon):
            preds = np.stack([c[age + k] for age, c in self._chunks if age + k < self.horizon])
            weights = np.exp(-self.exp_weight * np.arange(len(preds)))
            rows.append((weights[:, None] * preds).sum(axis=0) / weights.sum())
        return np.stack(rows).astype(np.float32)


class RecedingHorizon(PolicyWrapper):
    """Asks the policy for a chunk, executes its first ``execute_steps`` actions, then asks again (Octo's
    ``RHCWrapper``). Each call returns the actions of the current chunk not executed yet ((k, 7), k <=
    ``execute_steps``); an observation's ``elapsed_steps`` says how many of the previous call's rows were
    executed. One row executed per call gives Octo's behaviour."""

    def __init__(self, policy: Policy, execute_steps: int) -> None:
        super().__init__(policy)
        if execute_steps < 1:
            raise ValueError(f"execute_steps must be >= 1, got {execute_steps}")
        self.execute_steps = execute_steps
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._started = False

    def reset(self, instruction: str) -> None:
        self._queue.clear()
        self._started = False
        super().reset(instruction)

    def act(self, obs: Observation) -> np.ndarray:
        if self._started:
            for _ in range(min(max(int(obs.elapsed_steps), 0), len(self._queue))):
                self._queue.popleft()
        self._started = True
        if not self._queue:
            self._queue.extend(check_actions(self.policy.act(obs))[: self.execute_steps])
        return np.stack(self._queue)


class StickyGripper(PolicyWrapper):
    """Binarises the gripper (column 6) with hysteresis in time.

    The gripper starts open at reset. A row asks for "open" when its gripper value is above ``threshold``;
    the state switches only after ``repeat`` consecutive rows ask for the other state (Octo's WidowX
    evaluation: threshold 0.5 on outputs in [0, 1]). Outputs ``open_value`` / ``closed_value``
    (default +1 / -1: the simulator's convention, > 0 open). Rows of a chunk are processed in order; the next
    observation's ``elapsed_steps`` says how many of them were executed, and the state continues from there
    (rows that were never executed do not move it).
    """

    def __init__(
        self,
        policy: Policy,
        threshold: float = 0.5,
        repeat: int = 1,
        open_value: float = 1.0,
        closed_value: float = -1.0,
    ) -> None:
        super().__init__(policy)
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        self.threshold, self.repeat = threshold, repeat
        self.open_value, self.closed_value = open_value, closed_value
        self.is_open = True
        self._requests = 0  # consecutive rows asking for the other state
        self._after_rows: list[tuple[bool, int]] = []  # (is_open, requests) after each row of the last output
        self._before_rows = (True, 0)  # (is_open, requests) before the last output's rows

    def reset(self, instruction: str) -> None:
        self.is_open, self._requests, self._after_rows, self._before_rows = True, 0, [], (True, 0)
        super().reset(instruction)

    def act(self, obs: Observation) -> np.ndarray:
        executed = min(max(int(obs.elapsed_steps), 0), len(self._after_rows))
        if executed:
            self.is_open, self._requests = self._after_rows[executed - 1]
        elif self._after_rows:  # none of the last output's rows ran: back to the state before them
            self.is_open, self._requests = self._before_rows
        self._before_rows = (self.is_open, self._requests)
        actions = check_actions(self.policy.act(obs)).copy()
        is_open, requests, self._after_rows = self.is_open, self._requests, []
        for row in actions:
            wants_open = bool(row[6] > self.threshold)
            requests = requests + 1 if wants_open != is_open else 0
            if requests >= self.repeat:
                is_open, requests = wants_open, 0
            row[6] = self.open_value if is_open else self.closed_value
            self._after_rows.append((is_open, requests))
        return actions


#: How a model's chunks are executed: temporal ensembling, receding horizon, or the whole chunk by the caller.
EXECUTION = ("ensemble", "receding", "chunk")


def check_execution(execution: str) -> None:
    if execution not in EXECUTION:
        raise ValueError(f"execution must be one of {EXECUTION}, got {execution!r}")


def execution_chain(core: Policy, execution: str, horizon: int, exp_weight: float, execute_steps: int,
                    gripper_threshold: float, gripper_repeat: int) -> Policy:
    """core -> TemporalEnsemble(horizon, exp_weight) | RecedingHorizon(execute_steps) | nothing ("chunk")
    -> StickyGripper(gripper_threshold, gripper_repeat)."""
    check_execution(execution)
    chain = core
    if execution == "ensemble":
        chain = TemporalEnsemble(chain, horizon, exp_weight)
    elif execution == "receding":
        chain = RecedingHorizon(chain, execute_steps)
    return StickyGripper(chain, gripper_threshold, gripper_repeat)


class ExecutedPolicy(Policy):
    """A model policy as the robot runs it: subclasses build ``self.core`` and ``self.chain`` (see
    :func:`execution_chain`); reset / act / close go through the chain."""

    core: Policy
    chain: Policy

    def reset(self, instruction: str) -> None:
        self.chain.reset(instruction)

    def act(self, obs: Observation) -> np.ndarray:
        return self.chain.act(obs)

    def close(self) -> None:
        self.chain.close()

    def warm_up(self, obs: Observation) -> None:
        """One act on ``obs`` between two empty resets, so JAX compiles before the first real frame."""
        self.chain.reset("")
        self.chain.act(obs)
        self.chain.reset("")
