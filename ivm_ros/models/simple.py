"""Two predictors that need no weights.

- ``keep_all``: every pixel relevant (probability 1). The "masking off" baseline, and the reference
  predictor for measuring the node's own overhead.
- ``color_keyword``: a hand-written heuristic, not a learned model. It looks for colour words in the
  instruction ("red", "green", ...) and marks pixels whose hue and saturation match them. Useful before a
  trained model is installed and as a sanity baseline; it knows nothing about objects or verbs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import torch

from ivm_ros.models.base import MaskPredictor, PredictorConfig


class KeepAllPredictor(MaskPredictor):
    """Probability 1 everywhere: the masked observation equals the input."""

    def predict(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        b, h, w, _ = images.shape
        return torch.ones((b, h, w), dtype=torch.float32, device=self.device)


#: Hue ranges in degrees [0, 360) for colour words; red wraps around 0.
COLOR_HUES: dict[str, tuple[tuple[float, float], ...]] = {
    "red": ((345.0, 360.0), (0.0, 15.0)),
    "orange": ((15.0, 40.0),),
    "yellow": ((40.0, 70.0),),
    "green": ((70.0, 170.0),),
    "blue": ((190.0, 255.0),),
    "purple": ((255.0, 290.0),),
    "pink": ((290.0, 345.0),),
}


@dataclasses.dataclass
class ColorKeywordConfig(PredictorConfig):
    min_saturation: float = 0.35  # HSV saturation in [0, 1] below which a pixel counts as grey
    min_value: float = 0.15  # HSV value in [0, 1] below which a pixel counts as black
    softness: float = 0.08  # width of the soft edge of the saturation test, in saturation units


class ColorKeywordPredictor(MaskPredictor):
    """Marks pixels whose colour is named in the instruction; no colour word -> all zeros (fail-safe)."""

    Config = ColorKeywordConfig

    def predict(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        cfg: ColorKeywordConfig = self.config  # type: ignore[assignment]
        rgb = images.to(self.device, torch.float32) / 255.0
        hue, sat, val = _rgb_to_hsv(rgb)
        out = torch.zeros(rgb.shape[:3], dtype=torch.float32, device=self.device)
        for i, text in enumerate(instructions):
            words = set(re.findall(r"[a-z]+", text.lower()))
            hue_hit = torch.zeros_like(hue[i], dtype=torch.bool)
            for word in words & COLOR_HUES.keys():
                for lo, hi in COLOR_HUES[word]:
                    hue_hit |= (hue[i] >= lo) & (hue[i] < hi)
            chroma = torch.clamp((sat[i] - cfg.min_saturation) / cfg.softness + 0.5, 0.0, 1.0)
            out[i] = hue_hit.float() * chroma * (val[i] >= cfg.min_value).float()
        return out


def _rgb_to_hsv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, H, W, 3) float RGB in [0, 1] -> hue in degrees [0, 360), saturation and value in [0, 1]."""
    r, g, b = rgb.unbind(-1)
    cmax, _ = rgb.max(-1)
    cmin, _ = rgb.min(-1)
    delta = cmax - cmin
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(
        cmax == r, ((g - b) / safe) % 6.0, torch.where(cmax == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    hue = torch.where(delta > 0, hue * 60.0, torch.zeros_like(hue))
    sat = torch.where(cmax > 0, delta / torch.where(cmax > 0, cmax, torch.ones_like(cmax)), torch.zeros_like(cmax))
    return hue, sat, cmax
