"""Data engine: ``ivm-ros sim-data {ivm,demos,expert}`` (and ``chains``, ``simpler-demos``, ``simpler-ivm``: their
own modules).

On-disk format (no pickle anywhere; load with ``np.load(path, allow_pickle=False)``):

``ivm`` -> ``OUT/ivm/``:
    ``index.json``  {"format": "ivm_ros_sim.ivm/1", "count", "image_size", "shards": [{"file", "count"}], "args",
                    "mask_rule", "quality": {"1": "human", "0": "machine"}}
    ``shard_00000.npz`` (compressed) with N samples:
        ``image`` (N, H, W, 3) uint8 RGB  ``mask`` (N, H, W) uint8 {0, 1}  ``quality`` (N,) uint8 (the label's
        source: 1 human, i.e. exact GT; 0 machine labeller)  ``degradation`` (N,) str ("none" for an exact label,
        else the machine labeller's error: "box", "dilate", "erode", "partial", "wrong_object")
        ``instruction`` (N,) str  ``task`` (N,) str  ``camera`` (N,) str  ``distraction`` (N,)
        str  ``seed`` (N,) int64  ``step`` (N,) int64 (expert step at which the frame was taken)
    ``gallery.png``: frames with their labels overlaid (cyan exact, red degraded).

    The label model follows the IVM data mix: a ``machine_fraction`` of the labels comes from a machine labeller
    (quality 0) that is wrong (one of the degradations) with probability ``machine_error`` and exact otherwise;
    the rest are human labels (quality 1, exact). ``machine_errors="independent"`` draws the labeller's error
    afresh for every frame; ``"systematic"`` decides once per task (with probability ``machine_error``) whether
    the labeller fails on it, and if so how (one degradation kind, and the same wrong object where it can), as an
    automatic labeller that fails on the same things every time. A labeller that is always wrong
    (``machine_error=1``) leaves nothing for DWSL to select.

``demos`` -> ``OUT/demos/``:
    ``index.json``  {"format": "ivm_ros_sim.demos/1", "episodes": [{"file", "task", "instruction", "seed",
                    "distraction", "success", "steps"}], "args"}
    ``episode_00000.npz`` (compressed): ``rgb_static`` (T, S, S, 3) uint8, ``rgb_gripper`` (T, G, G, 3) uint8,
        ``robot_obs`` (T, 15) float64, ``scene_obs`` (T, 24) float64, ``actions`` (T, 7) float32 (relative,
        see :mod:`ivm_ros_sim.calvin.env`), ``mask_static`` (T, S, S) uint8 GT masks, and 0-d ``task``,
        ``instruction``, ``distraction`` (str), ``seed`` (int), ``success`` (bool).

``expert`` measures the scripted expert's success per task family (no files unless ``--json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from ivm_ros_sim.calvin import distractors as dist
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.expert import Expert, rollout
from ivm_ros_sim.calvin.masks import mask_from_segmentation, relevant_parts
from ivm_ros_sim.calvin.scene import BLOCKS, SCENES, decode_segmentation
from ivm_ros_sim.data import chain_demos, gripper_masks, gripper_views, simpler_demos, simpler_ivm
from ivm_ros_sim.data import hard_cases as hc
from tqdm import tqdm

#: Tasks the data engine samples: all 34 (the scripted expert solves every family).
EXPERT_TASKS = tuple(T.all_tasks())
DEGRADATIONS = ("box", "dilate", "erode", "partial", "wrong_object")
#: How the machine labeller's errors are drawn: per frame, or once per task (see the module docstring).
MACHINE_ERRORS = ("independent", "systematic")


# ---------------------------------------------------------------------------------------------- degradations
def degrade(mask: np.ndarray, kind: str, rng: np.random.Generator, other: np.ndarray | None = None) -> np.ndarray:
    """A machine-style low-quality version of a (H, W) bool mask. ``other`` is a wrong object's mask, used by
    ``wrong_object`` (falls back to ``box`` when missing or empty)."""
    m = mask.astype(np.uint8)
    h, w = m.shape
    if kind == "wrong_object" and other is not None and other.any():
        return other.astype(bool)
    if kind in ("box", "wrong_object") or not m.any():
        ys, xs = np.nonzero(m) if m.any() else (np.array([h // 3, 2 * h // 3]), np.array([w // 3, 2 * w // 3]))
        pad = int(rng.integers(2, max(3, h // 12)))
        out = np.zeros_like(m, dtype=bool)
        out[max(0, ys.min() - pad): ys.max() + pad + 1, max(0, xs.min() - pad): xs.max() + pad + 1] = True
        return out
    if kind == "dilate":
        k = int(rng.integers(2, max(3, h // 20))) * 2 + 1
        return cv2.dilate(m, np.ones((k, k), np.uint8)).astype(bool)
    if kind == "erode":
        k = int(rng.integers(1, 3)) * 2 + 1
        out = cv2.erode(m, np.ones((k, k), np.uint8)).astype(bool)
        return out if out.any() else m.astype(bool)
    if kind == "partial":
        ys, xs = np.nonzero(m)
        angle = rng.uniform(0, np.pi)
        proj = (xs - xs.mean()) * np.cos(angle) + (ys - ys.mean()) * np.sin(angle)
        keep = proj <= np.quantile(proj, rng.uniform(0.3, 0.7))
        out = np.zeros_like(m, dtype=bool)
        out[ys[keep], xs[keep]] = True
        return out
    raise ValueError(f"unknown degradation {kind!r}; valid: {DEGRADATIONS}")


def _wrong_object_mask(env: CalvinSceneEnv, seg: np.ndarray, parts: list, rng: np.random.Generator) -> np.ndarray:
    """Mask of something the instruction is not about: another block, a distractor or a fixed part."""
    body, link = decode_segmentation(seg)
    wanted = {b for b, _ in parts}
    candidates = [(env.scene.blocks[b], None) for b in BLOCKS if env.scene.blocks[b] not in wanted]
    candidates += [(b, None) for b in env.distractor_bodies]
    fixed = [(env.scene.table, env.scene.table_link[n]) for n in ("drawer_link", "slide_link", "switch_link",
                                                                  "button_link")]
    candidates += [c for c in fixed if c not in parts]
    rng.shuffle(candidates)
    for cand in candidates:
        m = mask_from_segmentation(seg, [cand])
        if m.sum() >= 20:
            return m
    return np.zeros(seg.shape, bool)


def systematic_failures(seed: int, machine_error: float) -> dict[str, str | None]:
    """task -> the degradation a systematic machine labeller always makes on it, or None where it is right. Each
    task fails with probability ``machine_error``, drawn once from ``seed``."""
    rng = np.random.default_rng([seed, 7919])
    out: dict[str, str | None] = {}
    for task in sorted(EXPERT_TASKS):
        fails = rng.random() < machine_error
        kind = DEGRADATIONS[int(rng.integers(len(DEGRADATIONS)))]
        out[task] = kind if fails else None
    return out


# ---------------------------------------------------------------------------------------------- ivm dataset
@dataclasses.dataclass(frozen=True)
class LabelModel:
    """IVM's data mix: a ``machine_fraction`` of the labels come from a machine labeller that is wrong with
    probability ``machine_error`` (drawn per frame), or, with ``failures`` (:func:`systematic_failures`), makes
    its task's one mistake on every frame of that task; the rest are exact human labels."""

    seed: int
    machine_fraction: float
    machine_error: float
    failures: dict[str, str | None] | None = None

    def label(self, exact: np.ndarray, task: str, env: CalvinSceneEnv, seg: np.ndarray, parts: list,
              rng: np.random.Generator) -> tuple[int, str, np.ndarray]:
        """(quality 1 human / 0 machine, degradation or "none", label mask) for one frame's exact mask."""
        quality, kind, label = 1, "none", exact
        if rng.random() < self.machine_fraction:
            quality = 0
            # which wrong object: per frame, or the same each time (a per-task generator's shuffle)
            pick_rng = rng
            if self.failures is not None:
                kind = self.failures[task] or "none"
                pick_rng = np.random.default_rng([self.seed, zlib.crc32(task.encode())])
            elif rng.random() < self.machine_error:
                kind = DEGRADATIONS[int(rng.integers(len(DEGRADATIONS)))]
            if kind != "none":
                other = _wrong_object_mask(env, seg, parts, pick_rng) if kind == "wrong_object" else None
                label = degrade(exact, kind, rng, other)
        return quality, kind, label


