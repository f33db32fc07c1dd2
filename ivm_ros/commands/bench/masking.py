"""``ivm-ros bench masking``: the masking library against the literal NumPy/OpenCV reference.

For each resolution and mode: p50 milliseconds per frame of ours and of the reference on the same frame
and mask, their ratio, and the largest grey-level difference between the two outputs.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ivm_ros.commands.bench.common import add_json_flag, emit_json, percentiles, print_table, time_calls
from ivm_ros.masking.apply import apply_mask
from ivm_ros.masking.config import MODES, MaskingConfig
from ivm_ros.masking.reference import reference_mask


def synthetic_frame(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured (H, W, 3) uint8 frame and a (256, 256) float32 probability map with two blobs,
    as a mask predictor at IVM's native 256x256 output would give."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    base = np.stack([(xx * 255 // max(width - 1, 1)), (yy * 255 // max(height - 1, 1)), (xx + yy) % 256], -1)
    frame = np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)
    gy, gx = np.mgrid[:256, :256] / 255.0
    prob = np.maximum(
        np.exp(-((gy - 0.55) ** 2 + (gx - 0.35) ** 2) / (2 * 0.08**2)),
        np.exp(-((gy - 0.3) ** 2 + (gx - 0.7) ** 2) / (2 * 0.05**2)),
    ).astype(np.float32)
    return frame, prob


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros bench masking", description=__doc__)
    parser.add_argument("--sizes", default="640x480,1280x720", help="comma-separated WxH list")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {MODES}")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        frame, prob = synthetic_frame(height, width)
        images, probs = torch.from_numpy(frame)[None], torch.from_numpy(prob)[None]
        for mode in args.modes.split(","):
            cfg = MaskingConfig(threshold=0.5, mode=mode)  # type: ignore[arg-type]
            ours_out = apply_mask(images, probs, cfg).images[0].numpy()
            ref_out = reference_mask(frame, prob, cfg)[0]
            ours = percentiles(time_calls(lambda: apply_mask(images, probs, cfg), args.repeat))
            ref = percentiles(time_calls(lambda: reference_mask(frame, prob, cfg), args.repeat))
            rows.append(
                {
                    "size": f"{width}x{height}",
                    "mode": mode,
                    "ours_p50_ms": ours["p50"],
                    "ours_p95_ms": ours["p95"],
                    "reference_p50_ms": ref["p50"],
                    "speedup": round(ref["p50"] / ours["p50"], 2),
                    "max_abs_diff": int(np.abs(ours_out.astype(int) - ref_out.astype(int)).max()),
                }
            )
    print(f"masking: ours (torch API, {apply_mask.__module__}) vs literal NumPy/OpenCV reference, per frame")
    print_table(rows, list(rows[0]))
    emit_json(args, {"bench": "masking", "rows": rows})
    return 0
