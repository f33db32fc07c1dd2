"""simpler_node's episodes and sim time, without ROS: resets from the parameters (:class:`SimplerEpisodes`: task,
seed sequence, episode id, variant make kwargs and reset options; the env is made again when the task or the
variant changes), what an episode reports, and sim time in nanoseconds (one control period per step and per
reset, so two episodes never share a stamp even when the control rate changes with the task)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ivm_ros_sim.ros.episodes import SeedSequence
from ivm_ros_sim.simpler.env import EnvMaker, Frame, SimplerEnvMissing, SimplerTaskEnv


@dataclasses.dataclass
class SimplerEpisode:
    """What ``~/reset`` answers (:meth:`started`) and ``~/get_success`` reports (:meth:`report`). ``success``:
    the env's success at the latest step; ``ever_success``: at any step; ``steps`` control periods."""

    task: str
    seed: int
    episode_id: int
    instruction: str
    variant: dict[str, Any]
    control_hz: float
    steps: int = 0
    success: bool = False
    ever_success: bool = False
    truncated: bool = False

    def started(self) -> dict[str, Any]:
        keys = ("task", "seed", "episode_id", "instruction", "variant")
        return {k: v for k, v in dataclasses.asdict(self).items() if k in keys}

    def report(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"elapsed_s": round(self.steps / self.control_hz, 6)}

    def record(self, frame: Frame, max_steps: int) -> None:
        """Takes a step's frame; the episode is over at the env's time limit or ``max_steps`` (0: none)."""
        self.steps, self.success = frame.steps, frame.success
        self.ever_success |= frame.success
        self.truncated = frame.truncated or (bool(max_steps) and self.steps >= max_steps)


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """A parameter holding a JSON object ("" means {}); ValueError naming ``what`` otherwise."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


class SimplerEpisodes:
    """The env, the current episode and sim time. ``make``: the env factory given to
    :class:`~ivm_ros_sim.simpler.env.SimplerTaskEnv`."""

    def __init__(self, make: EnvMaker | None = None, gripper_threshold: float = 0.0) -> None:
        self.make, self.gripper_threshold = make, gripper_threshold
        self.env: SimplerTaskEnv | None = None
        self.current: SimplerEpisode | None = None
        self.seeds = SeedSequence()
        self.ns = 0  # sim time, nanoseconds
        self.ticks = 0  # control periods so far (steps plus one per reset)

    def ensure_env(self, task: str, variant: dict[str, Any]) -> SimplerTaskEnv:
        """The env of ``task`` with ``variant`` (made again, the old one closed, when either changed)."""
        env = self.env
        if env is None or env.task != task or env.variant != variant:
            if env is not None:
                env.close()
                self.env = None
            self.env = SimplerTaskEnv(task, variant, self.make, self.gripper_threshold)
        return self.env

    def start(self, task: str, seed: int, increment: int, episode_id: int, variant: str,
              options: str) -> tuple[Frame | None, str]:
        """Resets to ``task`` with the sequence's next seed, ``episode_id`` (-1: from the seed) and the JSON
        ``variant`` (make kwargs) / ``options`` (reset options). Returns (first frame, "") or (None, why); raises
        :class:`~ivm_ros_sim.simpler.env.SimplerEnvMissing` when SimplerEnv is not installed."""
        seed = self.seeds.seed(seed, increment)
        try:
            variant_kwargs = parse_json_object(variant, "variant")
            env = self.ensure_env(task, variant_kwargs)
            frame = env.reset(seed, episode_id, parse_json_object(options, "reset_options"))
        except SimplerEnvMissing:
            raise
        except Exception as exc:  # a missing SimplerEnv, a bad name or JSON: no episode, the node keeps serving
            self.current = None
            return None, f"reset failed for task={task} seed={seed} episode_id={episode_id}: {exc}"
        self.seeds.advance()
        self.tick()
        self.current = SimplerEpisode(task, seed, env.episode_id, env.instruction, variant_kwargs, env.control_hz)
        return frame, ""

    def tick(self) -> None:
        """Sim time advances by one control period of the current env."""
        self.ns += round(1e9 / self.env.control_hz)
        self.ticks += 1

    def stamp(self) -> tuple[int, int]:
        """(sec, nanosec) of the current sim time."""
        return divmod(self.ns, 1_000_000_000)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
