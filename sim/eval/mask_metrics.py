"""Object-level scores of a predicted instruction mask against the simulator's segmentation (``ivm-ros lite-eval``).

Every function takes boolean (H, W) masks: ``pred`` is the predicted mask after thresholding (probability >
threshold, as the lite mIoU thresholds), the others come from the PyBullet segmentation of the same frame.

* **IoU** (:func:`frame_iou`): |pred & truth| / |pred | truth| with ``truth`` the ground-truth instruction mask
  (:func:`ivm_ros_sim.calvin.masks.relevant_parts`); 1.0 where both are empty. This is exactly the per-sample IoU
  of the lite training's evaluation (:func:`ivm_ros.models.lite.evaluate.iou`), so its mean (mIoU) compares with the
  model card's numbers.
* **coverage**: |pred & named| / |named|, the share of the *named object*'s visible pixels the mask covers (1.0 when
  the named object is not visible: nothing to cover). The named object is the block a block task names (lift / push
  / rotate the red block: that block, not the drawer or door it is lifted from), otherwise the whole ground-truth
  instruction mask (the drawer, the switch + bulb, the held block + its destination, all blocks for stack, ...).
* **wrong-object mass** (:func:`wrong_mass`): |pred & other| / |pred & (other | truth)|, the share of the mask's
  mass *on objects* that lies on *other objects*: task objects (the three blocks and the table's drawer, sliding
  door, button, switch, LED and bulb links) that are not in the ground-truth instruction mask, plus every
  distractor body. 0.0 when the mask covers no object. The robot, the table body, the cabinet shelf, the floor and
  the background are neither right nor wrong objects: mass there counts neither way (mIoU penalises it). Why not
  |pred & other| / |pred|: the other objects fill only ~15-18 % of a frame, so a mask of the whole frame would put
  < 20 % of its mass on them and count as a hit (measured: ``keep_all`` "hit" 58-84 % of the frames that way).
  That literal share is still reported as ``wrong_frame_mass``.
* **hit** (:func:`hit`): coverage >= 0.5 and wrong-object mass <= 0.2 (both bounds inclusive).
* **hit with the identical copy neutral** (``hit_rate_copy_neutral``): the hit rule with the pixels of the named
  block's identical copy (a workspace look-alike of the same size and colour next to it, which no instruction can
  tell apart from it) counted neither right nor wrong, like the background. Equal to the hit where a frame has no
  such copy; ``copy_frames`` counts the frames that have one. Beside the hit rate, it says how many misses are the
  copy's (an ambiguity of the frame) rather than the mask's.
* **swap test** (:func:`swap_pass`): one frame, three instructions that differ only in the colour word (red /
  blue / pink). For each instruction, the mask's *argmax block* is the block with the most mask pixels on it
  (``|pred_i & block_j|``). The frame passes when, for every one of the three instructions, the argmax block is
  the named block and its count is strictly larger than each other block's (a tie fails, an empty mask fails).
  Only frames of tasks that name a block and where all three blocks are visible (:data:`MIN_BLOCK_PIXELS`) take
  the test. A predictor that ignores the instruction gives the same mask three times, so the argmax block cannot
  move and the frame fails. ``swap_block_rate`` is the softer companion: the share of the (frame, colour)
  instructions of those frames whose argmax block is the named block (an instruction-blind mask scores at most 1/3).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ivm_ros.models.lite.evaluate import iou

COVER_MIN = 0.5  #: least share of the named object's pixels a hit covers
WRONG_MAX = 0.2  #: most share of the mask's pixels a hit puts on other objects
MIN_BLOCK_PIXELS = 10  #: a block with fewer visible pixels makes the frame skip the swap test
METRICS = ("miou", "hit_rate", "wrong_object_mass", "swap_pass_rate")


def frame_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two (H, W) bool masks, 1.0 when both are empty (the lite evaluation's definition)."""
    return float(iou(pred[None], truth[None])[0])


def coverage(pred: np.ndarray, named: np.ndarray) -> float:
    """Share of ``named``'s pixels that ``pred`` covers; 1.0 when ``named`` is empty. (H, W) bool each."""
    n = int(named.sum())
    return 1.0 if n == 0 else float(np.logical_and(pred, named).sum() / n)


