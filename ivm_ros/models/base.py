"""The one interface every mask predictor implements.

A predictor maps RGB frames and instructions to per-pixel relevance probabilities. It knows nothing of
ROS and nothing of how the mask is applied (that is :mod:`ivm_ros.masking`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import torch


@dataclasses.dataclass
class PredictorConfig:
    """Base for a predictor's settings. Subclasses add typed fields with defaults.

    Every field becomes a ROS parameter ``model_config.<field>`` of the masking node, so keep the types to
    bool, int, float, str and lists of those.
    """

    device: str = "cpu"  # "cpu", "cuda", "cuda:1" or "auto" (CUDA when available)


def resolve_device(name: str) -> torch.device:
    """Maps a device setting ("auto", "cpu", "cuda:0" ...) to a torch.device, with a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available (torch {torch.__version__})")
    return device


class MaskPredictor(abc.ABC):
    """Predicts which pixels matter for an instruction.

    Subclasses set ``Config`` to their :class:`PredictorConfig` subclass and implement :meth:`predict`.
    Construction loads weights; :meth:`close` frees them (the masking node calls it on cleanup).
    """

    Config: ClassVar[type[PredictorConfig]] = PredictorConfig
    #: Resolution (H, W) the predictor works at internally, if fixed; informational.
    native_size: ClassVar[tuple[int, int] | None] = None

    def __init__(self, config: PredictorConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()
        self.device = resolve_device(self.config.device)

    @abc.abstractmethod
    def predict(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        """Relevance probabilities for a batch.

        Args:
            images: (B, H, W, 3) uint8 RGB, on any device (the predictor moves it to its own).
            instructions: B instruction strings, one per image.

        Returns:
            (B, h, w) float32 probabilities in [0, 1] on ``self.device``. (h, w) is (H, W) or any
            lower resolution of the same aspect; :func:`ivm_ros.masking.apply_mask` resizes bilinearly.
        """

    def close(self) -> None:
        """Releases weights and device memory. Safe to call twice."""

    def describe(self) -> dict[str, Any]:
        """Short facts for diagnostics (name, device, settings)."""
        return {"predictor": type(self).__name__, "device": str(self.device)}
