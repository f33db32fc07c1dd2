"""``ivm-ros ivm-convert``: sam_vit_h_4b8939.pth + llava-1.5-7b-hf/ + IVM-V1.0.bin -> one .safetensors.

The output holds every tensor under ivm_ros's module names (LoRA kept separate, as released; SAM, decoder and
projection in float32, LLaVA in float16 as the release ran it), plus the LLaVA config and tokenizer files in
the safetensors metadata, so the ``ivm`` predictor needs only ``converted:=<file>``. Needs ~20 GB of RAM at
full size.
"""

from __future__ import annotations

import argparse
import sys

import torch

from ivm_ros.models.ivm.checkpoint import CheckpointError, load_release, save_converted
from ivm_ros.models.ivm.model import ARCHS


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="ivm-ros ivm-convert", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sam", required=True, help="sam_vit_h_4b8939.pth")
    ap.add_argument("--llava", required=True, help="llava-1.5-7b-hf folder")
    ap.add_argument("--ivm", required=True, help="IVM-V1.0.bin")
    ap.add_argument("--out", required=True, help="output .safetensors")
    ap.add_argument("--arch", default="ivm-v1.0", choices=sorted(ARCHS))
    args = ap.parse_args(argv)
    if not args.out.endswith(".safetensors"):
        ap.error("--out must end in .safetensors")
    try:
        model, report = load_release(
            args.sam, args.llava, args.ivm, arch=args.arch, dtype=torch.float32, llava_dtype=torch.float16
        )
    except (FileNotFoundError, CheckpointError) as exc:
        print(f"ivm-convert: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    save_converted(model, args.out)
    print(f"wrote {args.out}")
    return 0
