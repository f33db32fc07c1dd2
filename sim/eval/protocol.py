"""CALVIN's long-horizon evaluation protocol over :class:`~ivm_ros_sim.calvin.env.CalvinSceneEnv` (no ROS).

The protocol, as the official evaluation runs it: each chain of ``eval/eval_sequences.jsonl`` starts from its
exact ``robot_obs`` / ``scene_obs``; its 5 subtasks run in order without a reset between them; before each, the
agent is reset and the task oracle takes the state then as the subtask's start; the subtask gets its one
evaluation sentence and at most 360 steps, succeeds on the first step the oracle reports it, and the chain stops
at the first failure. Reported: the success rate of 1..5 subtasks in a row and the average length (0-5).

Agents have CALVIN's model interface: ``reset()`` and ``step(obs, goal) -> (7,) action`` (see
:class:`ivm_ros.calvin_agent.IvmCalvinModel`); the scripted expert is one too (:class:`ExpertAgent`, privileged).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.chains import Chain, reset_to_chain
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.expert import Expert
from ivm_ros_sim.eval.runs import stderr

EP_LEN = 360  #: CALVIN's step budget per subtask
CHAIN_LEN = 5


class Agent(Protocol):
    """CALVIN's model interface."""

    def reset(self) -> None: ...

    def step(self, obs: dict[str, Any], goal: str) -> np.ndarray: ...


@dataclasses.dataclass
class ChainResult:
    """Outcome of one chain: ``completed`` subtasks in a row (0..5), steps each attempted subtask took, the
    wall seconds the chain took and the worker that ran it (``host:pid``)."""

    index: int
    subtasks: list[str]
    completed: int
    steps: list[int]
    seconds: float = 0.0
    worker: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: called after every step with (env, obs the agent saw, agent, subtask index)
StepHook = Callable[[CalvinSceneEnv, dict[str, np.ndarray], Agent, int], None]


def run_subtask(env: CalvinSceneEnv, agent: Agent, task: str, obs: dict[str, np.ndarray], max_steps: int = EP_LEN,
                hook: StepHook | None = None, index: int = 0) -> tuple[bool, int, dict[str, np.ndarray]]:
    """One subtask from the current state: (success, steps taken, last observation)."""
    agent.reset()
    env.begin_subtask(task)
    goal = env.instruction
    for step in range(1, max_steps + 1):
        action = agent.step(obs, goal)
        if hook is not None:
            hook(env, obs, agent, index)
        obs, _, done, _, _ = env.step(action)
        if done:
            return True, step, obs
    return False, max_steps, obs


def run_chain(env: CalvinSceneEnv, agent: Agent, chain: Chain, distraction: str = "none", seed: int = 0,
              max_steps: int = EP_LEN, hook: StepHook | None = None) -> ChainResult:
    """Runs one chain (see the module docstring). Distractors are drawn with ``seed + chain.index``, so a
    chain's outcome does not depend on which worker runs it or what ran before."""
    obs = reset_to_chain(env, chain, distraction, seed)

    def one(task: str, i: int) -> tuple[bool, int]:
        nonlocal obs
        ok, n, obs = run_subtask(env, agent, task, obs, max_steps, hook, i)
        return ok, n

    return chain_outcome(chain, one)


def chain_outcome(chain: Chain, run_one: Callable[[str, int], tuple[bool, int]]) -> ChainResult:
    """Runs ``chain``'s subtasks in order with ``run_one(task, position) -> (success, steps)`` until the first
    failure (the protocol's rule, for any transport)."""
    steps: list[int] = []
    for i, task in enumerate(chain.subtasks):
        ok, n = run_one(task, i)
        steps.append(n)
        if not ok:
            return ChainResult(chain.index, list(chain.subtasks), len(steps) - 1, steps)
    return ChainResult(chain.index, list(chain.subtasks), len(steps), steps)


def summarize(results: list[ChainResult]) -> dict[str, Any]:
    """``avg_len`` with its standard error, ``success_at`` (5 rates: 1..5 in a row), ``per_task`` success
    ({task: rate over its attempts}), ``per_task_attempts`` and ``n_chains``."""
    n = len(results)
    lens = np.array([r.completed for r in results], np.float64)
    attempts: dict[str, int] = {}
    wins: dict[str, int] = {}
    for r in results:
        for i, task in enumerate(r.subtasks[:len(r.steps)]):
            attempts[task] = attempts.get(task, 0) + 1
            wins[task] = wins.get(task, 0) + int(i < r.completed)
    return {
        "avg_len": float(lens.mean()) if n else 0.0,
        "avg_len_stderr": stderr(lens),
        "success_at": [float((lens >= k).mean()) if n else 0.0 for k in range(1, CHAIN_LEN + 1)],
        "per_task": {t: wins[t] / attempts[t] for t in sorted(attempts)},
        "per_task_attempts": dict(sorted(attempts.items())),
        "n_chains": n,
    }


class ExpertAgent:
    """The scripted expert behind CALVIN's model interface (privileged: it reads the simulator's state). The goal
    sentence is mapped back to its task; a new plan starts at every :meth:`reset`; when the plan ends before the
    oracle reports success the arm holds still."""

    def __init__(self, env: CalvinSceneEnv) -> None:
        self.env = env
        self.task_of = {s: t for t, s in T.eval_sentences().items()}
        self._plan: Iterator[np.ndarray] | None = None

    def reset(self) -> None:
        self._plan = None

    def next_action(self, goal: str) -> np.ndarray | None:
        """The plan's next action for ``goal`` (a new plan after :meth:`reset`), or None once it has ended."""
        if self._plan is None:
            if goal not in self.task_of:
                raise ValueError(f"the expert knows only CALVIN's evaluation sentences, got {goal!r}")
            self._plan = Expert(self.env).plan(self.task_of[goal])
        return next(self._plan, None)

    def step(self, obs: dict[str, Any], goal: str) -> np.ndarray:
        a = self.next_action(goal)
        return np.array([0.0] * 6 + [self.env.scene.gripper_action]) if a is None else a
