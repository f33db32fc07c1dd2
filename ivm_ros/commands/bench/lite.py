"""``ivm-ros bench lite``: per-frame cost of the lite predictor and of the whole masking pipeline.

For each frame size and torch thread count: the instruction encoder on a new command and on a cached one,
the predictor (resize + CNN + decoder + upsampling + sigmoid), and the full pipeline (predictor + IVM
post-processing in overlay mode, what the masking node runs per frame). ``vs keep_all`` divides by the same
pipeline with the trivial keep-everything predictor (the post-processing floor); ``budget@15Hz`` is the share of
a 15 Hz camera's 66.7 ms frame period.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ivm_ros.commands.bench.common import add_json_flag, emit_json, percentiles, print_table, time_calls
from ivm_ros.masking import MaskingConfig
from ivm_ros.models.lite.predictor import LiteConfig, LitePredictor
from ivm_ros.models.simple import KeepAllPredictor
from ivm_ros.pipeline import MaskingPipeline

INSTRUCTION = "lift the red block from the table"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros bench lite", description=__doc__)
    parser.add_argument("--sizes", default="200x200,640x480", help="comma-separated WxH frame sizes")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--checkpoint", default="", help="lite .safetensors (default: the shipped one)")
    parser.add_argument("--repeat", type=int, default=50)
    add_json_flag(parser)
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    predictor = LitePredictor(LiteConfig(checkpoint=args.checkpoint))
    lite = MaskingPipeline(predictor, MaskingConfig(mode="overlay", threshold=0.5))
    floor = MaskingPipeline(KeepAllPredictor(), MaskingConfig(mode="overlay", threshold=0.5))
    rng = np.random.default_rng(0)
    rows = []
    words = iter(f"{INSTRUCTION} number {i}" for i in range(10**6))
    for n in threads:
        torch.set_num_threads(n)
        for w, h in sizes:
            frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            tensor = torch.from_numpy(frame)[None]
            new_text = time_calls(lambda: predictor.text([next(words)]), max(5, args.repeat // 5))
            cached = time_calls(lambda: predictor.text([INSTRUCTION]), args.repeat)
            model = time_calls(lambda: predictor.predict(tensor, [INSTRUCTION]), args.repeat)
            full = time_calls(lambda: lite.run(frame, "rgb8", INSTRUCTION), args.repeat)
            base = time_calls(lambda: floor.run(frame, "rgb8", INSTRUCTION), args.repeat)
            p50 = float(np.median(full))
            for what, ms, ratio in (
                ("instruction (new)", new_text, None),
                ("instruction (cached)", cached, None),
                ("predictor", model, None),
                ("pipeline (overlay)", full, p50 / float(np.median(base))),
                ("keep_all pipeline", base, 1.0),
            ):
                rows.append({"threads": n, "size": f"{w}x{h}", "stage": what, **percentiles(ms),
                             "vs keep_all": "" if ratio is None else round(ratio, 1),
                             "budget@15Hz": f"{100 * float(np.median(ms)) / (1000 / 15):.0f}%"})
    print_table(rows, ["threads", "size", "stage", "p50", "p95", "max", "vs keep_all", "budget@15Hz"])
    emit_json(args, {"bench": "lite", "checkpoint": predictor.checkpoint, "rows": rows})
    predictor.close()
    return 0
