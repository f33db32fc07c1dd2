"""sim_node's episode bookkeeping and sim time, without ROS: resets from the parameters (:class:`Episodes`), what
an episode reports, the seed sequence of resets, the step limit, and header stamps from control ticks."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from ivm_ros_sim.calvin import tasks
from ivm_ros_sim.calvin.scene import CONTROL_HZ

NS_PER_TICK = 1_000_000_000 / CONTROL_HZ
RANDOM_TASK = "random"  # the task parameter's value for "draw one from task_pool"
ALL_TASKS = "all"  # task_pool: ["all"] = the 34 CALVIN tasks
#: task_pool's default: the 6 tasks the shipped embedded policies were trained on (their model card), so a
#: simulator launched beside that policy never asks it for a task it has not seen.
POLICY_TASKS = ("lift_red_block_table", "lift_blue_block_table", "open_drawer", "turn_on_led", "move_slider_left",
                "push_pink_block_right")


def pool_tasks(pool: Sequence[str]) -> tuple[str, ...]:
    """The tasks of a ``task_pool`` (``["all"]``: the 34); ValueError for an empty pool or an unknown name."""
    names = tuple(tasks.all_tasks()) if list(pool) == [ALL_TASKS] else tuple(pool)
    unknown = [name for name in names if name not in tasks.all_tasks()]
    if not names or unknown:
        raise ValueError(f"task_pool must name CALVIN tasks (or be ['all']), got unknown {unknown or 'empty pool'}")
    return names


def draw_task(task: str, pool: Sequence[str], seed: int) -> str:
    """The task of a reset: ``task`` itself, or for RANDOM_TASK one of ``pool`` (:func:`pool_tasks`) drawn from
    the reset's ``seed`` (same seed, same task). ValueError for an empty pool or an unknown name."""
    if task != RANDOM_TASK:
        return task
    names = pool_tasks(pool)
    return names[int(np.random.default_rng(seed).integers(len(names)))]


@dataclasses.dataclass
class Episode:
    """What ``~/get_success`` reports; ``steps`` control periods since the reset."""

    task: str
    seed: int
    distraction: str
    instruction: str
    steps: int = 0
    success: bool = False
    truncated: bool = False

    def report(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"elapsed_s": round(self.steps / CONTROL_HZ, 6)}

    def started(self) -> dict[str, Any]:
        """What ``~/reset`` answers: the episode's task, seed, distraction and instruction."""
        keys = ("task", "seed", "distraction", "instruction")
        return {k: v for k, v in dataclasses.asdict(self).items() if k in keys}

    def over(self, max_steps: int) -> bool:
        """Whether the episode reached ``max_steps`` (0: no limit); records it as ``truncated``."""
        self.truncated = bool(max_steps) and self.steps >= max_steps
        return self.truncated


class SeedSequence:
    """Seeds of successive resets: ``seed + k * increment``, k counting the resets since ``seed`` was set."""

    def __init__(self) -> None:
        self.k = 0

    def seed(self, seed: int, increment: int) -> int:
        """The seed of the next reset (call :meth:`advance` once that reset succeeded)."""
        return seed + self.k * increment

    def advance(self) -> None:
        self.k += 1

    def restart(self) -> None:
        """``seed`` was set: the next reset uses it as it is."""
        self.k = 0


class Episodes:
    """The current episode and the resets that start them: each reset uses the next seed of the sequence and
    advances sim time by one tick (``resets``), so two episodes never share a stamp."""

    def __init__(self) -> None:
        self.current: Episode | None = None
        self.seeds = SeedSequence()
        self.resets = 0

    def start(self, env: Any, task: str, seed: int, increment: int, distraction: str, split: str,
              pool: Sequence[str] = POLICY_TASKS) -> tuple[dict[str, Any] | None, str]:
        """Resets ``env`` (a :class:`~ivm_ros_sim.calvin.env.CalvinSceneEnv`) to ``task`` (or RANDOM_TASK: one of
        ``pool``, see :func:`draw_task`), the sequence's next seed, ``distraction`` and an instruction from
        ``split``. Returns (first observation, "") or, when the reset fails (bad names, no valid start state),
        (None, why); then there is no episode."""
        seed = self.seeds.seed(seed, increment)
        try:
            obs, info = env.reset(seed=seed, task=draw_task(task, pool, seed), distraction=distraction,
                                  options={"instruction_split": split})
        except Exception as exc:
            self.current = None
            return None, f"reset failed for task={task} seed={seed} distraction={distraction}: {exc}"
        self.seeds.advance()
        self.resets += 1
        self.current = Episode(info["task"], seed, distraction, info["instruction"])
        return obs, ""


def stamp(ticks: int) -> tuple[int, int]:
    """(sec, nanosec) of ``ticks`` control periods of sim time."""
    sec, nanosec = divmod(round(ticks * NS_PER_TICK), 1_000_000_000)
    return sec, nanosec
