"""Hard cases for the lite IVM training data (lite v3, issue 19): weighted distraction levels, several scenes and
colour swaps, as options of :func:`ivm_ros_sim.data.engine.generate_ivm`.

* Levels with weights (``"none:1,paper-large:3"``): the episode's level is drawn with those proportions from the
  engine's own generator (``rng.choice``) instead of uniformly (``rng.integers``); without weights the draw is the
  one of the v2 data, so a level list without weights gives the same frames as before.
* Scenes (``"A,B,C"``, weights allowed): each episode's scene is drawn from its own generator
  (``default_rng([seed, SCENE_STREAM])``), so the task, level and episode seed draws are those of a one-scene run.
* Colour swaps (``swap_fraction``): a rendered frame whose task names a block becomes, with that probability, one
  sample per block colour: the original instruction plus the same sentence with the colour word replaced (or a
  fresh paraphrase of the recoloured task where the word does not occur exactly once), each with the ground-truth
  mask of its own task (the named block, plus what else the mask rule adds). A colour whose block has fewer than
  :data:`MIN_BLOCK_PIXELS` visible pixels (scaled to the frame size) is skipped. The swap decisions, the swap
  samples' instructions and their labels come from a third generator (``default_rng([seed, SWAP_STREAM])``), so
  the original samples are the ones the same run without swaps writes (the count ends earlier).

Named mixes (:data:`MIXES`) bundle these for ``ivm-ros sim-data ivm --mix`` and ``ivm-ros sim-train-lite --mix``:
``v2`` is the shipped lite_v2's data (the defaults), ``v2-abc`` the same data from scenes A, B, C only (lite_v2_abc:
masks for ABC->D that never saw scene D), ``v3`` and ``v3-abc`` the lite v3 mixes (scenes A-D for the D->D model,
A-C for ABC->D).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
from ivm_ros_sim.calvin import distractors as dist
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.masks import Part, relevant_parts
from ivm_ros_sim.calvin.scene import check_scene, decode_segmentation

SCENE_STREAM = 0x5CE7E  #: second seed word of the scene generator
SWAP_STREAM = 0x5A4B  #: second seed word of the swap generator
MIN_BLOCK_PIXELS = 10  #: at 200x200, as the swap test of ``lite-eval`` (sim/eval/mask_metrics.py)
V2_LEVELS = "none,small,medium,large"
V3_LEVELS = ("none:1,small:1,medium:1,large:1,clutter:1,lookalike:2,fixture_lookalike:1,appearance:1,"
             "paper-large:3")


@dataclasses.dataclass(frozen=True)
class MixSpec:
    """A named data mix as command-line values: ``levels`` and ``scenes`` as ``name[:weight],...`` (``scenes``
    None: the command's single ``--scene``), ``swap_fraction`` in [0, 1]."""

    levels: str
    scenes: str | None
    swap_fraction: float


MIXES: dict[str, MixSpec] = {
    "v2": MixSpec(V2_LEVELS, None, 0.0),
    "v2-abc": MixSpec(V2_LEVELS, "A,B,C", 0.0),
    "v3": MixSpec(V3_LEVELS, "A,B,C,D", 0.5),
    "v3-abc": MixSpec(V3_LEVELS, "A,B,C", 0.5),
}


def parse_weighted(text: str) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
    """``"a,b:2,c"`` -> (("a", "b", "c"), (1.0, 2.0, 1.0)); weights None when no entry has one."""
    names, weights = [], []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        name, _, w = item.partition(":")
        names.append(name)
        weights.append(float(w) if w else 1.0)
    if not names:
        raise ValueError(f"empty list {text!r}")
    if any(w <= 0 for w in weights):
        raise ValueError(f"weights must be > 0 in {text!r}")
    return tuple(names), (tuple(weights) if ":" in text else None)


def _probabilities(weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    return w / w.sum()


@dataclasses.dataclass
class EpisodeDraws:
    """Draws each episode's distraction level (from the engine's generator) and scene (from its own generator).

    levels: level names; level_weights: one weight > 0 per level, or None for the uniform v2 draw; scenes: scene
    names (one scene: no draw at all); scene_weights: as level_weights."""

    seed: int
    levels: tuple[str, ...]
    level_weights: tuple[float, ...] | None = None
    scenes: tuple[str, ...] = ("D",)
    scene_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for lv in self.levels:
            dist.check_level(lv)
        for sc in self.scenes:
            check_scene(sc)
        for name, names, w in (("level", self.levels, self.level_weights), ("scene", self.scenes, self.scene_weights)):
            if w is not None and (len(w) != len(names) or min(w) <= 0):
                raise ValueError(f"{name} weights {w} must be one positive number per {name} of {names}")
        self._scene_rng = np.random.default_rng([self.seed, SCENE_STREAM])

    def level(self, rng: np.random.Generator) -> str:
        """The next episode's level, drawn from ``rng`` (the engine's generator)."""
        if self.level_weights is None:
            return self.levels[int(rng.integers(len(self.levels)))]
        return self.levels[int(rng.choice(len(self.levels), p=_probabilities(self.level_weights)))]

    def scene(self) -> str:
        """The next episode's scene (no draw when there is one scene)."""
        if len(self.scenes) == 1:
            return self.scenes[0]
        p = None if self.scene_weights is None else _probabilities(self.scene_weights)
        return self.scenes[int(self._scene_rng.choice(len(self.scenes), p=p))]


def recolour(task: str, instruction: str, colour: str) -> tuple[str, str | None]:
    """(task naming ``colour``'s block instead of the task's block, the instruction with its colour word replaced,
    or None when the word does not occur exactly once). ``task`` must name a block."""
    old = T.target_block(task).split("_")[1]  # type: ignore[union-attr]
    new_task = f"_{task}_".replace(f"_{old}_", f"_{colour}_")[1:-1]
    T.check_task(new_task)
    if len(re.findall(rf"\b{old}\b", instruction)) != 1:
        return new_task, None
    return new_task, re.sub(rf"\b{old}\b", colour, instruction)


@dataclasses.dataclass
class Swapper:
    """Decides which frames take the colour swap and builds their extra (task, instruction, parts).

    swap_fraction: probability that a frame of a block-naming task is swapped; split: instruction paraphrase split
    for recoloured tasks whose sentence cannot be recoloured word for word."""

    seed: int
    swap_fraction: float
    split: str = "train"

    def __post_init__(self) -> None:
        if not 0.0 <= self.swap_fraction <= 1.0:
            raise ValueError(f"swap_fraction must be in [0, 1], got {self.swap_fraction}")
        self.rng = np.random.default_rng([self.seed, SWAP_STREAM])

    def variants(self, env, seg: np.ndarray, task: str, instruction: str) -> Iterator[tuple[str, str, list[Part]]]:
        """For a swapped frame, (task, instruction, mask parts) of every other colour whose block is visible in the
        (H, W) int32 segmentation ``seg``; nothing for an unswapped frame or a task that names no block. ``env``:
        the :class:`~ivm_ros_sim.calvin.env.CalvinSceneEnv` the frame was rendered in (scene, start state)."""
        target = T.target_block(task)
        if self.swap_fraction <= 0.0 or target is None or self.rng.random() >= self.swap_fraction:
            return
        body, _ = decode_segmentation(seg)
        least = max(1, round(MIN_BLOCK_PIXELS * seg.size / 200**2))
        for colour in T.COLORS:
            block = f"block_{colour}"
            if block == target or (body == env.scene.blocks[block]).sum() < least:
                continue
            new_task, text = recolour(task, instruction, colour)
            text = text or T.instruction(new_task, self.rng, self.split)
            yield new_task, text, relevant_parts(env.scene, new_task, env.start_state)



def add_mix_arguments(parser: argparse.ArgumentParser, extra: dict[str, str] | None = None) -> None:
    """``--mix``, ``--levels``, ``--scenes``, ``--swap-fraction`` (the last three override the mix's values);
    ``extra``: more ``--mix`` choices the caller handles itself, name -> help (``sim-train-lite``: ``simpler``)."""
    extra = extra or {}
    parser.add_argument("--mix", default="v2", choices=tuple(MIXES) + tuple(extra),
                        help="named data mix: v2 (lite_v2's data), v2-abc (v2 from scenes A-C), v3 (hard cases, scenes "
                        "A-D), v3-abc (scenes A-C)"
                        + "".join(f", {k} ({v})" for k, v in extra.items()))
    parser.add_argument("--levels", default=None,
                        help=f"distraction levels, name[:weight],... (default: the mix's; v2: {V2_LEVELS})")
    parser.add_argument("--scenes", default=None, help="scenes, name[:weight],... (default: the mix's; v2: --scene)")
    parser.add_argument("--swap-fraction", type=float, default=None,
                        help="share of block-naming frames that get one sample per block colour (default: the mix's)")


def resolve(mix: str, levels: str | None = None, scenes: str | None = None,
            swap_fraction: float | None = None) -> dict[str, Any]:
    """``generate_ivm`` keyword arguments (levels, level_weights, scenes, scene_weights, swap_fraction) of mix ``mix``
    with the given overrides; ``scenes`` None where neither sets scenes (the single ``scene`` argument then)."""
    if mix not in MIXES:
        raise ValueError(f"unknown mix {mix!r}; valid: {', '.join(MIXES)}")
    spec = MIXES[mix]
    lv, lw = parse_weighted(levels or spec.levels)
    scene_text = scenes or spec.scenes
    sc, sw = parse_weighted(scene_text) if scene_text else (None, None)
    swap = spec.swap_fraction if swap_fraction is None else swap_fraction
    return {"levels": lv, "level_weights": lw, "scenes": sc, "scene_weights": sw, "swap_fraction": swap}