def wrong_mass(pred: np.ndarray, other: np.ndarray, right: np.ndarray | None) -> float:
    """Share of ``pred``'s pixels on objects that lie on ``other`` (other task objects and distractors):
    |pred & other| / |pred & (other | right)|, ``right`` being the ground-truth instruction mask; 0.0 when the
    mask covers no object. ``right`` None: the share of all of ``pred``'s pixels (``wrong_frame_mass``)."""
    on = pred if right is None else np.logical_and(pred, np.logical_or(other, right))
    n = int(on.sum())
    return 0.0 if n == 0 else float(np.logical_and(pred, other).sum() / n)


def hit(pred: np.ndarray, named: np.ndarray, other: np.ndarray, right: np.ndarray, cover_min: float = COVER_MIN,
        wrong_max: float = WRONG_MAX) -> bool:
    """coverage(pred, named) >= cover_min and wrong_mass(pred, other, right) <= wrong_max."""
    return coverage(pred, named) >= cover_min and wrong_mass(pred, other, right) <= wrong_max


def argmax_block(pred: np.ndarray, blocks: np.ndarray) -> int:
    """Index of the block (``blocks``: (3, H, W) bool) with strictly the most ``pred`` pixels; -1 on a tie for the
    most (an empty mask included)."""
    counts = np.logical_and(pred[None], blocks).reshape(len(blocks), -1).sum(1)
    best = int(np.argmax(counts))
    return -1 if (counts == counts[best]).sum() > 1 else best


def swap_matches(preds: Sequence[np.ndarray], blocks: np.ndarray) -> list[bool]:
    """Per instruction i, whether argmax_block(preds[i]) == i: ``preds[i]`` is the (H, W) bool mask for the
    instruction naming block i, ``blocks`` (len(preds), H, W) bool those blocks' visible pixels."""
    return [argmax_block(p, blocks) == i for i, p in enumerate(preds)]


def swap_pass(preds: Sequence[np.ndarray], blocks: np.ndarray) -> bool:
    """Whether the mask follows the colour word: every one of :func:`swap_matches` holds."""
    return all(swap_matches(preds, blocks))


def score_frame(pred: np.ndarray, truth: np.ndarray, named: np.ndarray, other: np.ndarray,
                copy: np.ndarray | None = None) -> dict[str, float]:
    """{"iou", "coverage", "wrong", "wrong_frame", "hit", "hit_copy_neutral", "copy"} of one frame (all floats; hit,
    hit_copy_neutral and copy are 0.0 / 1.0). ``copy``: the named block's identical copy's pixels (part of
    ``other``), counted neither way by hit_copy_neutral; None when the frame has none."""
    h = float(hit(pred, named, other, truth))
    neutral = h if copy is None else float(hit(pred, named, np.logical_and(other, ~copy), truth))
    return {"iou": frame_iou(pred, truth), "coverage": coverage(pred, named), "wrong": wrong_mass(pred, other, truth),
            "wrong_frame": wrong_mass(pred, other, None), "hit": h, "hit_copy_neutral": neutral,
            "copy": float(copy is not None)}


def _means(rows: list[dict[str, Any]]) -> dict[str, float | int | None]:
    swaps = [r["swap"] for r in rows if r.get("swap") is not None]
    blocks = [r["swap_blocks"] for r in rows if r.get("swap") is not None]
    return {"miou": float(np.mean([r["iou"] for r in rows])),
            "hit_rate": float(np.mean([r["hit"] for r in rows])),
            "hit_rate_copy_neutral": float(np.mean([r.get("hit_copy_neutral", r["hit"]) for r in rows])),
            "copy_frames": int(sum(r.get("copy", 0.0) for r in rows)),
            "wrong_object_mass": float(np.mean([r["wrong"] for r in rows])),
            "wrong_frame_mass": float(np.mean([r.get("wrong_frame", np.nan) for r in rows])),
            "swap_pass_rate": float(np.mean(swaps)) if swaps else None,
            "swap_block_rate": float(np.mean(blocks)) if blocks else None,
            "frames": len(rows), "swap_frames": len(swaps)}


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Per-frame rows ({"family", "iou", "hit", "wrong", "swap": bool or None, "swap_blocks": share of the swap
    instructions matched}) -> {metric: mean over frames, "swap_block_rate", "frames", "swap_frames", "family": {family:
    the same per family}}. The swap rates are None where no frame took the test."""
    rows = list(rows)
    if not rows:
        raise ValueError("no frames to summarize")
    by_family: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_family[r["family"]].append(r)
    return {**_means(rows), "family": {f: _means(v) for f, v in sorted(by_family.items())}}