class ShardWriter:
    """Buffers IVM samples and writes them to ``out`` as ``shard_XXXXX.npz`` files of ``shard_size`` samples."""

    FIELDS = ("image", "mask", "quality", "degradation", "instruction", "task", "camera", "distraction", "seed",
              "step")

    def __init__(self, out: Path, shard_size: int, fields: tuple[str, ...] = FIELDS) -> None:
        self.out, self.shard_size, self.fields = out, shard_size, fields
        self.buf: dict[str, list] = {k: [] for k in fields}
        self.shards: list[dict[str, Any]] = []

    def add(self, **sample: Any) -> None:
        for k in self.fields:
            self.buf[k].append(sample[k])
        if len(self.buf["image"]) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.buf["image"]:
            return
        name = f"shard_{len(self.shards):05d}.npz"
        arrays = {k: np.stack(v) if k in ("image", "mask") else np.array(v) for k, v in self.buf.items()}
        np.savez_compressed(self.out / name, **arrays)
        self.shards.append({"file": name, "count": len(self.buf["image"])})
        for v in self.buf.values():
            v.clear()


def _episode_frames(env: CalvinSceneEnv, task: str, rng: np.random.Generator, frames: int,
                    cams: tuple[str, ...]) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
    """Drives the expert through the reset env and yields (step, camera, image, segmentation) at up to ``frames``
    random steps in [0, 90) (fewer where they coincide or the plan ends first)."""
    plan = Expert(env).plan(task)
    stops = sorted(set(int(x) for x in rng.integers(0, 90, frames)))
    step = 0
    for stop in stops:
        for _ in range(stop - step):
            a = next(plan, None)
            if a is None:
                break
            env.apply_action(a)
            step += 1
        for cam in cams:
            img, seg = env.scene.render(cam, segmentation=True)
            yield step, cam, img, seg


