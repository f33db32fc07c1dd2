"""Evaluation sets of ``ivm-ros lite-eval``: scene-D frames rendered by the simulator, each with an instruction and
the per-object ground truth of :mod:`ivm_ros_sim.eval.mask_metrics`.

Sets (:data:`SETS`), all in scene D at 200x200 (the static camera), seeded and deterministic:

* ``clean``, ``large``, ``heldout``: the lite training's own evaluation sets
  (:data:`ivm_ros_sim.train.lite.EVAL_SETS`: seeds 101, 102, 103; the training paraphrases, no / large distraction;
  held-out paraphrases over none/small/medium/large). Frames come from the same draws as
  :func:`ivm_ros_sim.data.engine.generate_ivm` (random task and level per episode, the scripted expert driven to 4
  random steps in [0, 90), one instruction per frame), so at ``--frames 400`` they are the very frames the model
  card's mIoU was measured on.
* ``paper-large``, ``clutter``, ``lookalike``, ``fixture_lookalike``, ``appearance``, ``paper-xlarge``: the same kind
  of episodes at that workspace distraction level (:mod:`ivm_ros_sim.calvin.distractors`), training paraphrases,
  seeds 105-110.
* ``calvin``: CALVIN's official evaluation chains (``eval/eval_sequences.jsonl``) in order from chain ``seed``: the
  frame at the start of each subtask (the chain's exact start state for the first; for the next ones the state the
  scripted expert reached by doing the previous subtasks; a chain ends at the expert's first failure), with the
  subtask's CALVIN evaluation sentence; no distraction.

``--seed S`` adds S to the episode sets' seeds (S = 0: the sets above) and starts ``calvin`` at chain S.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

import numpy as np
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin import workspace_distractors
from ivm_ros_sim.calvin.chains import N_CHAINS, load_chains, reset_to_chain
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.expert import run_plan
from ivm_ros_sim.calvin.masks import mask_from_segmentation, relevant_parts
from ivm_ros_sim.calvin.scene import BLOCKS, CalvinScene, decode_segmentation
from ivm_ros_sim.data.engine import EXPERT_TASKS, LabelModel, _episode_frames
from ivm_ros_sim.eval.mask_metrics import MIN_BLOCK_PIXELS
from ivm_ros_sim.train.lite import EVAL_SETS

#: Table links that are task objects (mass on them counts as wrong unless the instruction is about them).
FIXTURE_LINKS = ("drawer_link", "slide_link", "button_link", "switch_link", "led_link", "light_link")
FRAMES_PER_EPISODE = 4  # as the lite training's evaluation sets


@dataclasses.dataclass(frozen=True)
class EpisodeSet:
    """Episodes drawn as the data engine draws them: ``seed``, distraction ``levels``, instruction ``split``."""

    seed: int
    levels: tuple[str, ...]
    split: str


@dataclasses.dataclass(frozen=True)
class ChainSet:
    """Subtask starts of CALVIN's official chains, with the evaluation sentences, at distraction ``level``."""

    level: str = "none"


def _from_lite(name: str) -> EpisodeSet:
    spec = EVAL_SETS[name]
    return EpisodeSet(spec["seed"], tuple(spec["levels"]), spec["instruction_split"])


SETS: dict[str, EpisodeSet | ChainSet] = {
    "clean": _from_lite("clean"),
    "large": _from_lite("large"),
    "heldout": _from_lite("heldout"),
    "paper-large": EpisodeSet(105, ("paper-large",), "train"),
    "clutter": EpisodeSet(106, ("clutter",), "train"),
    "lookalike": EpisodeSet(107, ("lookalike",), "train"),
    "fixture_lookalike": EpisodeSet(108, ("fixture_lookalike",), "train"),
    "appearance": EpisodeSet(109, ("appearance",), "train"),
    "paper-xlarge": EpisodeSet(110, ("paper-xlarge",), "train"),
    "calvin": ChainSet(),
}


@dataclasses.dataclass
class EvalFrame:
    """One frame with its instruction and ground truth; masks are (H, W) bool unless said otherwise.

    image (H, W, 3) uint8 RGB; truth: the instruction's ground-truth mask; named: the named object's visible pixels;
    other: other task objects' and distractors' pixels; blocks (3, H, W) bool: red, blue, pink block pixels;
    swap: None, or for red, blue, pink the (instruction naming that block, its ground-truth mask) when the frame takes
    the swap test (see :mod:`ivm_ros_sim.eval.mask_metrics`); twin: None, or the pixels of the named block's
    identical copy (the ``same`` look-alike: same size and colour, standing next to it), which no instruction can
    tell from the named block (part of ``other``)."""

    image: np.ndarray
    instruction: str
    task: str
    level: str
    truth: np.ndarray
    named: np.ndarray
    other: np.ndarray
    blocks: np.ndarray
    swap: list[tuple[str, np.ndarray]] | None = None
    seed: int = 0
    step: int = 0
    twin: np.ndarray | None = None

    @property
    def family(self) -> str:
        return T.family(self.task)


def check_set(name: str) -> EpisodeSet | ChainSet:
    """The set's spec; ValueError naming the valid sets otherwise."""
    if name not in SETS:
        raise ValueError(f"unknown evaluation set {name!r}; valid: {', '.join(SETS)}")
    return SETS[name]


