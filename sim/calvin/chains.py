"""CALVIN's 1000 evaluation chains (``eval/eval_sequences.jsonl`` of the assets), in the official order: each with
its symbolic start, its 5 subtasks and the exact ``robot_obs`` / ``scene_obs`` the official evaluation resets to."""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from typing import Any

import numpy as np
from ivm_ros_sim.calvin.scene import shared_dir

N_CHAINS = 1000


@dataclasses.dataclass(frozen=True)
class Chain:
    """One evaluation chain: its index in the official order, symbolic start, 5 subtasks and start state."""

    index: int
    initial_state: dict[str, Any]
    subtasks: tuple[str, ...]
    robot_obs: np.ndarray  # (15,)
    scene_obs: np.ndarray  # (24,)


@lru_cache(maxsize=1)
def _chain_lines() -> tuple[str, ...]:
    with open(shared_dir() / "eval/eval_sequences.jsonl") as f:
        return tuple(line for line in f if line.strip())


def load_chains(n: int | None = None, start: int = 0) -> list[Chain]:
    """Chains ``start .. start + n - 1`` of the official 1000 (all from ``start`` when ``n`` is None)."""
    lines = _chain_lines()
    if not 0 <= start < len(lines) or (n is not None and n < 1):
        raise ValueError(f"chains: start must be in 0..{len(lines) - 1} and n >= 1, got start={start}, n={n}")
    out = []
    for i in range(start, len(lines) if n is None else min(len(lines), start + n)):
        d = json.loads(lines[i])
        out.append(Chain(i, d["initial_state"], tuple(d["subtasks"]), np.asarray(d["robot_obs"], np.float64),
                         np.asarray(d["scene_obs"], np.float64)))
    return out


def start_in_scene(chain: Chain, offsets: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(robot_obs, scene_obs) of ``chain``'s start in a scene other than D: the same symbolic start, each block
    moved along x with what it stands on (``offsets`` = ``CalvinScene.offsets``: the table's free area, the cabinet
    shelf). Scene D (all offsets zero) gives the official start unchanged."""
    scene_obs = chain.scene_obs.copy()
    for i, color in enumerate(("red", "blue", "pink")):
        where = chain.initial_state[f"{color}_block"]
        scene_obs[6 + 6 * i] += offsets["table"] if where == "table" else offsets["base__plank"]
    return chain.robot_obs.copy(), scene_obs


def reset_to_chain(env: Any, chain: Chain, distraction: str = "none", seed: int = 0) -> dict[str, np.ndarray]:
    """Resets a :class:`~ivm_ros_sim.calvin.env.CalvinSceneEnv` to ``chain``'s start in the env's scene
    (:func:`start_in_scene`), distractors drawn with ``seed + chain.index`` so that a chain's start does not depend
    on which worker runs it. Returns the first observation."""
    robot_obs, scene_obs = start_in_scene(chain, env.scene.offsets)
    return env.reset_to_state(robot_obs, scene_obs, distraction, seed=seed + chain.index)[0]
