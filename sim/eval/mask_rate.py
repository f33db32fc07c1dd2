"""``ivm-ros sim-mask-rate``: masks at camera rate, measured on CALVIN episodes in which the arm moves objects.

The scripted expert (:mod:`ivm_ros_sim.calvin.expert`) runs CALVIN tasks in scene D; the env's control period
is 1/30 s (8 physics steps at 240 Hz), so rendering the static camera after every control step gives a 30 Hz
camera with the world exactly as it is at each frame's time (frame t is stamped t/30 s). The simulator's
segmentation gives each frame's ground-truth instruction mask (:mod:`ivm_ros_sim.calvin.masks`). Each method
(:class:`ivm_ros.masking.propagate.MaskTracker`) then masks every frame of every episode:

* ``lite``: the lite predictor on every frame (the reference);
* ``lite_<rate>hz_flow``: lite at ``--rate`` Hz, optical-flow propagation between (with its fallback);
* ``lite_<rate>hz_hold``: lite at ``--rate`` Hz, the last mask held between (the baseline);
* ``gt_<rate>hz_flow`` / ``gt_<rate>hz_hold``: the ground truth at ``--rate`` Hz, carried the same ways: the
  error of the propagation alone, without the predictor's.

Score: mean over all frames of the IoU of ``probs > --threshold`` with the ground truth (1 when both are empty),
before dilation/feathering. Lite runs once per frame and its outputs are reused by the rate methods (the same
numbers as calling it again); times are CPU wall-clock ms on one thread (torch and OpenCV). Prints a table,
saves a plot of IoU over time for the first episode (``--plot``) and prints one JSON object last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TASKS = ("lift_red_block_table", "push_blue_block_right", "move_slider_left", "open_drawer")
CAMERA_HZ = 30


@dataclasses.dataclass
class EpisodeFrames:
    """One episode at 30 Hz: ``rgb`` (T, S, S, 3) uint8 static camera; ``gt`` (T, S, S) bool instruction mask."""

    task: str
    seed: int
    instruction: str
    rgb: np.ndarray
    gt: np.ndarray


def record_episodes(tasks: list[str], seeds: list[int], size: int, progress: bool = True) -> list[EpisodeFrames]:
    """Runs the expert on each (task, seed) with the static camera (``size`` px) and its segmentation rendered
    after every 30 Hz control step."""
    from ivm_ros_sim.calvin.env import CalvinSceneEnv
    from ivm_ros_sim.calvin.expert import rollout
    from tqdm import tqdm

    env = CalvinSceneEnv(static_size=size, render_gripper=False, segmentation=True)
    out = []
    try:
        for task, seed in tqdm([(t, s) for s in seeds for t in tasks], desc="episodes", disable=not progress):
            ep = rollout(env, task, seed, record=True)
            out.append(EpisodeFrames(task, seed, ep.instruction, ep.frames["rgb_static"], ep.frames["mask_static"]))
    finally:
        env.close()
    return out


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two (H, W) bool masks; 1.0 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def lite_probs(episodes: list[EpisodeFrames], progress: bool = True) -> tuple[list[list[Any]], list[float]]:
    """Lite's (1, H, W) probabilities for every frame of every episode, and its ms per frame."""
    import torch
    from tqdm import tqdm

    from ivm_ros.models.registry import load_predictor

    predictor = load_predictor("lite", {})
    probs, ms = [], []
    total = sum(len(ep.rgb) for ep in episodes)
    with tqdm(total=total, desc="lite, every frame", disable=not progress) as bar:
        for ep in episodes:
            out = []
            for frame in ep.rgb:
                t0 = time.perf_counter()
                out.append(predictor.predict(torch.from_numpy(frame)[None], [ep.instruction]))
                ms.append((time.perf_counter() - t0) * 1e3)
                bar.update()
            probs.append(out)
    predictor.close()
    return probs, ms


def run_method(ep: EpisodeFrames, settings: Any, predict: Callable[[int], Any], threshold: float) -> dict[str, Any]:
    """Masks every frame of ``ep`` with a fresh tracker; ``predict(t)`` gives frame t's (1, H, W) probabilities.
    Returns per-frame ``iou`` and ``source`` lists, ``propagation_ms`` of the propagated frames and the
    tracker's counts."""
    from ivm_ros.masking.propagate import MaskTracker

    tracker = MaskTracker(settings)
    ious, sources, prop_ms = [], [], []
    for t, frame in enumerate(ep.rgb):
        tracked = tracker.track(frame, t / CAMERA_HZ, ep.instruction, lambda t=t: predict(t))
        mask = tracked.probs[0].cpu().numpy() > threshold
        ious.append(iou(mask, ep.gt[t]))
        sources.append(tracked.source)
        if tracked.source in ("propagated", "held"):
            prop_ms.append(tracked.propagation_ms)
    return {"iou": ious, "source": sources, "propagation_ms": prop_ms, "counts": dict(tracker.counts)}


def methods(args: argparse.Namespace) -> dict[str, tuple[str, Any]]:
    """Method name -> (which predictor: "lite" or "gt", PropagationSettings)."""
    from ivm_ros.masking.propagate import PropagationSettings

    flow = dict(mode="flow", predictor_rate=args.rate, fallback=args.fallback, flow=args.flow,
                flow_size=args.flow_size, check=args.check, min_confidence=args.min_confidence)
    rate = f"{args.rate:g}hz"
    return {
        "lite": ("lite", PropagationSettings(mode="off")),
        f"lite_{rate}_flow": ("lite", PropagationSettings(**flow)),
        f"lite_{rate}_hold": ("lite", PropagationSettings(mode="hold", predictor_rate=args.rate)),
        f"gt_{rate}_flow": ("gt", PropagationSettings(**flow)),
        f"gt_{rate}_hold": ("gt", PropagationSettings(mode="hold", predictor_rate=args.rate)),
    }