def generate_ivm(out: Path, samples: int, seed: int = 0, size: int = 200, machine_fraction: float = 0.8,
                 machine_error: float = 0.5, machine_errors: str = "independent",
                 frames_per_episode: int = 4, levels: tuple[str, ...] = ("none", "small", "medium", "large"),
                 instruction_split: str = "train", shard_size: int = 500, cameras: tuple[str, ...] = ("static",),
                 progress: bool = True, scene: str = "D", level_weights: tuple[float, ...] | None = None,
                 scenes: tuple[str, ...] | None = None, scene_weights: tuple[float, ...] | None = None,
                 swap_fraction: float = 0.0) -> dict[str, Any]:
    """Writes ``samples`` IVM samples to ``out`` (see module docstring); returns the index dict. ``level_weights``,
    ``scenes``, ``scene_weights`` and ``swap_fraction`` are the hard-case options of
    :mod:`ivm_ros_sim.data.hard_cases`; at their defaults the data is the v2 data, bit for bit. With any of them the
    shards gain ``scene`` (N,) str, ``frame`` (N,) int64 (the rendered frame's number: a swap group shares it) and
    ``swap`` (N,) uint8 (1: the instruction names another block than the episode's task), and the index gains the
    options and ``counts`` (samples per distraction level and scene, swap samples, frames). ``cameras`` (static,
    gripper or both, each at ``size``) other than the static camera alone are recorded in the ``args``."""
    _check_ivm_args(levels, machine_fraction, machine_error, machine_errors, cameras)
    extended = level_weights is not None or scenes is not None or swap_fraction > 0
    draws = hc.EpisodeDraws(seed, levels, level_weights, scenes or (scene,), scene_weights)
    swapper = hc.Swapper(seed, swap_fraction, instruction_split)
    out.mkdir(parents=True, exist_ok=True)
    failures = systematic_failures(seed, machine_error) if machine_errors == "systematic" else None
    labels = LabelModel(seed, machine_fraction, machine_error, failures)
    writer = ShardWriter(out, shard_size, ShardWriter.FIELDS + (("scene", "frame", "swap") if extended else ()))
    gallery: list[np.ndarray] = []
    counts: dict[str, Any] = {"distraction": {}, "scene": {}, "swap": 0, "frames": 0}
    stats = {"episodes": 0, "frames": 0}
    stream = _ivm_samples(draws, swapper, labels, size, frames_per_episode, tuple(cameras), instruction_split, stats)
    bar = tqdm(total=samples, desc="ivm samples", unit="img", disable=not progress)
    count = 0
    try:
        for sample in stream:
            writer.add(**sample)
            _tally(counts, sample)
            if sample["camera"] == cameras[0] and len(gallery) < 16:
                gallery.append(overlay(sample["image"], sample["mask"], sample["degradation"] == "none",
                                       sample["instruction"]))
            count += 1
            bar.update(1)
            if count >= samples:
                break
        writer.flush()
    finally:
        stream.close()  # closes the environments
        bar.close()
    index = {"format": "ivm_ros_sim.ivm/1", "count": count, "image_size": size, "episodes": stats["episodes"],
             "shards": writer.shards,
             "quality": {"1": "human label (exact)", "0": "machine label (exact or degraded, see degradation)"},
             "mask_rule": "see ivm_ros_sim.calvin.masks module docstring",
             "args": {"seed": seed, "machine_fraction": machine_fraction, "machine_error": machine_error,
                      "machine_errors": machine_errors,
                      "levels": list(levels),
                      "instruction_split": instruction_split, "frames_per_episode": frames_per_episode, "scene": scene}}
    index["args"] |= {"cameras": list(cameras)} if tuple(cameras) != ("static",) else {}
    if extended:
        index["args"] |= {"level_weights": level_weights and list(level_weights), "scenes": list(draws.scenes),
                          "scene_weights": scene_weights and list(scene_weights), "swap_fraction": swap_fraction}
        index["counts"] = counts
    (out / "index.json").write_text(json.dumps(index, indent=1))
    if gallery:
        write_gallery(out / "gallery.png", gallery)
    return index


