"""``ivm-ros sim-data simpler-ivm``: IVM samples (frame, instruction, exact mask) from SimplerEnv's WidowX scenes,
for the lite masking model (``ivm-ros sim-train-lite --mix simpler``).

Written in the ``ivm-ros sim-data ivm`` format (``ivm_ros_sim.ivm/1``, see :mod:`ivm_ros_sim.data.engine`):
``index.json``, ``shard_XXXXX.npz`` with ``image`` (N, S, S, 3) uint8 RGB (the 640x480 third-person camera
squashed to S x S, area-resampled), ``mask`` (N, S, S) uint8 {0, 1}, ``quality`` (N,) uint8 (1 exact),
``degradation``, ``instruction``, ``task`` (SimplerEnv task name), ``camera`` ("static": the third-person camera),
``distraction`` (the scene variant: visual_matching, distractors_2, distractors_4), ``seed`` (the env seed),
``step`` (expert step of the frame), plus ``kind`` (N,) str (what the instruction names, :data:`KINDS`), ``stage``
(N,) str (:data:`STAGES`), ``placement`` (N,) int64 (SimplerEnv's object placement, episode_id) and ``frame``
(N,) int64 (the frame's number in the run: a frame's samples share it); ``gallery.png``.

Episodes: the run's episodes come in blocks of ``episodes_per_block`` that share a task and a variant (one env
per block; making one takes ~2.5 s): block b draws them from ``default_rng([seed, b])``, then each episode's
placement (from ``placements``) and env seed (which also seeds our distractors' models and spots). The scripted
expert (default :class:`~ivm_ros_sim.simpler.expert.SimplerExpert`) acts from reset until it is done (phase
``done``), the env's time limit or ``max_steps``; of its frames one is kept per stage (:data:`STAGES`: the reset
frame, then a uniformly drawn frame before the first gripper close, while closed, after it reopened; reservoir
sampling, so no frame is held longer than needed). Everything an episode draws comes from
``default_rng([seed, b, j])`` (episode j of block b), labels from a stream of their own: the same seed gives the
same data, and a run with more ``samples`` extends a shorter one's.

Instructions per frame (:data:`PHRASES`): the task (source and target: SimplerEnv's own sentence or one of our
phrasings), the source alone, the target alone and each distractor alone, the last three only where at least
:data:`MIN_PIXELS` of the object are visible. The mask of each is the pixels of exactly the actors it names in
SimplerEnv's actor segmentation (:func:`~ivm_ros_sim.simpler.masks.mask_from_segmentation`): occluded parts are
not in it, the robot, the table and the real Bridge photo never are. Masks are area-resampled to S x S and
thresholded at 0.5. In the eggplant scene the basket is the sink's ``dummy_sink_target_plane`` actor (its floor
region, :mod:`~ivm_ros_sim.simpler.masks`). Labels are exact (quality 1) unless ``machine_fraction`` > 0: then that
share comes from a machine labeller (quality 0) wrong with probability ``machine_error`` per sample (one of
:data:`~ivm_ros_sim.data.engine.DEGRADATIONS`; ``wrong_object`` takes another named object of the frame).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

FORMAT = "ivm_ros_sim.ivm/1"
EXPERT = "ivm_ros_sim.simpler.expert:SimplerExpert"
VARIANTS = ("visual_matching", "distractors_2", "distractors_4")
STAGES = ("start", "before", "during", "after")  # reset frame; before the grasp, gripper closed, reopened
KINDS = ("task", "source", "target", "distractor")
MIN_PIXELS = 10  # visible pixels at 200x200 (scaled with the stored size) for a one-object instruction
OWN_INSTRUCTION = 0.5  # share of task samples that use SimplerEnv's own sentence
LABEL_STREAM = 0x1ABE1  # extra seed word of the label generator
EXTRA_FIELDS = ("kind", "stage", "placement", "frame")

#: Every phrasing this engine stores, in one table. "nouns": actor / model name -> noun phrases (names not listed
#: fall back to the name with "_" as spaces; the double's "green_cube" -> "green cube"); a name in "fixed" is not
#: something to pick up (its one-object sentences come from "place", others' from "grasp"); "task": task -> its
#: source+target sentences ("*" for put-on tasks). {src}, {tgt}, {obj}: noun phrases.
PHRASES: dict[str, Any] = {
    "nouns": {
        "bridge_carrot_generated_modified": ("carrot",),
        "bridge_plate_objaverse_larger": ("plate", "dish"),
        "bridge_spoon_generated_modified": ("spoon", "metal spoon"),
        "table_cloth_generated_shorter": ("towel", "cloth", "table cloth"),
        "baked_green_cube_3cm": ("green block", "green cube"),
        "baked_yellow_cube_3cm": ("yellow block", "yellow cube"),
        "green_cube_3cm": ("green block", "green cube"),
        "yellow_cube_3cm": ("yellow block", "yellow cube"),
        "eggplant": ("eggplant", "purple eggplant"),
        "dummy_sink_target_plane": ("yellow basket", "basket"),
        "baked_orange": ("orange", "orange fruit"),
        "baked_apple": ("apple", "red apple"),
        "baked_sponge": ("sponge",),
        "ivm_cube_red": ("red block", "red cube"),
        "ivm_cube_blue": ("blue block", "blue cube"),
        "ivm_cube_orange": ("orange block", "orange cube"),
        "ivm_cube_purple": ("purple block", "purple cube"),
    },
    "fixed": ("bridge_plate_objaverse_larger", "table_cloth_generated_shorter", "dummy_sink_target_plane",
              "plate", "towel", "basket"),
    "grasp": ("pick up the {obj}", "grasp the {obj}", "grab the {obj}", "lift the {obj}", "the {obj}", "{obj}",
              "move the {obj}"),
    "place": ("the {obj}", "{obj}", "find the {obj}", "look at the {obj}", "where is the {obj}"),
    "task": {
        "*": ("put the {src} on the {tgt}", "place the {src} on the {tgt}", "move the {src} onto the {tgt}",
              "pick up the {src} and put it on the {tgt}", "put {src} on {tgt}"),
        "widowx_stack_cube": ("stack the {src} on the {tgt}", "put the {src} on top of the {tgt}",
                              "place the {src} on the {tgt}", "stack the {src} on top of the {tgt}"),
        "widowx_put_eggplant_in_basket": ("put the {src} into the {tgt}", "put the {src} in the {tgt}",
                                          "place the {src} in the {tgt}", "drop the {src} into the {tgt}"),
    },
}


def nouns(name: str) -> tuple[str, ...]:
    """Noun phrases of an actor or model ``name`` (:data:`PHRASES`)."""
    return PHRASES["nouns"].get(name, (name.replace("_", " "),))


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def task_sentence(task: str, source: str, target: str, rng: np.random.Generator) -> str:
    """One of our source+target sentences for ``task`` with actor names ``source`` and ``target``."""
    templates = PHRASES["task"].get(task, PHRASES["task"]["*"])
    return _pick(templates, rng).format(src=_pick(nouns(source), rng), tgt=_pick(nouns(target), rng))


def object_sentence(name: str, rng: np.random.Generator) -> str:
    """A sentence naming the one object ``name`` (a pick-up sentence unless it is a fixed thing: plate, towel)."""
    templates = PHRASES["place"] if name in PHRASES["fixed"] else PHRASES["grasp"]
    return _pick(templates, rng).format(obj=_pick(nouns(name), rng))


# --------------------------------------------------------------------------------------------- frames
@dataclasses.dataclass(frozen=True)
class Episode:
    """One episode of the run: block ``block``, ``index`` within it, SimplerEnv ``task``, ``variant`` (name, make
    kwargs), ``placement`` (episode_id) and env ``seed``."""

    block: int
    index: int
    task: str
    variant: tuple[str, dict[str, Any]]
    placement: int
    seed: int


def allowed(task: str, variant_kwargs: dict[str, Any]) -> bool:
    """Whether a task has the variant (our distractors exist for carrot, spoon and stack-cube only)."""
    from ivm_ros_sim.simpler.distractors import SLOTS

    return not int(variant_kwargs.get("distractors", 0) or 0) or task in SLOTS


def plan_episodes(seed: int, tasks: tuple[str, ...], variants: dict[str, dict[str, Any]],
                  placements: tuple[int, ...], per_block: int) -> Iterator[Episode]:
    """The run's endless episode sequence (module docstring); tasks without an allowed variant are skipped."""
    pairs = {t: [v for v in variants if allowed(t, variants[v])] for t in tasks}
    usable = tuple(t for t in tasks if pairs[t])
    if not usable:
        raise ValueError(f"no task of {tasks} has any of the variants {tuple(variants)}")
    block = 0
    while True:
        rng = np.random.default_rng([seed, block])
        task = usable[int(rng.integers(len(usable)))]
        name = pairs[task][int(rng.integers(len(pairs[task])))]
        for j in range(per_block):
            placement = placements[int(rng.integers(len(placements)))]
            yield Episode(block, j, task, (name, dict(variants[name])), placement, int(rng.integers(2**31)))
        block += 1


