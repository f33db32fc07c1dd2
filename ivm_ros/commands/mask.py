"""``ivm-ros mask``: mask image files offline with a predictor (no ROS), writing PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
from tqdm import tqdm

from ivm_ros.masking.config import MODES, MaskingConfig
from ivm_ros.models.registry import load_predictor
from ivm_ros.pipeline import MaskingPipeline


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros mask", description=__doc__)
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--instruction", "-i", required=True)
    parser.add_argument("--model", default="lite")
    parser.add_argument("--mode", default="overlay", choices=MODES)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path("out/mask"))
    args = parser.parse_args(argv)
    pipeline = MaskingPipeline(load_predictor(args.model), MaskingConfig(threshold=args.threshold, mode=args.mode))
    args.out.mkdir(parents=True, exist_ok=True)
    for path in tqdm(args.images, desc="masking", unit="image"):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            parser.error(f"cannot read image {path}")
        result = pipeline.run(bgr, "bgr8", args.instruction)
        cv2.imwrite(str(args.out / f"{path.stem}_{args.mode}.png"), result.masked)
        cv2.imwrite(str(args.out / f"{path.stem}_mask.png"), result.mask)
        note = " (fail-safe: nothing above threshold, whole image kept)" if result.fail_safe else ""
        tqdm.write(f"{path.name}: kept box {result.box}, predictor {result.predictor_ms:.1f} ms{note}")
    print(f"wrote {args.out}/")
    return 0