def _tally(counts: dict[str, Any], sample: dict[str, Any]) -> None:
    """Adds one sample to the index's ``counts`` (per distraction level and scene, swap samples, frames)."""
    for key in ("distraction", "scene"):
        counts[key][sample[key]] = counts[key].get(sample[key], 0) + 1
    counts["swap"] += int(sample["swap"])
    counts["frames"] = int(sample["frame"]) + 1


def _ivm_samples(draws: hc.EpisodeDraws, swapper: hc.Swapper, labels: LabelModel, size: int, frames_per_episode: int,
                 cams: tuple[str, ...], split: str, stats: dict[str, int]) -> Iterator[dict[str, Any]]:
    """Endless IVM samples (dicts of :attr:`ShardWriter.FIELDS` plus ``scene``, ``frame``, ``swap``), drawn from
    ``default_rng(draws.seed)`` in the v2 order: per episode a task, a level, an episode seed (the scene comes from
    ``draws``' own generator), then per frame the expert's stops, the label and the instruction; a swapped frame's
    extra samples follow it. Counts ``episodes`` and finished ``frames`` into ``stats``; closing the generator
    closes its environments (one per scene, ``size`` x ``size`` cameras)."""
    rng = np.random.default_rng(draws.seed)
    envs: dict[str, CalvinSceneEnv] = {}
    try:
        while True:
            task = EXPERT_TASKS[int(rng.integers(len(EXPERT_TASKS)))]
            level = draws.level(rng)
            ep_seed = int(rng.integers(2**31))
            sc = draws.scene()
            if sc not in envs:  # one shape per shard
                envs[sc] = CalvinSceneEnv(static_size=size, gripper_size=size, render=False, segmentation=True,
                                          scene=sc)
            env = envs[sc]
            env.reset(seed=ep_seed, task=task, distraction=level, options={"instruction_split": split})
            stats["episodes"] += 1
            parts = relevant_parts(env.scene, task, env.start_state)
            for step, cam, img, seg in _episode_frames(env, task, rng, frames_per_episode, cams):
                quality, kind, label = labels.label(mask_from_segmentation(seg, parts), task, env, seg, parts, rng)
                instruction = T.instruction(task, rng, split)
                common = {"image": img, "camera": cam, "distraction": level, "seed": ep_seed, "step": step,
                          "scene": sc, "frame": stats["frames"]}
                yield common | {"mask": label.astype(np.uint8), "quality": quality, "degradation": kind,
                                "instruction": instruction, "task": task, "swap": np.uint8(0)}
                for other, text, other_parts in swapper.variants(env, seg, task, instruction):
                    exact = mask_from_segmentation(seg, other_parts)
                    quality, kind, label = labels.label(exact, other, env, seg, other_parts, swapper.rng)
                    yield common | {"mask": label.astype(np.uint8), "quality": quality, "degradation": kind,
                                    "instruction": text, "task": other, "swap": np.uint8(1)}
                stats["frames"] += 1
    finally:
        for env in envs.values():
            env.close()


