"""``ivm-ros lite-eval``: object-level scores of a mask predictor on simulator frames with per-object ground truth.

For every frame of each ``--set`` (:mod:`ivm_ros_sim.eval.lite_sets`) the predictor gets the frame and its
instruction; its probabilities are thresholded (``--threshold``, 0.5 as the lite mIoU) and scored
(:mod:`ivm_ros_sim.eval.mask_metrics`): mIoU against the ground-truth instruction mask, hit rate (>= 50 % of the
named object covered; of the mask's mass on objects, <= 20 % on other task objects and distractors), wrong-object
mass, and the swap test (frames of block tasks: the same frame with the instruction naming the red, blue, pink block
in turn; the mask's argmax block must follow; ``swap_block_rate`` counts each colour instruction on its own).
Overall and per task family.

``--model``: ``lite`` (default; the shipped checkpoint, or ``--checkpoint PATH`` for any lite checkpoint), any other
registered predictor or ``module:Class``, or ``groundtruth`` (the simulator's own instruction mask: the upper bound,
hit rate 1 and wrong-object mass 0 by construction). Output: a table per set, per-family hit rates, and with
``--json`` one JSON line last: ``miou``, ``hit_rate``, ``wrong_object_mass``, ``swap_pass_rate`` and ``family``
pooled over every frame of every set, ``sets`` (the same per set) and ``settings``. ``--out DIR`` writes
``lite_eval.json`` and ``lite_eval.png`` (frame | ground truth | predicted mask | for a swap frame, the predicted mask
when the instruction names another block; two frames per set, the background outside each mask washed out).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.scene import BLOCKS
from ivm_ros_sim.eval import lite_sets, mask_metrics, runs
from ivm_ros_sim.eval.lite_sets import EvalFrame
from tqdm import tqdm

from ivm_ros.models.base import MaskPredictor
from ivm_ros.plugins import PluginLoadError

EXAMPLES_PER_SET = 2  # frames per set in the picture


class MaskSource(Protocol):
    """What the evaluation asks for masks: images (B, H, W, 3) uint8 RGB, B instructions and the B ground-truth masks
    (B, H, W) bool of those (image, instruction) pairs -> (B, H, W) float32 probabilities. Only the ground-truth
    source may look at the truths."""

    def __call__(self, images: np.ndarray, instructions: Sequence[str], truths: np.ndarray) -> np.ndarray: ...


class GroundTruthSource:
    """The upper bound: the simulator's own instruction mask, as probabilities 0 / 1."""

    name = "groundtruth"

    def __call__(self, images: np.ndarray, instructions: Sequence[str], truths: np.ndarray) -> np.ndarray:
        return truths.astype(np.float32)


class PredictorSource:
    """A :class:`~ivm_ros.models.base.MaskPredictor` (lite, ivm, a user's ``module:Class``); never sees the truths."""

    def __init__(self, predictor: MaskPredictor, name: str) -> None:
        self.predictor, self.name = predictor, name

    def __call__(self, images: np.ndarray, instructions: Sequence[str], truths: np.ndarray) -> np.ndarray:
        probs = self.predictor.predict(torch.from_numpy(np.ascontiguousarray(images)), list(instructions))
        probs = probs.detach().float().cpu().numpy()
        if probs.shape != truths.shape:  # e.g. a predictor answering at its native grid
            probs = np.stack([cv2.resize(p, truths.shape[:0:-1], interpolation=cv2.INTER_LINEAR) for p in probs])
        return probs


def load_source(model: str, checkpoint: str = "") -> tuple[MaskSource, dict[str, Any]]:
    """(mask source, description for the settings) for ``--model`` / ``--checkpoint``."""
    if model == "groundtruth":
        if checkpoint:
            raise ValueError("--checkpoint has no meaning with --model groundtruth")
        return GroundTruthSource(), {"model": "groundtruth"}
    from ivm_ros.models.registry import load_predictor

    predictor = load_predictor(model, {"checkpoint": checkpoint} if checkpoint else {})
    desc: dict[str, Any] = {"model": model}
    path = getattr(predictor, "checkpoint", None)
    if model == "lite" and path:
        from ivm_ros.models.lite.checkpoint import tensor_digest

        desc |= {"checkpoint": str(path), "tensor_digest": tensor_digest(path)}
    return PredictorSource(predictor, model), desc


