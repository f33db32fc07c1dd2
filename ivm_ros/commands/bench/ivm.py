"""``ivm-ros bench ivm``: the IVM-V1.0 engine against a straight implementation of the release's path.

Engine: uint8 frames -> device, resize + normalise on the device, bf16 (CUDA) / fp32 (CPU), LoRA merged,
batched, SDPA attention, probabilities left on the device (the masking library continues there).
Reference (as the release's ``forward_batch``): PIL bicubic resize to 1024, SAM + decoder in fp32, LLaVA in fp16
(fp32 on CPU), peft LoRA unmerged, one sigmoid per frame copied to the host, then NumPy/OpenCV: fail-safe,
threshold, rectangular dilation + Gaussian blur with 2*int(0.05*H)+1, composite with white.

Random weights. Full size needs CUDA (7.7 B parameters); ``--tiny`` runs the same code at toy size on the CPU.
The full-size prompt uses an offline word-level tokenizer (the real one cannot be downloaded here), so the text
part is a few tokens shorter than llava's; the 576 image tokens dominate either way.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from ivm_ros.models.ivm.model import ARCHS, IVMModel
from ivm_ros.models.ivm.reference import reference_forward

NOMINAL_FLOP_PER_FRAME = 14.4e12  # SAM-H at 1024^2 (~5.7 T) + LLaVA-7B prefill of ~600 tokens (~8.8 T)
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "RTX 4090": 165e12}
INSTRUCTIONS = [
    "pick up the red cup and place it on the green plate",
    "open the drawer",
    "push the blue block left",
    "put the duck in the pan",
]


def _time(fn: Callable[[], object], iters: int, warmup: int, cuda: bool) -> list[float]:
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def _stats(times: list[float], batch: int) -> dict[str, float]:
    q = sorted(times)
    p95 = q[min(len(q) - 1, round(0.95 * (len(q) - 1)))]
    return {"p50_ms": statistics.median(q), "p95_ms": p95, "fps": batch * 1000.0 / statistics.mean(q)}


def full_size_model(device: torch.device, dtype: torch.dtype) -> IVMModel:
    """Random IVM-V1.0 at full size (SAM ViT-H + llava-1.5-7b shapes) built directly on ``device``."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from ivm_ros.models.ivm.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    text = LlamaConfig(
        vocab_size=32064,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        pad_token_id=tok.pad_token_id,
    )
    vision = CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=336,
        patch_size=14,
        projection_dim=768,
        hidden_act="quick_gelu",
    )
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"))
    with torch.device(device):
        llava = LlavaForConditionalGeneration._from_config(cfg, dtype=dtype)
        model = IVMModel(ARCHS["ivm-v1.0"], llava, tok)
    return model.to(dtype).eval().requires_grad_(False)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ivm-ros bench ivm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tiny", action="store_true", help="toy-size model on the CPU (no GPU needed)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--iters", type=int, default=0, help="timed calls per case (default 20, tiny 10)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--compile", action="store_true", help="torch.compile the image encoder (engine)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return ap


Case = tuple[int, np.ndarray, list[str], dict]


def _engine_cases(
    args: argparse.Namespace,
    device: torch.device,
    dtype: torch.dtype,
    iters: int,
    batches: list[int],
    peak: float | None,
) -> list[Case]:
    """Times the engine (IVMPredictor on a random model) per batch size; returns (batch, frames, texts, row)."""
    from ivm_ros.models.ivm.predictor import IVMConfig, IVMPredictor
    from ivm_ros.models.ivm.tiny import tiny_model

    cuda = device.type == "cuda"
    engine_model = (tiny_model() if args.tiny else full_size_model(device, dtype)).to(device, dtype)
    predictor = IVMPredictor(
        IVMConfig(
            device=str(device), dtype=str(dtype).replace("torch.", ""), batch_size=max(batches), compile=args.compile
        ),
        model=engine_model,
    )
    rng = np.random.default_rng(0)
    rows = []
    for b in batches:
        frames = rng.integers(0, 256, (b, 480, 640, 3), dtype=np.uint8)
        host = torch.from_numpy(frames)
        if cuda:
            host = host.pin_memory()
            torch.cuda.reset_peak_memory_stats(device)
        texts = INSTRUCTIONS[:b] if b <= len(INSTRUCTIONS) else (INSTRUCTIONS * b)[:b]
        eng = _stats(_time(functools.partial(predictor.predict, host, texts), iters, args.warmup, cuda), b)
        row = {"batch": b, "engine": eng}
        if cuda:
            row["engine"]["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            if peak and not args.tiny:
                row["engine"]["bf16_peak_fraction"] = eng["fps"] * NOMINAL_FLOP_PER_FRAME / peak
        rows.append((b, frames, texts, row))
    predictor.close()
    return rows


def _reference_cases(args: argparse.Namespace, device: torch.device, iters: int, rows: list[Case]) -> None:
    """Times the release-style reference path on the same frames; adds ``reference`` and ``speedup`` to rows."""
    from ivm_ros.models.ivm.tiny import tiny_model

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
    ref_model = tiny_model() if args.tiny else full_size_model(device, torch.float32)
    if not args.tiny:  # the release ran LLaVA in fp16 and everything else in fp32
        ref_model.prompt_encoder.model.to(torch.float16)
    ref_model.to(device)
    for b, frames, texts, row in rows:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        row["reference"] = _stats(
            _time(functools.partial(reference_forward, ref_model, frames, texts), iters, args.warmup, cuda), b
        )
        if cuda:
            row["reference"]["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        row["speedup"] = row["engine"]["fps"] / row["reference"]["fps"]


def _print_results(results: dict, tiny: bool) -> None:
    print(
        f"IVM-V1.0 bench ({results['size']}, random weights) on {results['device']}, 640x480 frames, "
        f"engine {results['engine_dtype']}"
    )
    print(f"{'batch':>5} {'path':<10} {'frames/s':>9} {'p50 ms':>9} {'p95 ms':>9} {'peak GiB':>9} {'bf16 frac':>9}")
    for r in results["cases"]:
        for path in ("engine", "reference"):
            if path in r:
                s = r[path]
                print(
                    f"{r['batch']:>5} {path:<10} {s['fps']:>9.2f} {s['p50_ms']:>9.1f} {s['p95_ms']:>9.1f} "
                    f"{s.get('peak_gpu_mem_gib', float('nan')):>9.2f} {s.get('bf16_peak_fraction', float('nan')):>9.3f}"
                )
        if "speedup" in r:
            print(f"{'':>5} speedup engine/reference: {r['speedup']:.2f}x")
    if tiny:
        print("note: --tiny measures the code path at toy size on the CPU; it says nothing about GPU speed.")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)

    from ivm_ros.models.base import resolve_device

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if not args.tiny and not cuda:
        print(
            "ivm-ros bench ivm: the full-size model (7.7 B parameters) needs CUDA; use --tiny on the CPU",
            file=sys.stderr,
        )
        return 2
    dtype = torch.bfloat16 if cuda else torch.float32
    iters = args.iters or (10 if args.tiny else 20)
    batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "size": "tiny" if args.tiny else "full",
        "frame": "640x480",
        "engine_dtype": str(dtype).replace("torch.", ""),
        "torch": torch.__version__,
    }
    peak = next((v for k, v in BF16_PEAK.items() if k in str(results["device"])), None)
    rows = _engine_cases(args, device, dtype, iters, batches, peak)
    if not args.no_reference:
        _reference_cases(args, device, iters, rows)
    results["cases"] = [r for *_, r in rows]
    _print_results(results, args.tiny)
    if args.json:
        print(json.dumps(results))
    return 0
