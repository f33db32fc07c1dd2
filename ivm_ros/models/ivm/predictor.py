"""The ``ivm`` mask predictor: faithful IVM-V1.0 behind :class:`~ivm_ros.models.base.MaskPredictor`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from ivm_ros.models.base import MaskPredictor, PredictorConfig
from ivm_ros.models.ivm.checkpoint import LoadReport, load_converted, load_release, require_file
from ivm_ros.models.ivm.model import ARCHS, IVMModel

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclasses.dataclass
class IVMConfig(PredictorConfig):
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1"
    sam_checkpoint: str = ""  # sam_vit_h_4b8939.pth (only image_encoder.* is used)
    llava_path: str = ""  # llava-1.5-7b-hf folder (config.json, tokenizer, safetensors)
    ivm_checkpoint: str = ""  # IVM-V1.0.bin (LoRA + text_proj + mask decoder, release key names)
    converted: str = ""  # one .safetensors from `ivm-ros ivm-convert`; replaces the three paths when set
    arch: str = "ivm-v1.0"  # "ivm-v1.0" or "tiny" (tests); ignored with `converted`
    dtype: str = "auto"  # "auto" = bfloat16 on CUDA, float32 on CPU; or float32 / float16 / bfloat16
    batch_size: int = 4  # frames per forward pass; larger batches are split
    merge_lora: bool = True  # fold LoRA into q_proj/v_proj after loading (same result, faster)
    compile: bool = False  # torch.compile the SAM image encoder (worth it on CUDA, slow to start)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """ "auto" -> bf16 on CUDA, fp32 elsewhere; otherwise one of DTYPES, with a clear error."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in DTYPES:
        raise ValueError(f"IVM dtype must be 'auto' or one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


class IVMPredictor(MaskPredictor):
    """SAM ViT-H + LLaVA-1.5-7B (LoRA) + conditioned decoder; probabilities at the input resolution.

    A frame whose probabilities come out non-finite (fp16 overflow, corrupt weights) is replaced by all ones,
    i.e. "keep the whole image", and counted in ``describe()["fail_safe_frames"]``.
    """

    Config = IVMConfig

    def __init__(self, config: IVMConfig | None = None, *, model: IVMModel | None = None) -> None:
        super().__init__(config)
        cfg: IVMConfig = self.config  # type: ignore[assignment]
        if cfg.batch_size < 1:
            raise ValueError(f"IVM batch_size must be >= 1, got {cfg.batch_size}")
        self.dtype = resolve_dtype(cfg.dtype, self.device)
        self.report = LoadReport()
        self.fail_safe_frames = 0
        if model is None:
            model = self._load(cfg)
        self.model: IVMModel | None = model.to(self.device).eval()
        if cfg.merge_lora:
            self.model.prompt_encoder.merge_lora()
        if cfg.compile:
            self.model.image_encoder = torch.compile(self.model.image_encoder, dynamic=False)  # type: ignore

    def _load(self, cfg: IVMConfig) -> IVMModel:
        if cfg.converted:
            model, self.report = load_converted(cfg.converted, dtype=self.dtype, device=self.device)
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
        model, self.report = load_release(
            cfg.sam_checkpoint,
            cfg.llava_path,
            cfg.ivm_checkpoint,
            arch=cfg.arch,
            dtype=self.dtype,
            device=self.device,
        )
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
        return {
            **super().describe(),
            "dtype": str(self.dtype).replace("torch.", ""),
            "arch": cfg.arch,
            "batch_size": cfg.batch_size,
            "fail_safe_frames": self.fail_safe_frames,
            "weights": self.report.summary().splitlines()[0],
        }