def score(frame: EvalFrame, source: MaskSource, threshold: float = 0.5
          ) -> tuple[dict[str, Any], list[tuple[str, np.ndarray]]]:
    """(row for :func:`mask_metrics.summarize`, [(instruction, (H, W) bool predicted mask)]: the frame's own
    instruction first, then for a swap frame the two naming the other blocks) of one frame, from one call of
    ``source``."""
    texts, truths = [frame.instruction], [frame.truth]
    own = BLOCKS.index(T.target_block(frame.task) or BLOCKS[0])  # the swap instruction that is the frame's own
    if frame.swap is not None:
        extra = [(t, m) for i, (t, m) in enumerate(frame.swap) if i != own]
        texts += [t for t, _ in extra]
        truths += [m for _, m in extra]
    images = np.repeat(frame.image[None], len(texts), axis=0)
    preds = source(images, texts, np.stack(truths)) > threshold
    pred = preds[0]
    scores = mask_metrics.score_frame(pred, frame.truth, frame.named, frame.other, frame.twin)
    row: dict[str, Any] = {"family": frame.family, "task": frame.task, **scores, "swap": None}
    if frame.swap is not None:
        rest = iter(preds[1:])
        per_block = [pred if i == own else next(rest) for i in range(len(frame.swap))]
        matches = mask_metrics.swap_matches(per_block, frame.blocks)
        row["swap"], row["swap_blocks"] = all(matches), float(np.mean(matches))
    return row, list(zip(texts, preds))


Example = tuple[EvalFrame, list[tuple[str, np.ndarray]], dict[str, Any]]  # frame, score()'s masks, its row


def evaluate_set(name: str, source: MaskSource, frames: int, seed: int = 0, threshold: float = 0.5,
                 size: int = 200, progress: bool = True) -> tuple[dict[str, Any], list[Example]]:
    """(summary of set ``name`` with its ``seconds``, a few evenly spaced examples for the picture)."""
    t0 = time.perf_counter()
    keep = set(np.linspace(0, frames - 1, min(EXAMPLES_PER_SET, frames)).round().astype(int).tolist())
    rows, examples = [], []
    bar = tqdm(total=frames, desc=f"lite-eval {name}", unit="frame", disable=not progress, file=sys.stderr)
    try:
        for i, frame in enumerate(lite_sets.set_frames(name, frames, seed, size)):
            row, masks = score(frame, source, threshold)
            rows.append(row)
            if i in keep:
                examples.append((frame, masks, row))
            bar.update(1)
    finally:
        bar.close()
    return {**mask_metrics.summarize(rows), "seconds": round(time.perf_counter() - t0, 1)}, examples


def _fmt(x: float | None) -> str:
    return "    -" if x is None else f"{x:5.3f}"


def table(sets: dict[str, dict[str, Any]]) -> str:
    """Plain-text tables: the four metrics per set, then each family's hit rate (and swap pass rate) per set."""
    lines = [f"{'set':<18} {'miou':>6} {'hit':>6} {'wrong':>6} {'swap':>6} {'swap1':>6} {'frames':>7} {'swapN':>6} "
             f"{'sec':>6}"]
    for name, s in sets.items():
        lines.append(f"{name:<18} {_fmt(s['miou']):>6} {_fmt(s['hit_rate']):>6} {_fmt(s['wrong_object_mass']):>6} "
                     f"{_fmt(s['swap_pass_rate']):>6} {_fmt(s['swap_block_rate']):>6} {s['frames']:>7} "
                     f"{s['swap_frames']:>6} {s['seconds']:>6}")
    lines.append("(swap: all three colour words followed; swap1: share of single colour instructions followed)")
    families = sorted({f for s in sets.values() for f in s["family"]})
    lines += ["", "hit rate [with the named block's identical copy neutral, where frames have one] (swap pass rate) "
              "per family:", f"{'family':<18}" + "".join(f"{n:>26}" for n in sets)]
    for f in families:
        cells = []
        for s in sets.values():
            v = s["family"].get(f)
            swap = "" if v is None or v["swap_pass_rate"] is None else f" ({v['swap_pass_rate']:.2f})"
            copy = "" if v is None or not v["copy_frames"] else f" [{v['hit_rate_copy_neutral']:.2f}]"
            cells.append("-" if v is None else f"{v['hit_rate']:.2f}{copy}{swap} n{v['frames']}")
        lines.append(f"{f:<18}" + "".join(f"{c:>26}" for c in cells))
    return "\n".join(lines)


def _show(img: np.ndarray, mask: np.ndarray | None, colour: tuple[int, int, int], side: int) -> np.ndarray:
    """(side, side, 3) uint8: ``img`` resized, everything outside ``mask`` washed out towards white and the mask's
    outline drawn in ``colour``; the plain frame for ``mask`` None."""
    view = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    if mask is None:
        return view
    m = cv2.resize(mask.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST)
    out = np.where(m[..., None] > 0, view, (0.3 * view + 0.7 * 255).astype(np.uint8))
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.drawContours(np.ascontiguousarray(out), contours, -1, colour, 1)