def _check_ivm_args(levels: tuple[str, ...], machine_fraction: float, machine_error: float,
                    machine_errors: str, cameras: tuple[str, ...] = ("static",)) -> None:
    if not cameras or set(cameras) - {"static", "gripper"}:
        raise ValueError(f"cameras must be static and/or gripper, got {cameras}")
    for lv in levels:
        dist.check_level(lv)
    for name, value in (("machine_fraction", machine_fraction), ("machine_error", machine_error)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if machine_errors not in MACHINE_ERRORS:
        raise ValueError(f"machine_errors must be one of {MACHINE_ERRORS}, got {machine_errors!r}")


def overlay(img: np.ndarray, mask: np.ndarray, exact: bool, text: str) -> np.ndarray:
    """RGB frame with the mask tinted (cyan exact, red degraded) and the instruction written below."""
    color = np.array([0, 230, 255] if exact else [255, 40, 0], np.float32)
    view = img.astype(np.float32)
    view[mask.astype(bool)] = 0.45 * view[mask.astype(bool)] + 0.55 * color
    view = cv2.resize(view.astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST)
    strip = np.full((28, 256, 3), 255, np.uint8)
    cv2.putText(strip, text[:42], (3, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([view, strip])


def write_gallery(path: Path, tiles: list[np.ndarray], cols: int = 4) -> None:
    """Writes tiles (each (h, w, 3) RGB, same size) as a PNG grid."""
    blank = np.full_like(tiles[0], 255)
    rows = [np.hstack((tiles[i:i + cols] + [blank] * cols)[:cols]) for i in range(0, len(tiles), cols)]
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


def load_ivm(root: Path) -> dict[str, np.ndarray]:
    """Concatenates every shard listed in ``root/index.json`` (for tests and small sets)."""
    index = json.loads((root / "index.json").read_text())
    parts = [np.load(root / s["file"], allow_pickle=False) for s in index["shards"]]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0].files}


# ---------------------------------------------------------------------------------------------- demonstrations
def generate_demos(out: Path, episodes: int, seed: int = 0, tasks: tuple[str, ...] = EXPERT_TASKS,
                   levels: tuple[str, ...] = ("none",), static_size: int = 200, gripper_size: int = 84,
                   instruction_split: str = "train", progress: bool = True, scene: str = "D") -> dict[str, Any]:
    """Records ``episodes`` expert episodes to ``out`` (see module docstring); returns the index dict."""
    for t in tasks:
        T.check_task(t)
    for lv in levels:
        dist.check_level(lv)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    env = CalvinSceneEnv(static_size=static_size, gripper_size=gripper_size, segmentation=True, scene=scene)
    entries = []
    steps_total, t0 = 0, time.perf_counter()
    bar = tqdm(range(episodes), desc="demos", unit="ep", disable=not progress)
    try:
        for i in bar:
            task = tasks[int(rng.integers(len(tasks)))]
            level = levels[int(rng.integers(len(levels)))]
            ep_seed = int(rng.integers(2**31))
            ep = rollout(env, task, ep_seed, level, record=True, instruction_split=instruction_split)
            name = f"episode_{i:05d}.npz"
            arrays = dict(ep.frames, actions=ep.actions, task=np.array(task), instruction=np.array(ep.instruction),
                          distraction=np.array(level), seed=np.array(ep_seed), success=np.array(ep.success))
            if "mask_static" in arrays:
                arrays["mask_static"] = arrays["mask_static"].astype(np.uint8)
            np.savez_compressed(out / name, **arrays)
            entries.append({"file": name, "task": task, "instruction": ep.instruction, "seed": ep_seed,
                            "distraction": level, "success": ep.success, "steps": ep.steps})
            steps_total += ep.steps
            bar.set_postfix(steps_per_s=f"{steps_total / (time.perf_counter() - t0):.1f}")
    finally:
        bar.close()
        env.close()
    index = {"format": "ivm_ros_sim.demos/1", "episodes": entries,
             "args": {"seed": seed, "levels": list(levels), "static_size": static_size, "gripper_size": gripper_size,
                      "instruction_split": instruction_split, "scene": scene}}
    (out / "index.json").write_text(json.dumps(index, indent=1))
    return index


# ---------------------------------------------------------------------------------------------- expert success
def expert_success(seeds: int, levels: tuple[str, ...], tasks: tuple[str, ...] = tuple(T.all_tasks()),
                   progress: bool = True, scene: str = "D") -> dict[str, dict[str, list[int]]]:
    """{level: {family: [successes, trials]}} for the expert over ``seeds`` seeds per task (no rendering)."""
    env = CalvinSceneEnv(render=False, scene=scene)
    res: dict[str, dict[str, list[int]]] = {}
    try:
        for level in levels:
            fam: dict[str, list[int]] = {}
            for task in tqdm(tasks, desc=f"expert [{level}]", disable=not progress):
                for s in range(seeds):
                    ep = rollout(env, task, s, level)
                    f = fam.setdefault(T.family(task), [0, 0])
                    f[0] += int(ep.success)
                    f[1] += 1
            res[level] = fam
    finally:
        env.close()
    return res


# ---------------------------------------------------------------------------------------------- command
def _print_expert(res: dict[str, dict[str, list[int]]], levels: tuple[str, ...], as_json: bool) -> None:
    fams = sorted({f for r in res.values() for f in r})
    print(f"{'family':<18}" + "".join(f"{lv:>14}" for lv in levels))
    for f in fams:
        cells = [res[lv].get(f, [0, 0]) for lv in levels]
        print(f"{f:<18}" + "".join(f"{f'{k}/{n} ({100 * k / max(n, 1):.0f}%)':>14}" for k, n in cells))
    for lv in levels:
        k, n = sum(v[0] for v in res[lv].values()), sum(v[1] for v in res[lv].values())
        print(f"[{lv}] overall: {k}/{n} ({100 * k / max(n, 1):.1f}%)")
    if as_json:
        print(json.dumps(res))


def _run_ivm(args: argparse.Namespace) -> None:
    """``sim-data ivm``: the dataset of the mix (and overrides) in ``args``; prints its size and rate."""
    t0 = time.perf_counter()
    idx = generate_ivm(args.out / "ivm", args.samples, args.seed, args.size, args.machine_fraction,
                       args.machine_error, args.machine_errors, instruction_split=args.split,
                       cameras=("static", "gripper") if args.gripper else tuple(args.cameras.split(",")),
                       scene=args.scene, **hc.resolve(args.mix, args.levels, args.scenes, args.swap_fraction))
    dt = time.perf_counter() - t0
    print(f"wrote {idx['count']} samples in {len(idx['shards'])} shard(s) to {args.out / 'ivm'} "
          f"({idx['count'] / dt:.1f} samples/s); gallery: {args.out / 'ivm' / 'gallery.png'}")
    if "counts" in idx:
        print(f"counts: {json.dumps(idx['counts'])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ivm-ros sim-data", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ivm", help="IVM dataset: image, instruction, mask, quality label")
    a.add_argument("--out", type=Path, default=Path("out/sim_data"))
    a.add_argument("--samples", type=int, default=200)
    a.add_argument("--size", type=int, default=200)
    a.add_argument("--machine-fraction", type=float, default=0.8, help="share of machine labels (quality 0)")
    a.add_argument("--machine-error", type=float, default=0.5, help="share of machine labels that are wrong")
    a.add_argument("--machine-errors", default="independent", choices=MACHINE_ERRORS,
                   help="labeller errors drawn per frame, or once per task (systematic)")
    hc.add_mix_arguments(a)
    a.add_argument("--split", default="train", choices=("train", "heldout", "eval"))
    a.add_argument("--gripper", action="store_true", help="also sample the gripper camera (--cameras static,gripper)")
    a.add_argument("--cameras", default="static", help="cameras to sample, comma-separated: static, gripper")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--scene", default="D", choices=SCENES)
    d = sub.add_parser("demos", help="expert demonstrations (both cameras, states, actions, masks)")
    d.add_argument("--out", type=Path, default=Path("out/sim_data"))
    d.add_argument("--episodes", type=int, default=10)
    d.add_argument("--levels", default="none")
    d.add_argument("--tasks", default="", help="comma-separated task names (default: all the expert solves)")
    d.add_argument("--split", default="train", choices=("train", "heldout", "eval"))
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--scene", default="D", choices=SCENES)
    e = sub.add_parser("expert", help="expert success per task family, clean and distracted")
    e.add_argument("--seeds", type=int, default=5)
    e.add_argument("--levels", default="none,large")
    e.add_argument("--json", action="store_true")
    e.add_argument("--scene", default="D", choices=SCENES)
    modules = {"chains": chain_demos, "gripper-masks": gripper_masks, "gripper-views": gripper_views,
               "simpler-demos": simpler_demos, "simpler-ivm": simpler_ivm}  # subcommands with their own module
    for module in modules.values():
        module.add_parser(sub)
    args = ap.parse_args(argv)
    levels = tuple(x for x in (getattr(args, "levels", "") or "").split(",") if x) if args.cmd != "ivm" else ()
    try:
        for lv in levels:
            dist.check_level(lv)
        if args.cmd == "ivm":
            _run_ivm(args)
        elif args.cmd == "demos":
            tasks = tuple(t for t in args.tasks.split(",") if t) or EXPERT_TASKS
            idx = generate_demos(args.out / "demos", args.episodes, args.seed, tasks, levels,
                                 instruction_split=args.split, scene=args.scene)
            ok = sum(e["success"] for e in idx["episodes"])
            print(f"wrote {len(idx['episodes'])} episodes ({ok} successful) to {args.out / 'demos'}")
        elif args.cmd in modules:
            modules[args.cmd].run(args)
        else:
            _print_expert(expert_success(args.seeds, levels, scene=args.scene), levels, args.json)
    except (ValueError, FileNotFoundError) as exc:  # bad settings, a folder without its index
        ap.error(str(exc))
    return 0
