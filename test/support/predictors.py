"""Test doubles for what a test is not about. Named for what they are."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import torch

from ivm_ros.models.base import MaskPredictor, PredictorConfig


@dataclasses.dataclass
class SlowConfig(PredictorConfig):
    delay_s: float = 0.05


class SlowCenterPredictorForTest(MaskPredictor):
    """Keeps the central quarter of the frame, after sleeping ``delay_s`` (a deliberately slow model)."""

    Config = SlowConfig

    def predict(self, images, instructions):
        time.sleep(self.config.delay_s)
        b, h, w, _ = images.shape
        out = torch.zeros((b, h, w))
        out[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1.0
        return out


class CenterPredictorForTest(SlowCenterPredictorForTest):
    """The same centre mask with no delay."""

    Config = dataclasses.make_dataclass("CenterConfig", [("delay_s", float, 0.0)], bases=(PredictorConfig,))


class FailingPredictorForTest(MaskPredictor):
    """Raises on instructions containing 'explode' (a predictor bug), otherwise keeps everything."""

    def predict(self, images, instructions):
        if any("explode" in text for text in instructions):
            raise RuntimeError("predictor failure for test")
        b, h, w, _ = images.shape
        return torch.ones((b, h, w))


class ClosingPredictorForTest(CenterPredictorForTest):
    """Records close() calls in a class-level counter."""

    closed = 0

    def close(self) -> None:
        type(self).closed += 1


class NeedsTransformersPredictorForTest(CenterPredictorForTest):
    """Imports ``transformers`` when built, as the lite and ivm predictors do (a test hides the package)."""

    def __init__(self, config: PredictorConfig | None = None) -> None:
        import transformers  # noqa: F401

        super().__init__(config)


class BrightnessCenterPredictorForTest(MaskPredictor):
    """Keeps the central quarter with probability = the frame's mean grey level / 255 (dark frames: nothing passes
    a threshold, so the frame is fail-safe)."""

    def predict(self, images, instructions):
        b, h, w, _ = images.shape
        out = torch.zeros((b, h, w))
        out[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = images.float().mean() / 255.0
        return out


class ConstantPredictorForTest(MaskPredictor):
    """Test double: the same probability ``value`` at every pixel (0.0: nothing passes, the fail-safe case)."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.value = value

    def predict(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        return torch.full(tuple(images.shape[:3]), self.value, dtype=torch.float32)