def expert_frames(env: Any, expert: Any, ep: Episode, rng: np.random.Generator,
                  max_steps: int = 0) -> list[tuple[int, str, Any]]:
    """Runs ``expert`` in ``env`` (a reset-able :class:`~ivm_ros_sim.simpler.env.SimplerTaskEnv`) through episode
    ``ep``; returns the kept (step, stage, frame) per stage (:data:`STAGES`), in step order."""
    frame = env.reset(ep.seed, ep.placement)
    expert.reset()
    kept: dict[str, tuple[int, str, Any]] = {}
    seen = dict.fromkeys(STAGES, 0)
    step, closed, closed_once = 0, False, False
    while True:
        stage = "start" if step == 0 else "during" if closed else "after" if closed_once else "before"
        seen[stage] += 1
        if rng.random() * seen[stage] < 1.0:  # reservoir of one: uniform over the stage's frames
            kept[stage] = (step, stage, frame)
        if frame.truncated or (max_steps and step >= max_steps):
            break
        action = np.asarray(expert.act(frame), np.float64).reshape(7)
        if getattr(expert, "phase", None) == "done":
            break
        closed = bool(action[6] <= 0.0)  # policy gripper: +1 open, -1 closed
        closed_once |= closed
        frame = env.step(action)
        step += 1
    return sorted(kept.values(), key=lambda k: k[0])


