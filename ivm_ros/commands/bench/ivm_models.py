"""Models and comparisons for ``ivm-ros bench ivm``: random IVM-V1.0 at full size, precision agreement, and
the LLaVA placements that save GPU memory. Random weights throughout (nothing is downloaded)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from ivm_ros.models.ivm.model import ARCHS, IVMModel
from ivm_ros.models.ivm.precision import resolve_precision
from ivm_ros.models.ivm.predictor import IVMConfig, IVMPredictor

#: Std of the random LoRA B matrices at full size (peft starts B at zero, which would hide LoRA entirely).
#: An assumption, not the release's values: it decides how much a bf16 merge drops (``lora_merge``).
LORA_B_STD = 1e-3


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
    model = model.to(dtype).eval().requires_grad_(False)
    with torch.no_grad():
        gen = torch.Generator(device).manual_seed(0)
        for name, p in model.named_parameters():
            if ".lora_B" in name:
                p.normal_(0.0, LORA_B_STD, generator=gen)
    return model


def lora_merge_loss(model: IVMModel, dtype: torch.dtype = torch.bfloat16) -> dict[str, float]:
    """Of the LoRA updates of an unmerged fp32 model: the fraction of weight elements a merge into ``dtype``
    leaves unchanged (update below half a step), and the relative error of the merged update (rms)."""
    lost = total = 0
    err2 = ref2 = 0.0
    for module in model.prompt_encoder.llava.modules():
        if not hasattr(module, "lora_A") or "default" not in getattr(module, "lora_A", {}):
            continue
        w = module.base_layer.weight
        delta = module.get_delta_weight("default").float()
        merged = (w.float() + delta).to(dtype).float() - w.to(dtype).float()
        lost += int(((merged == 0) & (delta != 0)).sum())
        total += delta.numel()
        err2 += float(((merged - delta) ** 2).sum())
        ref2 += float((delta**2).sum())
    return {"elements_unchanged": lost / max(total, 1), "update_rel_rms_error": math.sqrt(err2 / max(ref2, 1e-30))}


def _compare(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Probabilities a vs b: max and mean |diff|, and agreement of the binary masks at 0.1 and 0.5."""
    a, b = a.float().cpu(), b.float().cpu()
    out = {"max_abs": float((a - b).abs().max()), "mean_abs": float((a - b).abs().mean())}
    for t in (0.1, 0.5):
        out[f"mask_agree_{t}"] = float(((a > t) == (b > t)).float().mean())
    return out


def precision_agreement(
    base: IVMModel, device: torch.device, frames: np.ndarray, texts: Sequence[str]
) -> tuple[dict, IVMPredictor, IVMPredictor]:
    """Runs fp32, release and bf16 on the same random weights (``base``: fp32, LoRA unmerged; consumed).

    Returns (agreement table, the engine predictor at ``auto`` precision, the release-precision predictor).
    Left padding for all, so only precision differs.
    """
    images = torch.from_numpy(frames)
    t0 = time.perf_counter()
    probs = {"fp32": IVMPredictor(_cfg(device, "fp32", merge_lora=False), model=base).predict(images, texts)}
    merge = lora_merge_loss(base)
    release = IVMPredictor(_cfg(device, "release"), model=copy.deepcopy(base))
    probs["release"] = release.predict(images, texts)
    if resolve_precision("auto", device).name == "bf16":  # CUDA: the engine is bf16
        engine = IVMPredictor(_cfg(device, "auto"), model=base)
        probs["bf16"] = engine.predict(images, texts)
    else:
        probs["bf16"] = IVMPredictor(_cfg(device, "bf16"), model=copy.deepcopy(base)).predict(images, texts)
        engine = IVMPredictor(_cfg(device, "auto"), model=base)
    table = {
        "frames": len(texts),
        "bf16_vs_fp32": _compare(probs["bf16"], probs["fp32"]),
        "release_vs_fp32": _compare(probs["release"], probs["fp32"]),
        "bf16_vs_release": _compare(probs["bf16"], probs["release"]),
        "lora_merge_bf16": merge,
        "seconds": time.perf_counter() - t0,
    }
    return table, engine, release


def _cfg(device: torch.device, precision: str, **kw) -> IVMConfig:
    return IVMConfig(device=str(device), precision=precision, batch_size=4, **kw)


def memory_option(
    model: IVMModel, device: torch.device, placement: str, frames: np.ndarray, texts: Sequence[str], iters: int
) -> dict:
    """Times ``placement`` (bf16, LLaVA on the CPU or offloaded) on one frame; peak GPU memory when on CUDA."""
    cuda = device.type == "cuda"
    pred = IVMPredictor(IVMConfig(device=str(device), precision="bf16", llava_placement=placement), model=model)
    if cuda:  # after placing: the peak is what running needs, not the cast on the way
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    images = torch.from_numpy(frames[:1])
    pred.predict(images, texts[:1])  # warm-up (and, offloaded, the first copy of every layer)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        pred.predict(images, texts[:1])
        if cuda:
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
    row = {"placement": placement, "precision": "bf16", "batch": 1, "p50_ms": float(np.median(times))}
    if cuda:
        row["peak_gpu_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row
