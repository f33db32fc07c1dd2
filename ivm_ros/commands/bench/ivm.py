"""``ivm-ros bench ivm``: the IVM-V1.0 engine against a straight implementation of the release's path.

Engine: uint8 frames -> device, resize + normalise on the device, bf16 (CUDA) / fp32 (CPU), LoRA merged,
batched, SDPA attention, probabilities left on the device (the masking library continues there).
Reference (as the release's ``forward_batch``): PIL bicubic resize to 1024, precision ``release`` (SAM + decoder
fp32, LLaVA fp16, peft LoRA unmerged), one sigmoid per frame copied to the host, then NumPy/OpenCV: fail-safe,
threshold, rectangular dilation + Gaussian blur with 2*int(0.05*H)+1, composite with white.
Before timing, the same random weights run in fp32, ``release`` and bf16 and their probabilities are compared
(``agreement``); after it, LLaVA offloaded to CPU memory (and with ``--llava-cpu`` run on the CPU) is timed with
its peak GPU memory (``memory_options``).

Random weights. ``--full`` is the GPU check (7.7 B parameters, CUDA; about 2-5 minutes on an H100-class GPU,
estimated): without CUDA it says so and exits with status 0, measuring nothing. ``--tiny`` runs the same code
at toy size on the CPU. The full-size prompt uses an offline word-level tokenizer (the real one cannot be
downloaded here), so the text part is a few tokens shorter than llava's; the 576 image tokens dominate.
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

from ivm_ros.commands.bench.ivm_models import full_size_model, memory_option, precision_agreement
from ivm_ros.models.ivm.predictor import IVMPredictor
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


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ivm-ros bench ivm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="full size on CUDA (the default size; says so and exits "
                      "0 without CUDA)")
    size.add_argument("--tiny", action="store_true", help="toy-size model on the CPU (no GPU needed)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--iters", type=int, default=0, help="timed calls per case (default 20, tiny 10)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--no-memory-options", action="store_true", help="skip the offloaded-LLaVA timing")
    ap.add_argument("--llava-cpu", action="store_true", help="also time LLaVA running on the CPU (slow)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="skip the optional parts after this many seconds")
    ap.add_argument("--compile", action="store_true", help="torch.compile the image encoder (engine)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return ap


Case = tuple[int, np.ndarray, list[str], dict]


def _texts(b: int) -> list[str]:
    return (INSTRUCTIONS * b)[:b]


def _engine_cases(
    args: argparse.Namespace, predictor: IVMPredictor, iters: int, batches: list[int], peak: float | None
) -> list[Case]:
    """Times the engine (the ``auto``-precision predictor) per batch size; returns (batch, frames, texts, row)."""
    device = predictor.device
    cuda = device.type == "cuda"
    rng = np.random.default_rng(0)
    rows = []
    for b in batches:
        frames = rng.integers(0, 256, (b, 480, 640, 3), dtype=np.uint8)
        host = torch.from_numpy(frames)
        if cuda:
            host = host.pin_memory()
            torch.cuda.reset_peak_memory_stats(device)
        texts = _texts(b)
        eng = _stats(_time(functools.partial(predictor.predict, host, texts), iters, args.warmup, cuda), b)
        row = {"batch": b, "engine": eng}
        if cuda:
            row["engine"]["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            if peak and not args.tiny:
                row["engine"]["bf16_peak_fraction"] = eng["fps"] * NOMINAL_FLOP_PER_FRAME / peak
        rows.append((b, frames, texts, row))
    return rows


def _reference_cases(args: argparse.Namespace, release: IVMPredictor, iters: int, rows: list[Case]) -> None:
    """Times the release-style path (release precision) on the same frames; adds ``reference`` and ``speedup``."""
    device = release.device
    cuda = device.type == "cuda"
    for b, frames, texts, row in rows:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        row["reference"] = _stats(
            _time(functools.partial(reference_forward, release.model, frames, texts), iters, args.warmup, cuda), b
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
    agreement = results.get("agreement", {})
    for pair in ("bf16_vs_fp32", "release_vs_fp32", "bf16_vs_release"):
        if pair in agreement:
            a = agreement[pair]
            print(f"agreement {pair}: max |dp| {a['max_abs']:.2e}, mean {a['mean_abs']:.2e}, "
                  f"mask agreement at 0.5: {a['mask_agree_0.5']:.4f}, at 0.1: {a['mask_agree_0.1']:.4f}")
    for row in results.get("memory_options", []):
        print(f"memory option {row}")
    if tiny:
        print("note: --tiny measures the code path at toy size on the CPU; it says nothing about GPU speed.")


def _no_cuda(args: argparse.Namespace) -> int:
    """The full-size check without CUDA: one clear line (and JSON), nothing measured."""
    print(
        f"ivm-ros bench ivm: no CUDA GPU here (torch {torch.__version__}, torch.cuda.is_available() is False), so "
        "the full-size check (7.7 B parameters) was not run and nothing was measured; run it on a GPU machine, "
        "or use --tiny for the same code at toy size on the CPU",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps({"size": "full", "skipped": "no CUDA GPU", "torch": torch.__version__}))
    return 0 if args.full else 2


def _optional(results: dict, name: str, started: float, budget: float, fn: Callable[[], object]) -> None:
    """Runs ``fn`` into ``results[name]`` unless the time budget is spent (then records why)."""
    if time.perf_counter() - started > budget:
        results[name] = {"skipped": f"time budget of {budget:.0f} s spent"}
        return
    results[name] = fn()


def _memory_options(args: argparse.Namespace, release: IVMPredictor, started: float) -> list[dict]:
    """The release model re-placed: LLaVA on the CPU (``--llava-cpu``) then offloaded; one frame each."""
    frames = np.random.default_rng(1).integers(0, 256, (1, 480, 640, 3), dtype=np.uint8)
    rows = []
    for placement in (["cpu"] if args.llava_cpu else []) + ["offload"]:
        if time.perf_counter() - started > args.budget_s:
            rows.append({"placement": placement, "skipped": "time budget"})
            continue
        rows.append(memory_option(release.model, release.device, placement, frames, _texts(1), 1 if args.tiny else 3))
    return rows


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    from ivm_ros.models.base import resolve_device

    device = resolve_device(args.device if args.device != "auto" or not args.tiny else "cpu")
    cuda = device.type == "cuda"
    if not args.tiny and not cuda:
        return _no_cuda(args)
    iters = args.iters or (10 if args.tiny else 20)
    batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name(device) if cuda else "cpu",
        "size": "tiny" if args.tiny else "full",
        "frame": "640x480",
        "engine_dtype": "bfloat16" if cuda else "float32",
        "torch": torch.__version__,
    }
    peak = next((v for k, v in BF16_PEAK.items() if k in str(results["device"])), None)
    base = _base_model(args, device)
    agree_frames = np.random.default_rng(2).integers(0, 256, (4, 480, 640, 3), dtype=np.uint8)
    results["agreement"], engine, release = precision_agreement(base, device, agree_frames, _texts(4))
    if args.compile:
        engine.model.image_encoder = torch.compile(engine.model.image_encoder, dynamic=False)  # type: ignore
    if cuda:
        release.model.to("cpu")  # off the GPU while the engine is timed, so its peak is its own
    rows = _engine_cases(args, engine, iters, batches, peak)
    engine.close()
    del engine
    if cuda:
        torch.cuda.empty_cache()
        release.model.to(device)
    if not args.no_reference:
        _reference_cases(args, release, max(2, iters // 2), rows)
    results["cases"] = [r for *_, r in rows]
    if not args.no_memory_options:
        _optional(results, "memory_options", started, args.budget_s, lambda: _memory_options(args, release, started))
    results["seconds"] = time.perf_counter() - started
    _print_results(results, args.tiny)
    if args.json:
        print(json.dumps(results))
    return 0


def _base_model(args: argparse.Namespace, device: torch.device):
    """fp32 random weights, LoRA unmerged: tiny on the CPU or full size on ``device``."""
    from ivm_ros.models.ivm.tiny import tiny_model

    return tiny_model().to(device) if args.tiny else full_size_model(device, torch.float32)