def squash(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 or (H, W) bool -> (size, size): images area-resampled, masks area-resampled and >= 0.5."""
    if image.dtype == bool:
        small = cv2.resize(image.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
        return small >= 0.5
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def named_objects(env: Any) -> list[tuple[str, str, tuple[int, ...]]]:
    """(kind, actor name, actor ids) of what a frame's instructions may name: source, target, then every
    distractor actor (``unwrapped.distractor_objs``, our Bridge distractors)."""
    actors = env.actors()
    out = [(role, actors[role][1], (actors[role][0],)) for role in ("source", "target") if role in actors]
    for obj in getattr(env.env.unwrapped, "distractor_objs", None) or []:
        out.append(("distractor", str(obj.name), (int(obj.id),)))
    return out


def frame_instructions(task: str, own: str, objects: list[tuple[str, str, tuple[int, ...]]], seg: np.ndarray,
                       size: int, rng: np.random.Generator) -> list[tuple[str, str, np.ndarray]]:
    """(kind, instruction, (size, size) bool mask) of one frame: the task, then each visible named object (see
    the module docstring); ``seg`` (H, W) actor ids of the full frame, ``own`` SimplerEnv's instruction."""
    from ivm_ros_sim.simpler.masks import mask_from_segmentation

    masks = [squash(mask_from_segmentation(seg, ids), size) for _, _, ids in objects]
    roles = {kind: i for i, (kind, _, _) in enumerate(objects) if kind in ("source", "target")}
    out = []
    if "source" in roles and "target" in roles:
        src, tgt = roles["source"], roles["target"]
        text = own if rng.random() < OWN_INSTRUCTION else task_sentence(task, objects[src][1], objects[tgt][1], rng)
        out.append(("task", text, masks[src] | masks[tgt]))
    least = max(1, round(MIN_PIXELS * size * size / 200**2))
    for (kind, name, _), mask in zip(objects, masks):
        if mask.sum() >= least:
            out.append((kind, object_sentence(name, rng), mask))
    return out


@dataclasses.dataclass(frozen=True)
class Labeller:
    """Exact labels, or a ``machine_fraction`` of machine labels wrong with probability ``machine_error``."""

    machine_fraction: float = 0.0
    machine_error: float = 0.5

    def label(self, exact: np.ndarray, others: list[np.ndarray], rng: np.random.Generator
              ) -> tuple[int, str, np.ndarray]:
        """(quality 1 exact / 0 machine, degradation or "none", (S, S) bool label) for an exact mask; ``others``:
        the frame's other objects' masks (for ``wrong_object``)."""
        if rng.random() >= self.machine_fraction:
            return 1, "none", exact
        if rng.random() >= self.machine_error:
            return 0, "none", exact
        from ivm_ros_sim.data.engine import DEGRADATIONS, degrade

        kind = DEGRADATIONS[int(rng.integers(len(DEGRADATIONS)))]
        visible = [m for m in others if m.any() and (m != exact).any()]
        other = visible[int(rng.integers(len(visible)))] if visible else None
        return 0, kind, degrade(exact, kind, rng, other)


# --------------------------------------------------------------------------------------------- the data set
def episode_frames(env: Any, expert: Any, ep: Episode, size: int, labeller: Labeller, seed: int,
                   max_steps: int = 0) -> Iterator[list[dict[str, Any]]]:
    """The samples of episode ``ep``, one list per kept frame (dicts of the shard columns but ``frame``)."""
    rng = np.random.default_rng([seed, ep.block, ep.index])
    label_rng = np.random.default_rng([seed, ep.block, ep.index, LABEL_STREAM])
    for step, stage, frame in expert_frames(env, expert, ep, rng, max_steps):
        image = squash(frame.images["main"], size)
        items = frame_instructions(ep.task, env.instruction, named_objects(env), frame.segmentation["main"], size,
                                   rng)
        singles = [m for kind, _, m in items if kind != "task"]
        common = {"image": image, "task": ep.task, "camera": "static", "distraction": ep.variant[0],
                  "seed": ep.seed, "step": step, "stage": stage, "placement": ep.placement}
        samples = []
        for kind, text, exact in items:
            quality, degradation, label = labeller.label(exact, singles, label_rng)
            samples.append(common | {"mask": label.astype(np.uint8), "quality": np.uint8(quality),
                                     "degradation": degradation, "instruction": text, "kind": kind})
        yield samples


def _frames(episodes: Iterator[Episode], make: Any, expert: Any, size: int, labeller: Labeller, seed: int,
            max_steps: int, stats: dict[str, int]) -> Iterator[list[dict[str, Any]]]:
    """Every episode's frames (:func:`episode_frames`), one env per run of episodes with the same task and
    variant; closing the generator closes the env. Counts ``episodes`` into ``stats``."""
    from ivm_ros_sim.simpler.env import SimplerTaskEnv

    env: Any = None
    try:
        for ep in episodes:
            if env is None or env.task != ep.task or env.variant != ep.variant[1]:
                if env is not None:
                    env.close()
                    env = None
                env = SimplerTaskEnv(ep.task, ep.variant[1], make)
            stats["episodes"] += 1
            yield from episode_frames(env, expert(env), ep, size, labeller, seed, max_steps)
    finally:
        if env is not None:
            env.close()


def generate_simpler_ivm(out: Path, samples: int, seed: int = 0, size: int = 200,
                         tasks: tuple[str, ...] | None = None, variants: tuple[str, ...] = VARIANTS,
                         placements: tuple[int, ...] = tuple(range(24)), machine_fraction: float = 0.0,
                         machine_error: float = 0.5, machine_errors: str = "independent",
                         episodes_per_block: int = 4, max_steps: int = 0, shard_size: int = 500,
                         backend: str = "simpler", expert: Any = EXPERT, progress: bool = True,
                         episodes: int = 0) -> dict[str, Any]:
    """Writes ``samples`` samples (fewer when the first ``episodes`` episodes, if > 0, end first) to ``out``
    (module docstring) and returns the index. ``tasks``: SimplerEnv WidowX tasks (default all four); ``variants``:
    scene variant names (``simpler-eval``'s); ``backend``: ``simpler`` or ``double`` (SimplerEnvDouble, tests);
    ``expert``: ``module:Class`` or a factory taking the task env."""
    from ivm_ros_sim.data.engine import ShardWriter
    from ivm_ros_sim.data.simpler_demos import load_expert
    from ivm_ros_sim.eval.simpler_jobs import WIDOWX_TASKS, parse_variant
    from ivm_ros_sim.eval.simpler_workers import env_maker

    tasks = tuple(tasks or WIDOWX_TASKS)
    _check(samples, machine_fraction, machine_error, machine_errors, placements, episodes_per_block)
    kwargs = dict(parse_variant(v) for v in variants)
    factory = load_expert(expert) if isinstance(expert, str) else expert
    name = expert if isinstance(expert, str) else f"{expert.__module__}:{expert.__qualname__}"
    out.mkdir(parents=True, exist_ok=True)
    writer = ShardWriter(out, shard_size, ShardWriter.FIELDS + EXTRA_FIELDS)
    stats, counts, gallery = {"episodes": 0}, {k: {} for k in ("kind", "task", "distraction", "stage")}, []
    plan = plan_episodes(seed, tasks, kwargs, tuple(placements), episodes_per_block)
    labeller = Labeller(machine_fraction, machine_error)
    stream = _frames(itertools.islice(plan, episodes or None), env_maker(backend), factory, size, labeller, seed,
                     max_steps, stats)
    count, frames, t0 = 0, 0, time.perf_counter()
    bar = tqdm(total=samples, desc="simpler ivm samples", unit="img", disable=not progress)
    try:
        for frame in stream:
            _gallery_tile(gallery, frame, frames)
            for sample in frame[: samples - count]:
                writer.add(**sample, frame=frames)
                for key in counts:
                    counts[key][sample[key]] = counts[key].get(sample[key], 0) + 1
                count += 1
                bar.update(1)
            frames += 1
            if count >= samples:
                break
        writer.flush()
    finally:
        stream.close()
        bar.close()
    args = {"seed": seed, "size": size, "tasks": list(tasks), "variants": list(variants),
            "placements": list(placements), "machine_fraction": machine_fraction, "machine_error": machine_error,
            "machine_errors": machine_errors, "episodes_per_block": episodes_per_block, "max_steps": max_steps,
            "backend": backend, "expert": name}
    index = {"format": FORMAT, "kind": "simpler", "count": count, "image_size": size, "episodes": stats["episodes"],
             "frames": frames, "seconds": round(time.perf_counter() - t0, 2), "shards": writer.shards,
             "quality": {"1": "exact (simulator segmentation)", "0": "machine label (exact or degraded)"},
             "mask_rule": "see ivm_ros_sim.data.simpler_ivm module docstring", "args": args, "counts": counts}
    (out / "index.json").write_text(json.dumps(index, indent=1))
    if gallery:
        from ivm_ros_sim.data.engine import write_gallery

        write_gallery(out / "gallery.png", gallery)
    return index


def _gallery_tile(tiles: list[np.ndarray], frame: list[dict[str, Any]], number: int, most: int = 16) -> None:
    """Adds one tile of a frame to the gallery (up to ``most``): the sample of kind KINDS[number % 4] where the
    frame has one, else its first."""
    from ivm_ros_sim.data.engine import overlay

    if len(tiles) >= most or not frame:
        return
    s = next((s for s in frame if s["kind"] == KINDS[number % len(KINDS)]), frame[0])
    tiles.append(overlay(s["image"], s["mask"], s["degradation"] == "none", s["instruction"]))


def _check(samples: int, machine_fraction: float, machine_error: float, machine_errors: str,
           placements: tuple[int, ...], episodes_per_block: int) -> None:
    if samples < 1 or episodes_per_block < 1 or not placements:
        raise ValueError("samples and episodes_per_block must be >= 1 and placements non-empty")
    for label, value in (("machine_fraction", machine_fraction), ("machine_error", machine_error)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{label} must be in [0, 1], got {value}")
    if machine_errors != "independent":
        raise ValueError(f"simpler-ivm's machine labeller draws its errors per sample (independent), not "
                         f"{machine_errors!r}")


# --------------------------------------------------------------------------------------------- command
def parse_ids(text: str) -> tuple[int, ...]:
    """``"0-19"`` or ``"0,3,5-7"`` -> ints in order."""
    out: list[int] = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        lo, sep, hi = item.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    if not out:
        raise ValueError(f"no placements in {text!r}")
    return tuple(out)


def add_parser(sub: Any) -> None:
    """The ``simpler-ivm`` subcommand of ``ivm-ros sim-data``."""
    from ivm_ros_sim.eval.simpler_jobs import BACKENDS, WIDOWX_TASKS

    c = sub.add_parser("simpler-ivm", help="IVM dataset from SimplerEnv WidowX frames (exact masks, many "
                                           "instructions per frame)")
    c.add_argument("--out", type=Path, default=Path("out/sim_data/simpler_ivm"))
    c.add_argument("--samples", type=int, default=200)
    c.add_argument("--episodes", type=int, default=0, help="stop after this many episodes too (0: no limit)")
    c.add_argument("--size", type=int, default=200, help="stored square frames, px")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--tasks", default=",".join(WIDOWX_TASKS), help="comma-separated SimplerEnv WidowX tasks")
    c.add_argument("--variant", action="append", dest="variants", metavar="NAME[=JSON]",
                   help=f"scene variant as simpler-eval's --variant, repeated (default: {', '.join(VARIANTS)})")
    c.add_argument("--placements", default="0-23", help="object placements (episode ids), e.g. 0-19 or 0,3,5-7")
    c.add_argument("--machine-fraction", type=float, default=0.0, help="share of machine labels (quality 0)")
    c.add_argument("--machine-error", type=float, default=0.5, help="share of machine labels that are wrong")
    c.add_argument("--episodes-per-block", type=int, default=4, help="episodes that share a task and variant")
    c.add_argument("--max-steps", type=int, default=0, help="expert steps per episode (0: until done or time limit)")
    c.add_argument("--shard-size", type=int, default=500)
    c.add_argument("--expert", default=EXPERT, help="module:Class taking the task env")
    c.add_argument("--backend", choices=BACKENDS, default="simpler", help="double: SimplerEnvDouble (tests)")


def run(args: Any) -> None:
    t0 = time.perf_counter()
    index = generate_simpler_ivm(args.out, args.samples, args.seed, args.size,
                                 tuple(t for t in args.tasks.split(",") if t), tuple(args.variants or VARIANTS),
                                 parse_ids(args.placements),
                                 args.machine_fraction, args.machine_error, "independent", args.episodes_per_block,
                                 args.max_steps, args.shard_size, args.backend, args.expert, episodes=args.episodes)
    dt = time.perf_counter() - t0
    print(f"wrote {index['count']} samples ({index['frames']} frames, {index['episodes']} episodes) in "
          f"{len(index['shards'])} shard(s) to {args.out} in {dt:.0f} s ({dt / max(1, index['episodes']):.1f} s per "
          f"episode, {index['count'] / dt:.2f} samples/s); gallery: {args.out / 'gallery.png'}")
    print(f"counts: {json.dumps(index['counts'])}")