def _example_tile(name: str, example: Example, side: int = 176) -> np.ndarray:
    """frame | ground truth (cyan outline) | predicted mask (orange) | for a swap frame, the mask when the instruction
    names another block (green), each ``side`` px with the background washed out, under a two-line caption."""
    frame, masks, row = example
    tiles = [_show(frame.image, None, (0, 0, 0), side), _show(frame.image, frame.truth, (0, 200, 255), side),
             _show(frame.image, masks[0][1], (255, 110, 0), side)]
    tiles.append(_show(frame.image, masks[1][1], (0, 200, 0), side) if len(masks) > 1
                 else np.full_like(tiles[0], 255))
    strip = np.hstack(tiles)
    bar = np.full((40, strip.shape[1], 3), 255, np.uint8)
    lines = [f"[{name}] {frame.instruction[:60]}",
             f"IoU {row['iou']:.2f} hit {int(row['hit'])} wrong {row['wrong']:.2f}"
             + ("" if row["swap"] is None else f" swap {int(row['swap'])}; 4th: '{masks[1][0][:34]}'")]
    for k, text in enumerate(lines):
        cv2.putText(bar, text, (4, 15 + 17 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, strip])


def picture(examples: dict[str, list[Example]], path: Path) -> Path:
    """PNG, one row per set with its examples side by side (:func:`_example_tile`)."""
    rows = []
    for name, items in examples.items():
        tiles = [_example_tile(name, ex) for ex in items]
        tiles += [np.full_like(tiles[0], 255)] * (EXAMPLES_PER_SET - len(tiles))
        rows.append(np.hstack(tiles))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def run(sets: Iterable[str], source: MaskSource, frames: int, seed: int = 0, threshold: float = 0.5, size: int = 200,
        progress: bool = True) -> tuple[dict[str, Any], dict[str, list[Example]]]:
    """(report: pooled metrics over all sets' frames + ``sets`` per set, examples per set)."""
    results, examples = {}, {}
    for name in sets:
        results[name], examples[name] = evaluate_set(name, source, frames, seed, threshold, size, progress)
    return {**_pool(results), "sets": results}, examples


def _pool(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Frame-weighted means over sets of the metrics and of each family's metrics."""
    def mean(items: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        n = sum(s["frames"] for s in items)
        for k in ("miou", "hit_rate", "hit_rate_copy_neutral", "wrong_object_mass", "wrong_frame_mass"):
            out[k] = sum(s[k] * s["frames"] for s in items) / n
        ns = sum(s["swap_frames"] for s in items)
        for k in ("swap_pass_rate", "swap_block_rate"):
            out[k] = sum((s[k] or 0.0) * s["swap_frames"] for s in items) / ns if ns else None
        return out | {"frames": n, "swap_frames": ns, "copy_frames": sum(s["copy_frames"] for s in items)}

    families = sorted({f for s in results.values() for f in s["family"]})
    return {**mean(list(results.values())),
            "family": {f: mean([s["family"][f] for s in results.values() if f in s["family"]]) for f in families}}


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="ivm-ros lite-eval", description=__doc__.split("\n")[0])
    ap.add_argument("--set", dest="sets", action="append", required=True, metavar="NAME",
                    help=f"evaluation set, repeatable: {', '.join(lite_sets.SETS)}")
    ap.add_argument("--model", default="lite", help="lite (default), groundtruth, another predictor or module:Class")
    ap.add_argument("--checkpoint", default="", help="a lite .safetensors file (default: the shipped one)")
    ap.add_argument("--frames", type=int, default=400, help="frames per set (400: the lite training's eval sets)")
    ap.add_argument("--seed", type=int, default=0, help="added to each set's seed; calvin: the first chain")
    ap.add_argument("--threshold", type=float, default=0.5, help="probability threshold of the predicted mask")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--json", action="store_true", help="print one JSON line last")
    ap.add_argument("--out", type=Path, default=None, help="write lite_eval.json and lite_eval.png here")
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        for name in args.sets:
            lite_sets.check_set(name)
        torch.set_num_threads(args.threads)
        source, desc = load_source(args.model, args.checkpoint)
        report, examples = run(args.sets, source, args.frames, args.seed, args.threshold, progress=not args.no_progress)
    except (ValueError, PluginLoadError) as exc:  # an unknown set or predictor, a bad setting
        print(f"ivm-ros lite-eval: {exc}", file=sys.stderr)
        return 2
    report["settings"] = {**desc, "sets": args.sets, "frames": args.frames, "seed": args.seed,
                          "threshold": args.threshold, "scene": "D", "size": 200,
                          "hit": {"cover_min": mask_metrics.COVER_MIN, "wrong_max": mask_metrics.WRONG_MAX}}
    print(table(report["sets"]))
    runs.write_report(args.out, "lite_eval", report, args.json, lambda out: picture(examples, out / "lite_eval.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
