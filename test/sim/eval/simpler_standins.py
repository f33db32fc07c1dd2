"""Stand-ins for ``simpler-eval`` tests on SimplerEnvDouble (named as such): a policy whose success depends on the
episode and on what it sees, and a predictor that keeps the double's source object. Importable as
``simpler_standins:...`` by node processes when this folder is on PYTHONPATH."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from ivm_ros_sim.simpler import double as D

from ivm_ros.models.base import MaskPredictor
from ivm_ros.policies.base import Observation, Policy, PolicyConfig

SOURCE_RGB = np.array((230, 120, 30))  # how SimplerEnvDouble draws the source object


@dataclasses.dataclass
class PlusXConfig(PolicyConfig):
    speed: float = 0.004  # m of +x per step at the image's centre column, doubled on a masked view


class PlusXPolicyStandIn(Policy):
    """Moves +x (SimplerEnvDouble succeeds after 0.05 m) by ``speed * (0.5 + u)``, ``u`` the source object's column
    in the image as a fraction of its width (so the episode, which places the object, decides how fast), twice that
    when most of the view is white (masked: the background overlaid); gripper open."""

    Config = PlusXConfig

    def reset(self, instruction: str) -> None:
        self.instruction = instruction

    def act(self, obs: Observation) -> np.ndarray:
        img = obs.image_primary.astype(np.int32)
        cols = np.nonzero(np.all(np.abs(img - SOURCE_RGB) < 12, axis=-1))[1]
        u = cols.mean() / img.shape[1] if cols.size else 0.5
        masked = np.all(img > 245, axis=-1).mean() > 0.5
        dx = self.config.speed * (0.5 + u) * (2.0 if masked else 1.0)
        return np.array([[dx, 0, 0, 0, 0, 0, 1.0]], np.float32)


def plus_x_steps(episode: int, masked: bool, width: int = 64, speed: float = 0.004) -> int:
    """Steps :class:`PlusXPolicyStandIn` needs in SimplerEnvDouble (default 48x64 camera) for ``episode``."""
    side = max(2, min(48, width) // 6)
    u = ((episode % 4) * width // 8 + width // 16 + (side - 1) / 2) / width
    dx = speed * (0.5 + u) * (2.0 if masked else 1.0)
    return int(np.ceil(D.SUCCESS_DISTANCE / dx - 1e-9))


class SourcePredictorStandIn(MaskPredictor):
    """Probability 1 on the double's source-object colour, 0 elsewhere (a predictor that runs in masking_node)."""

    def predict(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        diff = (images.to(torch.int32) - torch.as_tensor(SOURCE_RGB, dtype=torch.int32)).abs()
        return (diff < 12).all(-1).float()
