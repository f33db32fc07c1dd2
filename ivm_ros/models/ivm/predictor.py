"""The ``ivm`` mask predictor: faithful IVM-V1.0 behind :class:`~ivm_ros.models.base.MaskPredictor`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from ivm_ros.models.base import MaskPredictor, PredictorConfig
from ivm_ros.models.ivm.checkpoint import LoadReport, load_converted, load_release, require_file
from ivm_ros.models.ivm.memory import check_memory_settings, is_quantized, place_model
from ivm_ros.models.ivm.model import ARCHS, IVMModel
from ivm_ros.models.ivm.precision import DTYPE_NAMES, PRECISIONS, apply_precision, resolve_precision
from ivm_ros.models.ivm.prompt_encoder import PADDING_SIDES


@dataclasses.dataclass
class IVMConfig(PredictorConfig):
    """Settings of the ``ivm`` predictor; :meth:`validate` (run on construction) raises ValueError on a bad or
    conflicting value and applies ``dtype`` (the earlier name of ``precision``) and ``release_compat``."""

    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1"
    sam_checkpoint: str = ""  # sam_vit_h_4b8939.pth (only image_encoder.* is used)
    llava_path: str = ""  # llava-1.5-7b-hf folder (config.json, tokenizer, safetensors)
    ivm_checkpoint: str = ""  # IVM-V1.0.bin (LoRA + text_proj + mask decoder, release key names)
    converted: str = ""  # one .safetensors from `ivm-ros ivm-convert`; replaces the three paths when set
    arch: str = "ivm-v1.0"  # "ivm-v1.0" or "tiny" (tests); ignored with `converted`
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp16 | fp32 | release (precision.py)
    dtype: str = "auto"  # earlier name of precision: float32 | float16 | bfloat16; "auto" leaves precision
    batch_size: int = 4  # frames per forward pass; larger batches are split
    merge_lora: bool = True  # bf16/fp16/fp32: fold LoRA into q_proj/v_proj (faster); release never merges
    padding_side: str = "auto"  # auto (left; the tokenizer's own with release_compat) | left | right | tokenizer
    llava_placement: str = "device"  # device | cpu (LLaVA runs on the CPU) | offload (accelerate, memory.py)
    llava_quantization: str = "none"  # none | 8bit | 4bit: LLaVA through bitsandbytes (CUDA)
    release_compat: bool = False  # run as released: precision release and the tokenizer's padding side
    compile: bool = False  # torch.compile the SAM image encoder (worth it on CUDA, slow to start)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.dtype not in DTYPE_NAMES:
            raise ValueError(f"IVM dtype must be one of {sorted(DTYPE_NAMES)}, got {self.dtype!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"IVM precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.dtype != "auto":
            if self.precision not in ("auto", DTYPE_NAMES[self.dtype]):
                raise ValueError(f"IVM dtype {self.dtype!r} contradicts precision {self.precision!r}: set only one")
            self.precision = DTYPE_NAMES[self.dtype]
        if self.release_compat:
            if self.precision not in ("auto", "release") or self.padding_side not in ("auto", "tokenizer"):
                raise ValueError(
                    "IVM release_compat sets precision 'release' and padding_side 'tokenizer'; it contradicts "
                    f"precision {self.precision!r} / padding_side {self.padding_side!r}: set only one"
                )
            self.precision, self.padding_side = "release", "tokenizer"
        if self.padding_side not in ("auto", *PADDING_SIDES):
            raise ValueError(f"IVM padding_side must be one of {('auto', *PADDING_SIDES)}, got {self.padding_side!r}")
        if self.batch_size < 1:
            raise ValueError(f"IVM batch_size must be >= 1, got {self.batch_size}")


class IVMPredictor(MaskPredictor):
    """SAM ViT-H + LLaVA-1.5-7B (LoRA) + conditioned decoder; probabilities at the input resolution.

    A frame whose probabilities come out non-finite (fp16 overflow, corrupt weights) is replaced by all ones,
    i.e. "keep the whole image", and counted in ``describe()["fail_safe_frames"]``. A ``model`` passed in (tests,
    benches) is cast, merged and placed as the settings say, like a loaded one.
    """

    Config = IVMConfig

    def __init__(self, config: IVMConfig | None = None, *, model: IVMModel | None = None) -> None:
        super().__init__(config)
        cfg: IVMConfig = self.config  # type: ignore[assignment]
        check_memory_settings(cfg.llava_placement, cfg.llava_quantization, self.device)
        quantized = cfg.llava_quantization != "none"
        self.precision = resolve_precision(cfg.precision, self.device, cfg.merge_lora and not quantized)
        self.dtype = self.precision.dtype
        self.report = LoadReport()
        self.fail_safe_frames = 0
        if model is None:
            model = self._load(cfg)
        apply_precision(model, self.precision, cast_llava=not is_quantized(model.prompt_encoder.llava))
        model.prompt_encoder.padding_side = "left" if cfg.padding_side == "auto" else cfg.padding_side
        self.model: IVMModel | None = place_model(model.eval(), self.device, cfg.llava_placement)
        if cfg.compile:
            self.model.image_encoder = torch.compile(self.model.image_encoder, dynamic=False)  # type: ignore

    def _load(self, cfg: IVMConfig) -> IVMModel:
        kwargs = {
            "dtype": self.precision.dtype,
            "llava_dtype": self.precision.llava_dtype,
            "device": self.device,
            "llava_device": self.device if cfg.llava_placement == "device" else torch.device("cpu"),
            "quantization": cfg.llava_quantization,
        }
        if cfg.converted:
            model, self.report = load_converted(cfg.converted, **kwargs)
            return model
        if cfg.arch not in ARCHS:
            raise ValueError(f"IVM arch must be one of {sorted(ARCHS)}, got {cfg.arch!r}")
        # Check every path before the expensive part, so one error names each missing file at once.
        problems = []
        for what, path, is_dir in (
            ("sam_checkpoint", cfg.sam_checkpoint, False),
            ("llava_path", cfg.llava_path, True),
            ("ivm_checkpoint", cfg.ivm_checkpoint, False),
        ):
            try:
                require_file(path, what, directory=is_dir)
            except FileNotFoundError as exc:
                problems.append(str(exc))
        if problems:
            raise FileNotFoundError("; ".join(problems) + " (or set `converted` to one ivm-convert file)")
        paths = (cfg.sam_checkpoint, cfg.llava_path, cfg.ivm_checkpoint)
        model, self.report = load_release(*paths, arch=cfg.arch, **kwargs)
        return model

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB + B instructions -> (B, H, W) float32 probabilities on ``self.device``."""
        if self.model is None:
            raise RuntimeError("IVMPredictor was closed")
        if len(instructions) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(instructions)} instructions")
        step = self.config.batch_size  # type: ignore[attr-defined]
        outs = []
        for i in range(0, images.shape[0], step):
            probs = self.model.predict_proba(images[i : i + step], list(instructions[i : i + step]))
            bad = ~torch.isfinite(probs).flatten(1).all(dim=1)
            if bool(bad.any()):
                self.fail_safe_frames += int(bad.sum())
                probs[bad] = 1.0
            outs.append(probs)
        return torch.cat(outs) if len(outs) > 1 else outs[0]

    def close(self) -> None:
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def describe(self) -> dict[str, Any]:
        cfg: IVMConfig = self.config  # type: ignore[assignment]
        encoder = self.model.prompt_encoder if self.model is not None else None
        return {
            **super().describe(),
            "precision": self.precision.name,
            "dtype": str(self.dtype).replace("torch.", ""),
            "llava_dtype": str(self.precision.llava_dtype).replace("torch.", ""),
            "lora_merged": bool(encoder and encoder.lora_merged),
            "padding_side": encoder.batch_padding_side if encoder else cfg.padding_side,
            "llava_placement": cfg.llava_placement,
            "llava_quantization": cfg.llava_quantization,
            "arch": cfg.arch,
            "batch_size": cfg.batch_size,
            "fail_safe_frames": self.fail_safe_frames,
            "weights": self.report.summary().splitlines()[0],
        }
