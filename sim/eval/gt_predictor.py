"""The ``groundtruth`` masking predictor of the evaluations: the simulator's own instruction mask (no model)."""

from __future__ import annotations

import numpy as np
import torch

from ivm_ros.models.base import MaskPredictor


class GroundTruthPredictor(MaskPredictor):
    """The upper bound of masking: the simulator's ground-truth instruction mask of the current frame, (H, W)
    bool, set in :attr:`mask` by the evaluation before each frame (CALVIN:
    :class:`~ivm_ros_sim.eval.workers.GroundTruthMasked` from :mod:`ivm_ros_sim.calvin.masks`; SimplerEnv:
    :mod:`ivm_ros_sim.eval.simpler_workers` from :mod:`ivm_ros_sim.simpler.masks`); ignores the image."""

    def __init__(self) -> None:
        super().__init__()
        self.mask: np.ndarray | None = None

    def predict(self, images: torch.Tensor, instructions: list[str]) -> torch.Tensor:
        if self.mask is None:
            raise RuntimeError("GroundTruthPredictor.mask is set by the evaluation before each frame")
        return torch.from_numpy(self.mask.astype(np.float32))[None].expand(len(instructions), -1, -1)