def evaluate(episodes: list[EpisodeFrames], args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(summary per method, per-episode traces of the first episode) for every method of :func:`methods`."""
    import torch
    from tqdm import tqdm

    lite, lite_ms = lite_probs(episodes, not args.no_progress)
    table, first = {}, {}
    for name, (source, settings) in tqdm(methods(args).items(), desc="methods", disable=args.no_progress):
        ious, prop_ms, counts, per_episode = [], [], {}, []
        for i, ep in enumerate(episodes):
            if source == "lite":
                predict = lambda t, i=i: lite[i][t]
            else:
                predict = lambda t, ep=ep: torch.from_numpy(ep.gt[t].astype(np.float32))[None]
            run = run_method(ep, settings, predict, args.threshold)
            ious += run["iou"]
            prop_ms += run["propagation_ms"]
            per_episode.append(float(np.mean(run["iou"])))
            for k, v in run["counts"].items():
                counts[k] = counts.get(k, 0) + v
            if i == 0:
                first[name] = run
        table[name] = {"miou": float(np.mean(ious)), "episode_miou_min": float(np.min(per_episode)),
                       "frames": len(ious), "counts": counts,
                       "propagation_ms_p50": float(np.median(prop_ms)) if prop_ms else None}
    table["lite"]["predictor_ms_p50"] = float(np.median(lite_ms))
    return table, first


def markdown(table: dict[str, Any], ref: str = "lite") -> str:
    """The results as a Markdown table (mIoU, difference to ``ref``, frames per source, ms per frame)."""
    lines = ["| method | mIoU | vs lite | worst episode | predicted | propagated/held | fallback | ms/frame |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in table.items():
        c = r["counts"]
        fallback = c.get("fallback_repredict", 0) + c.get("fallback_whole_frame", 0)
        ms = r.get("predictor_ms_p50") or r["propagation_ms_p50"]
        lines.append(f"| {name} | {r['miou']:.3f} | {r['miou'] - table[ref]['miou']:+.3f} | "
                     f"{r['episode_miou_min']:.3f} | {c.get('predicted', 0)} | "
                     f"{c.get('propagated', 0) + c.get('held', 0)} | {fallback} | "
                     f"{'n/a' if ms is None else f'{ms:.2f}'} |")
    return "\n".join(lines)


def plot(first: dict[str, Any], episode: EpisodeFrames, path: Path) -> None:
    """IoU over time (s) of the first episode for each method; dots where the predictor ran."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for name, run in first.items():
        t = np.arange(len(run["iou"])) / CAMERA_HZ
        line, = ax.plot(t, run["iou"], label=name, ls="--" if name.startswith("gt") else "-")
        ran = [k for k, s in enumerate(run["source"]) if s in ("predicted", "repredicted")]
        if name != "lite":
            ax.plot(t[ran], np.asarray(run["iou"])[ran], "o", color=line.get_color(), ms=4)
    ax.set(xlabel="time (s), 30 Hz camera", ylabel="IoU with ground truth", ylim=(0, 1.02),
           title=f"{episode.task} (seed {episode.seed}): \"{episode.instruction}\"")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from ivm_ros.masking.propagate import CHECKS, FALLBACKS, FLOW_METHODS

    ap = argparse.ArgumentParser(prog="ivm-ros sim-mask-rate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated CALVIN tasks (scene D)")
    ap.add_argument("--seeds", type=int, default=1, help="episodes per task (seeds 0..N-1)")
    ap.add_argument("--size", type=int, default=200, help="static camera size in px (CALVIN: 200)")
    ap.add_argument("--rate", type=float, default=2.0, help="predictor rate of the propagated methods (Hz)")
    ap.add_argument("--fallback", default="repredict", choices=FALLBACKS)
    ap.add_argument("--flow", default="dis", choices=FLOW_METHODS)
    ap.add_argument("--flow-size", type=int, default=200, help="long side (px) the flow is computed at")
    ap.add_argument("--check", default="photometric", choices=CHECKS)
    ap.add_argument("--min-confidence", type=float, default=0.9, help="below it the fallback applies")
    ap.add_argument("--threshold", type=float, default=0.5, help="probability above which a pixel is in the mask")
    ap.add_argument("--plot", type=Path, default=None, help="save IoU over time of the first episode here (PNG)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import cv2
    import torch

    args = parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    tasks = [t for t in args.tasks.split(",") if t]
    try:
        from ivm_ros_sim.calvin import tasks as T

        for task in tasks:
            T.check_task(task)
    except (ValueError, KeyError) as exc:
        print(f"sim-mask-rate: {exc}", file=sys.stderr)
        return 2
    episodes = record_episodes(tasks, list(range(args.seeds)), args.size, not args.no_progress)
    table, first = evaluate(episodes, args)
    print(markdown(table))
    if args.plot:
        plot(first, episodes[0], args.plot)
        print(f"wrote {args.plot}")
    rate = f"{args.rate:g}hz"
    summary = {"episodes": len(episodes), "frames": table["lite"]["frames"], "rate_hz": args.rate,
               "flow": args.flow, "flow_size": args.flow_size, "check": args.check,
               "min_confidence": args.min_confidence, "fallback": args.fallback, "methods": table,
               "flow_minus_lite": table[f"lite_{rate}_flow"]["miou"] - table["lite"]["miou"],
               "flow_minus_hold": table[f"lite_{rate}_flow"]["miou"] - table[f"lite_{rate}_hold"]["miou"]}
    print(json.dumps(summary))
    return 0