def _recolour(task: str, instruction: str, colour: str) -> tuple[str, str] | None:
    """(task, instruction) with the named block's colour word replaced by ``colour``; None when the instruction does
    not name the colour exactly once."""
    old = T.target_block(task).split("_")[1]  # type: ignore[union-attr]
    if len(re.findall(rf"\b{old}\b", instruction)) != 1:
        return None
    return f"_{task}_".replace(f"_{old}_", f"_{colour}_")[1:-1], re.sub(rf"\b{old}\b", colour, instruction)


def make_frame(env: CalvinSceneEnv, image: np.ndarray, seg: np.ndarray, task: str, instruction: str, level: str,
               seed: int = 0, step: int = 0) -> EvalFrame:
    """The :class:`EvalFrame` of a rendered ``image`` and its raw (H, W) int32 PyBullet segmentation ``seg``, for
    ``task`` as it stands in ``env`` (its start state and distractor bodies)."""
    scene = env.scene
    body, link = decode_segmentation(seg)
    blocks = np.stack([body == scene.blocks[b] for b in BLOCKS])
    fixtures = (body == scene.table) & np.isin(link, [scene.table_link[n] for n in FIXTURE_LINKS])
    objects = blocks.any(0) | fixtures | np.isin(body, env.distractor_bodies)
    truth = mask_from_segmentation(seg, relevant_parts(scene, task, env.start_state))
    target = T.target_block(task)
    named = blocks[BLOCKS.index(target)] if target else truth
    frame = EvalFrame(image, instruction, task, level, truth, named, objects & ~truth, blocks, None, seed, step,
                      _twin_pixels(scene, body, target))
    visible = blocks.reshape(3, -1).sum(1) >= MIN_BLOCK_PIXELS
    if target is not None and visible.all():
        swaps = [_recolour(task, instruction, c) for c in T.COLORS]
        if all(s is not None for s in swaps):
            frame.swap = [(text, mask_from_segmentation(seg, relevant_parts(scene, t, env.start_state)))
                          for t, text in swaps]  # type: ignore[misc]
    return frame


def _twin_pixels(scene: CalvinScene, body: np.ndarray, target: str | None) -> np.ndarray | None:
    """(H, W) bool pixels of the identical copy of block ``target`` the workspace distractors put next to it
    (:data:`~ivm_ros_sim.calvin.workspace_distractors.LOOKALIKE_KINDS` ``same``); None when there is none."""
    ws = workspace_distractors.state(scene)
    if target is None or ws is None or ws.target != target or "same" not in ws.kinds:
        return None
    return body == ws.lookalikes[ws.kinds.index("same")]


def episode_frames(spec: EpisodeSet, frames: int, seed_offset: int = 0, size: int = 200) -> Iterator[EvalFrame]:
    """``frames`` frames of ``spec``, drawn exactly as :func:`ivm_ros_sim.data.engine.generate_ivm` draws an
    exact-label evaluation set with seed ``spec.seed + seed_offset``."""
    seed = spec.seed + seed_offset
    rng = np.random.default_rng(seed)
    labels = LabelModel(seed, 0.0, 0.0)  # exact labels; called only so the draws stay in step with generate_ivm
    env = CalvinSceneEnv(static_size=size, gripper_size=size, render=False, segmentation=True, scene="D")
    count = 0
    try:
        while count < frames:
            task = EXPERT_TASKS[int(rng.integers(len(EXPERT_TASKS)))]
            level = spec.levels[int(rng.integers(len(spec.levels)))]
            ep_seed = int(rng.integers(2**31))
            env.reset(seed=ep_seed, task=task, distraction=level, options={"instruction_split": spec.split})
            parts = relevant_parts(env.scene, task, env.start_state)
            for step, _cam, img, seg in _episode_frames(env, task, rng, FRAMES_PER_EPISODE, ("static",)):
                labels.label(mask_from_segmentation(seg, parts), task, env, seg, parts, rng)
                instruction = T.instruction(task, rng, spec.split)
                yield make_frame(env, img, seg, task, instruction, level, ep_seed, step)
                count += 1
                if count >= frames:
                    break
    finally:
        env.close()


def chain_frames(spec: ChainSet, frames: int, start: int = 0, size: int = 200,
                 max_steps: int = 360) -> Iterator[EvalFrame]:
    """``frames`` subtask-start frames of the official chains from chain ``start`` on (see the module docstring)."""
    env = CalvinSceneEnv(static_size=size, gripper_size=size, render=False, segmentation=True, scene="D")
    count, index = 0, start % N_CHAINS
    try:
        while count < frames:
            chain = load_chains(1, index)[0]
            obs = reset_to_chain(env, chain, spec.level, seed=0)
            for task in chain.subtasks:
                env.begin_subtask(task)
                img, seg = env.scene.render("static", segmentation=True)
                yield make_frame(env, img, seg, task, env.instruction, spec.level, chain.index, 0)
                count += 1
                if count >= frames:
                    break
                _, _, obs, _, _ = run_plan(env, task, obs, max_steps, record=False)
                if not env.succeeded:
                    break
            index = (index + 1) % N_CHAINS
    finally:
        env.close()


def set_frames(name: str, frames: int, seed: int = 0, size: int = 200) -> Iterator[EvalFrame]:
    """The frames of set ``name`` (:data:`SETS`); ``seed`` as in the module docstring."""
    spec = check_set(name)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if isinstance(spec, ChainSet):
        return chain_frames(spec, frames, seed, size)
    return episode_frames(spec, frames, seed, size)
