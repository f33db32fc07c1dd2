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
    chain: int = -1  # the official chain this episode belongs to (-1: a task episode)
    held: bool = False  # a chain's subtask waits for ~/resume before the sim steps

    def stops(self, max_steps: int) -> bool:
        """Whether the sim must not step: over ``max_steps``, held, or a chain's subtask that succeeded (CALVIN
        moves to the next subtask at the first success; the harness begins it)."""
        return self.over(max_steps) or self.held or (self.chain >= 0 and self.success)

    def report(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"elapsed_s": round(self.steps / CONTROL_HZ, 6)}

    def started(self) -> dict[str, Any]:
        """What ``~/reset`` answers: the episode's task, seed, distraction and instruction."""
        keys = ("task", "seed", "distraction", "instruction") + (("chain",) if self.chain >= 0 else ())
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

    def start_chain(self, env: Any, index: int, distraction: str, seed: int) -> tuple[dict[str, Any] | None, str]:
        """Resets ``env`` to official chain ``index``'s start state (distractors drawn with ``seed + index``, as
        ``calvin-eval`` does). No task is active and the episode is held until :meth:`begin_subtask` and
        :meth:`resume`. Returns (first observation, "") or (None, why)."""
        from ivm_ros_sim.calvin.chains import load_chains, reset_to_chain

        try:
            obs = reset_to_chain(env, load_chains(1, start=index)[0], distraction, seed)
        except Exception as exc:
            self.current = None
            return None, f"reset failed for chain={index} distraction={distraction}: {exc}"
        self.resets += 1
        self.current = Episode("", seed, distraction, "", chain=index, held=True)
        return obs, ""

    def begin_subtask(self, env: Any, task: str) -> str:
        """Begins ``task`` from the current state of the current chain (held until :meth:`resume`); "" or why not."""
        chain = self.current
        if chain is None or chain.chain < 0:
            return "begin_subtask needs a chain episode: set 'chain' and call ~/reset first"
        if chain.held and chain.task == task:
            return ""  # a request sent again (its answer lost): the subtask is begun and held already
        try:
            info = env.begin_subtask(task)
        except ValueError as exc:
            return str(exc)
        self.current = Episode(task, chain.seed, chain.distraction, info["instruction"], chain=chain.chain, held=True)
        return ""

    def resume(self) -> str:
        """Lets a held chain episode step, with one more tick so its next observation gets a new stamp: "resumed".
        "again" for a chain episode already resumed (a request sent again after its answer was lost: nothing
        changes); "" when there is no chain episode."""
        if self.current is None or self.current.chain < 0:
            return ""
        if not self.current.held:
            return "again"
        self.current.held = False
        self.resets += 1
        return "resumed"


def stamp_ns(ticks: int) -> int:
    """Nanoseconds of sim time of ``ticks`` control periods (the header stamp of that tick's observation)."""
    return round(ticks * NS_PER_TICK)


def stamp(ticks: int) -> tuple[int, int]:
    """(sec, nanosec) of ``ticks`` control periods of sim time."""
    sec, nanosec = divmod(stamp_ns(ticks), 1_000_000_000)
    return sec, nanosec
