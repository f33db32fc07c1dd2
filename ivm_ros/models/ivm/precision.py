"""Numeric precision of the IVM model: which dtype each part runs in and whether LoRA is folded in.

=========  ==========================================  ==========  ======================================
precision  SAM image encoder, mask decoder, text_proj   LLaVA       LoRA
=========  ==========================================  ==========  ======================================
bf16       bfloat16                                    bfloat16    merged into q/v_proj (``merge_lora``)
fp16       float16                                     float16     merged (``merge_lora``)
fp32       float32                                     float32     merged (``merge_lora``)
release    float32                                     float16     separate, float32 (as the release ran)
=========  ==========================================  ==========  ======================================

``auto`` is bf16 on CUDA and fp32 elsewhere. LoRA adapters are held in float32 until merged, so a merge rounds
``W + B @ A * alpha / r`` once into the LLaVA dtype; updates below half a bf16 step of a weight are still lost
by a bf16 merge (``merge_lora: false`` keeps them, at the cost of two small matmuls per q/v_proj).
"""

from __future__ import annotations

import dataclasses

import torch

from ivm_ros.models.ivm.model import IVMModel

PRECISIONS = ("auto", "bf16", "fp16", "fp32", "release")
#: The earlier ``dtype`` setting's names -> precision.
DTYPE_NAMES = {"auto": "auto", "bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclasses.dataclass(frozen=True)
class Precision:
    """A resolved precision: ``name`` (bf16 | fp16 | fp32 | release), the dtype of SAM, decoder and text_proj,
    LLaVA's dtype, and whether LoRA is merged."""

    name: str
    dtype: torch.dtype
    llava_dtype: torch.dtype
    merge_lora: bool


def resolve_precision(name: str, device: torch.device, merge_lora: bool = True) -> Precision:
    """A precision setting (one of PRECISIONS) for ``device`` -> :class:`Precision`; ValueError when unknown.

    ``merge_lora`` is honoured for bf16/fp16/fp32; ``release`` always keeps LoRA separate.
    """
    if name not in PRECISIONS:
        raise ValueError(f"IVM precision must be one of {PRECISIONS}, got {name!r}")
    if name == "auto":
        name = "bf16" if device.type == "cuda" else "fp32"
    if name == "release":
        return Precision("release", torch.float32, torch.float16, False)
    return Precision(name, _DTYPES[name], _DTYPES[name], merge_lora)


@torch.no_grad()
def apply_precision(model: IVMModel, precision: Precision, *, cast_llava: bool = True) -> IVMModel:
    """Casts ``model``'s parts in place as ``precision`` says and merges LoRA when it says so.

    ``cast_llava=False`` leaves LLaVA's weights as loaded (a bitsandbytes-quantized LLaVA cannot be cast); LoRA
    then stays separate too. Returns ``model``.
    """
    for part in (model.image_encoder, model.mask_decoder, model.prompt_encoder.text_proj):
        part.to(precision.dtype)
    encoder = model.prompt_encoder
    if cast_llava:
        encoder.llava.to(precision.llava_dtype)
    for name, param in encoder.model.named_parameters():
        if ".lora_" in name:
            param.data = param.data.to(torch.float32)
    if precision.merge_lora and cast_llava:
        encoder.merge_lora()
    return model
