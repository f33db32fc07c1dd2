"""``ivm-ros bench bag``: frames per second of ``ivm-ros mask-bag`` against the masking pipeline alone, in one run.

A bag of ``--frames`` frames per camera is written with rosbags (:mod:`ivm_ros.bags.synthetic`: one Image rgb8 and
one CompressedImage JPEG camera, an instruction topic, joint states). For each predictor: the pipeline alone on
the already decoded frames (what the node's worker does per frame), then the whole mask-bag pass over the bag (read,
deserialize, decode JPEG, mask, encode, serialize, write MCAP, check its summary). ``io ms/frame`` is what the bag
path adds per frame; ``keep_all`` shows that floor with a predictor that costs nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ivm_ros.bags import synthetic
from ivm_ros.bags.frames import IMAGE_TYPES, message_to_array
from ivm_ros.bags.mask_bag import MaskBagJob, MaskBagOptions, open_reader
from ivm_ros.commands.bench.common import add_json_flag, emit_json, print_table
from ivm_ros.masking import MaskingConfig
from ivm_ros.models.registry import load_predictor
from ivm_ros.pipeline import MaskingPipeline

INSTRUCTION = "lift the red block from the table"


def _frames(bag: Path) -> list[tuple[np.ndarray, str]]:
    """Every camera frame of ``bag`` decoded, in log-time order (copies: the reader's buffers are released)."""
    reader = open_reader(bag)
    frames = []
    try:
        for conn, _, raw in reader.messages():
            if conn.msgtype in IMAGE_TYPES:
                arr, enc = message_to_array(reader.deserialize(raw, conn.msgtype), conn.msgtype)
                frames.append((arr.copy(), enc))
    finally:
        reader.close()
    return frames


def _measure(model: str, bag: Path, frames: list[tuple[np.ndarray, str]], out: Path) -> dict:
    pipeline = MaskingPipeline(load_predictor(model), MaskingConfig(mode="overlay", threshold=0.5))
    for _ in range(3):  # warm-up: first calls allocate and, for lite, encode the instruction
        pipeline.run(*frames[0], INSTRUCTION)
    start = time.perf_counter()
    for arr, enc in frames:
        pipeline.run(arr, enc, INSTRUCTION)
    alone = time.perf_counter() - start
    with MaskBagJob(bag, MaskBagOptions(instruction=INSTRUCTION)) as job:
        summary = job.run(pipeline, out, progress=False)
    pipeline.close()
    n = summary.frames
    return {"model": model, "frames": n, "pipeline fps": round(len(frames) / alone, 2),
            "mask-bag fps": round(summary.frames_per_second, 2),
            "io ms/frame": round(1e3 * (summary.seconds / n - alone / len(frames)), 3),
            "mask-bag/pipeline": round(summary.frames_per_second / (len(frames) / alone), 3),
            "output MB": round(summary.output_bytes / 1e6, 2)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros bench bag", description=__doc__)
    parser.add_argument("--frames", type=int, default=60, help="frames per camera (two cameras)")
    parser.add_argument("--size", default="640x480", help="WxH")
    parser.add_argument("--storage", default="mcap", choices=("mcap", "sqlite3"), help="the input bag's storage")
    parser.add_argument("--models", default="lite,keep_all", help="comma-separated predictors")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ivm_bench_bag_") as tmp:
        bag = Path(tmp) / "in"
        synthetic.write_bag(bag, args.storage, frames=args.frames, size=(width, height))
        input_mb = sum(p.stat().st_size for p in bag.iterdir()) / 1e6
        frames = _frames(bag)
        for model in args.models.split(","):
            rows.append(_measure(model, bag, frames, Path(tmp) / f"out_{model}"))
    print(f"input: {args.storage} bag, {args.frames} frames x 2 cameras (Image rgb8 + CompressedImage JPEG), "
          f"{width}x{height}, {input_mb:.1f} MB; torch threads {args.threads}")
    print_table(rows, ["model", "frames", "pipeline fps", "mask-bag fps", "mask-bag/pipeline", "io ms/frame",
                       "output MB"])
    emit_json(args, {"bench": "bag", "storage": args.storage, "size": args.size, "threads": args.threads,
                     "input_mb": round(input_mb, 2), "rows": rows})
    return 0
