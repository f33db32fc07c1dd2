"""Where IVM's parts live, for GPUs with less memory than the whole model needs (~16 GB in 16-bit).

``llava_placement``: ``device`` (everything on the predictor's device), ``cpu`` (the frozen LLaVA runs on the
CPU; SAM and the decoder on the GPU), ``offload`` (LLaVA's weights stay in CPU memory and accelerate's
``cpu_offload`` streams them to the GPU layer by layer on every call, as the release's ``low_gpu_memory``).
``llava_quantization``: ``none``, ``8bit`` or ``4bit`` (NF4) LLaVA weights through bitsandbytes, on CUDA.
The GPU memory each needs is in docs/ivm_memory_and_precision.md (estimated; measured by
``ivm-ros bench ivm --full``).
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from ivm_ros.models.ivm.model import IVMModel

LLAVA_PLACEMENTS = ("device", "cpu", "offload")
QUANTIZATIONS = ("none", "8bit", "4bit")


def check_memory_settings(placement: str, quantization: str, device: torch.device) -> None:
    """Raises ValueError for an unknown or impossible combination (quantization needs CUDA and LLaVA on it)."""
    if placement not in LLAVA_PLACEMENTS:
        raise ValueError(f"IVM llava_placement must be one of {LLAVA_PLACEMENTS}, got {placement!r}")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"IVM llava_quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if quantization != "none" and device.type != "cuda":
        raise ValueError(f"IVM llava_quantization {quantization!r} needs a CUDA device (bitsandbytes), got {device}")
    if quantization != "none" and placement != "device":
        raise ValueError(
            f"IVM llava_quantization {quantization!r} keeps LLaVA on the GPU: use llava_placement 'device', "
            f"not {placement!r}"
        )


def bitsandbytes_config(quantization: str, compute_dtype: torch.dtype):
    """transformers' ``BitsAndBytesConfig`` for ``8bit`` / ``4bit`` (NF4, double quantization), or
    ModuleNotFoundError naming the package when bitsandbytes is not installed."""
    if quantization not in QUANTIZATIONS[1:]:
        raise ValueError(f"quantization must be '8bit' or '4bit', got {quantization!r}")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModuleNotFoundError(
            f"IVM llava_quantization {quantization!r} needs the bitsandbytes package (CUDA only): "
            "pip install bitsandbytes; or set llava_quantization: none",
            name="bitsandbytes",
        )
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def is_quantized(module: nn.Module) -> bool:
    """True for a transformers model loaded through bitsandbytes."""
    return bool(getattr(module, "is_loaded_in_8bit", False) or getattr(module, "is_loaded_in_4bit", False))


def move_heads(model: IVMModel, device: torch.device) -> None:
    """Moves everything but LLaVA (SAM, decoder, text_proj, the pre-processing buffers) to ``device``."""
    for part in (model.image_encoder, model.mask_decoder, model.prompt_encoder.text_proj):
        part.to(device)
    for name, buf in list(model.named_buffers(recurse=False)):
        setattr(model, name, buf.to(device))


def place_model(model: IVMModel, device: torch.device, placement: str = "device") -> IVMModel:
    """Moves SAM, the decoder, text_proj and the pre-processing buffers to ``device`` and LLaVA as ``placement``
    says (a quantized LLaVA stays where bitsandbytes put it). Call after LoRA is merged or loaded: an offloaded
    LLaVA's parameters become meta tensors backed by a CPU copy. Returns ``model``."""
    move_heads(model, device)
    encoder = model.prompt_encoder
    llava = encoder.llava
    if is_quantized(llava):
        encoder.input_device = next(llava.parameters()).device
    elif placement == "device":
        llava.to(device)
        encoder.input_device = None
    elif placement == "cpu":
        llava.to("cpu")
        encoder.input_device = torch.device("cpu")
    elif placement == "offload":
        from accelerate import cpu_offload

        cpu_offload(llava.to("cpu"), execution_device=device)
        encoder.input_device = device
    else:
        raise ValueError(f"IVM llava_placement must be one of {LLAVA_PLACEMENTS}, got {placement!r}")
    return model
