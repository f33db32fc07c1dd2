"""The one interface every action predictor (policy) implements. NumPy only: no ROS, no torch.

A policy is reset with a language instruction at the start of a task and then asked, once per observation,
for an action chunk. Actions follow the environment's convention (the simulator's and the policy node's):
7 values ``dx dy dz droll dpitch dyaw gripper``, end-effector deltas per control step in the policy's own
units (the node maps them to metres and radians), gripper > 0 open. Wrappers that add history, temporal
ensembling, receding-horizon execution or a sticky gripper are policies too (:mod:`ivm_ros.policies.wrappers`).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import numpy as np

from ivm_ros.inputs import InputRejected

ACTION_DIM = 7
ACTION_LABELS = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")


@dataclasses.dataclass(frozen=True)
class Observation:
    """One time step of what the robot sees.

    ``image_primary``: (H, W, 3) uint8 RGB, the third-person (masked) camera. ``image_wrist``: optional
    (h, w, 3) uint8 RGB gripper camera. ``proprio``: optional (P,) float32 robot state. ``stamp``: seconds,
    the frame's capture time (header stamp). ``elapsed_steps``: see below. Policies resize images themselves.
    """

    image_primary: np.ndarray
    image_wrist: np.ndarray | None = None
    proprio: np.ndarray | None = None
    stamp: float = 0.0
    #: control steps executed since the previous observation the policy acted on (1 in lockstep; more when the
    #: caller executed several actions of the returned chunk between frames); chunk wrappers age by it
    elapsed_steps: int = 1

    def __post_init__(self) -> None:
        for name in ("image_primary", "image_wrist"):
            image = getattr(self, name)
            if image is None:
                continue
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
                raise ValueError(f"{name} must be a non-empty (H, W, 3) uint8 array, got {image.dtype} {image.shape}")


@dataclasses.dataclass(frozen=True)
class ProprioSpec:
    """The robot state vector a policy expects: ``dim`` values, each within ``low[i]..high[i]`` (inclusive;
    None: no range check). What a deployment can check before the policy acts on a vector."""

    dim: int
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    def check(self, state: np.ndarray) -> None:
        """Raises :class:`~ivm_ros.inputs.InputRejected` (``proprio_size``, ``proprio_range``) unless ``state``
        (P,) fits."""
        if state.shape != (self.dim,):
            raise InputRejected("proprio_size", f"the policy expects {self.dim} proprio values, got {state.size}")
        if self.low is not None and self.high is not None:
            out = np.flatnonzero((state < self.low) | (state > self.high))
            if out.size:
                i = int(out[0])
                raise InputRejected("proprio_range", f"proprio[{i}] = {state[i]:g} outside the policy's plausible "
                                    f"range {self.low[i]:g}..{self.high[i]:g} ({out.size} value(s) out)")


@dataclasses.dataclass
class PolicyConfig:
    """Base for a policy's settings. Subclasses add typed fields with defaults.

    Every field becomes a ROS parameter ``policy_config.<field>`` of the policy node, so keep the types to
    bool, int, float, str and lists of those.
    """


class Policy(abc.ABC):
    """Maps (instruction, observations) to actions.

    Subclasses set ``Config`` to their :class:`PolicyConfig` subclass and implement :meth:`reset` and
    :meth:`act`. Construction loads weights; :meth:`close` frees them. Not thread-safe: one caller at a time.
    """

    Config: ClassVar[type[PolicyConfig]] = PolicyConfig

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @abc.abstractmethod
    def reset(self, instruction: str) -> None:
        """Starts a task: forgets history and pending actions and conditions on ``instruction``."""

    @abc.abstractmethod
    def act(self, obs: Observation) -> np.ndarray:
        """Actions for the newest observation.

        Returns (chunk, 7) float32: ``chunk`` consecutive actions to execute one per control step, starting
        now (1 for policies that return one action per call).
        """

    def close(self) -> None:
        """Releases weights and device memory. Safe to call twice."""

    def describe(self) -> dict[str, Any]:
        """Short facts for diagnostics (name, settings)."""
        return {"policy": type(self).__name__}

    def proprio_spec(self) -> ProprioSpec | None:
        """The robot state this policy expects (length, plausible range), or None when it takes none or does
        not say. Callers reject vectors that do not fit instead of acting on them."""
        return None


def check_actions(actions: Any) -> np.ndarray:
    """Validates a policy's output: returns it as a (chunk, 7) float32 array, or raises ValueError saying why
    (wrong shape, empty, NaN/inf)."""
    arr = np.asarray(actions, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] != ACTION_DIM:
        raise ValueError(f"a policy must return (chunk, {ACTION_DIM}) actions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"policy returned non-finite actions: {arr.tolist()}")
    return arr
