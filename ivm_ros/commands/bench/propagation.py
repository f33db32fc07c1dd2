"""``ivm-ros bench propagation``: a propagated mask's cost per frame beside the lite predictor's.

For each frame size: the lite predictor on one frame, and :class:`ivm_ros.masking.propagate.MaskTracker`
carrying a mask (the square's, at the frame's size as lite gives it) to the next frame by optical flow (each
confidence check) or holding it, on a sequence in which a textured square moves 1 px per frame over a textured
background. ``vs lite`` is the p50 time divided by
the predictor's p50 (a propagated frame at 0.2 costs a fifth of a predicted one). One thread (torch and OpenCV)
unless ``--threads``.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from ivm_ros.commands.bench.common import add_json_flag, emit_json, percentiles, print_table, time_calls
from ivm_ros.masking.propagate import CHECKS, MaskTracker, PropagationSettings
from ivm_ros.models.lite.predictor import LiteConfig, LitePredictor

INSTRUCTION = "lift the red block from the table"


def moving_square(w: int, h: int, frames: int, seed: int = 0) -> tuple[list[np.ndarray], torch.Tensor]:
    """``frames`` (h, w, 3) uint8 RGB frames: a textured square (a quarter of the short side) moving right by
    1 px per frame over a static textured background; and the square's (1, h, w) float32 mask in the first."""
    rng = np.random.default_rng(seed)
    texture = lambda hh, ww: cv2.GaussianBlur(rng.integers(0, 256, (hh, ww, 3)).astype(np.uint8), (0, 0), 2)
    background, side = texture(h, w), min(h, w) // 4
    patch = texture(side, side)
    out, y = [], h // 2 - side // 2
    for t in range(frames):
        frame = background.copy()
        x = (w // 8 + t) % (w - side)
        frame[y:y + side, x:x + side] = patch
        out.append(frame)
    mask = torch.zeros((1, h, w))
    mask[0, y:y + side, w // 8:w // 8 + side] = 1.0
    return out, mask


def time_tracker(settings: PropagationSettings, frames: list[np.ndarray], probs: torch.Tensor) -> np.ndarray:
    """ms of each ``track`` call after the first (which predicts: ``probs``), one per frame in order."""
    tracker = MaskTracker(settings)
    tracker.track(frames[0], 0.0, INSTRUCTION, lambda: probs)
    out = np.empty(len(frames) - 1)
    for t, frame in enumerate(frames[1:], 1):
        start = time.perf_counter()
        tracked = tracker.track(frame, t / 30.0, INSTRUCTION, lambda: probs)
        out[t - 1] = (time.perf_counter() - start) * 1e3
        if tracked.source not in ("propagated", "held"):
            raise RuntimeError(f"frame {t} was {tracked.source}, not carried: the benchmark expects no prediction")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros bench propagation", description=__doc__)
    parser.add_argument("--sizes", default="200x200,640x480", help="comma-separated WxH frame sizes")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--flow-size", type=int, default=PropagationSettings.flow_size,
                        help="long side (px) the flow is computed at")
    parser.add_argument("--repeat", type=int, default=60, help="frames timed per row")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    predictor = LitePredictor(LiteConfig())
    rows = []
    for w, h in (tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")):
        frames, probs = moving_square(w, h, args.repeat + 1)
        tensor = torch.from_numpy(frames[0])[None]
        lite = time_calls(lambda tensor=tensor: predictor.predict(tensor, [INSTRUCTION]), args.repeat)
        stages = [("lite predictor", lite)]
        for check in CHECKS:
            settings = PropagationSettings("flow", predictor_every=10**9, check=check, min_confidence=0.0,
                                           flow_size=args.flow_size)
            stages.append((f"flow + {check} check", time_tracker(settings, frames, probs)))
        stages.append(("hold", time_tracker(PropagationSettings("hold", predictor_every=10**9), frames, probs)))
        reference = float(np.median(lite))
        for stage, ms in stages:
            rows.append({"size": f"{w}x{h}", "stage": stage, **percentiles(ms),
                         "vs lite": round(float(np.median(ms)) / reference, 3)})
    print_table(rows, ["size", "stage", "p50", "p95", "max", "vs lite"])
    print(f"(ms per frame, {args.threads} thread(s); flow at a long side of {args.flow_size} px, DIS ultrafast)")
    emit_json(args, {"bench": "propagation", "threads": args.threads, "flow_size": args.flow_size, "rows": rows})
    return 0
