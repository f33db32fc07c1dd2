"""The ``embedded`` policy: the JAX/Flax behaviour-cloned policy that ships in this package.

Chain: :class:`EmbeddedModelPolicy` (window-2 history, one (chunk, 7) prediction per call) -> temporal
ensembling (or receding horizon, or the whole chunk) -> sticky gripper, as the Octo adapter runs Octo.
Needs the observation's ``proprio``: the proprio vector of the checkpoint's robot
(:mod:`~ivm_ros.policies.embedded.robots`): CALVIN's ``robot_obs`` (15,) (sim_node ``~/robot_obs``) or the
WidowX vector (8,) (:class:`~ivm_ros_sim.simpler.env.Frame` ``proprio``), and the wrist image unless the arch has
no second camera (``gripper_size`` 0). The instruction encoder is the lite model's MiniLM (torch, imported on
construction).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ivm_ros.policies.base import Observation, Policy, PolicyConfig, ProprioSpec
from ivm_ros.policies.embedded import checkpoint
from ivm_ros.policies.embedded.model import jitted_apply
from ivm_ros.policies.embedded.robots import robot
from ivm_ros.policies.wrappers import ExecutedPolicy, History, check_execution, execution_chain


@dataclasses.dataclass
class EmbeddedConfig(PolicyConfig):
    #: shipped: masked/raw (6 tasks, lite-masked or raw frames), calvin_masked/calvin_raw (34 tasks),
    #: widowx_masked/widowx_raw (SimplerEnv WidowX; masked on ground-truth masks: simulation only)
    variant: str = "masked"
    checkpoint: str = ""  # a `sim-train-policy` .msgpack file; replaces `variant` when set
    execution: str = "ensemble"  # ensemble | receding | chunk
    exp_weight: float = 0.0  # temporal ensembling weight exp(-exp_weight * age rank); 0 = mean
    execute_steps: int = 2  # receding horizon: actions executed per model call
    gripper_threshold: float = 0.5  # P(open) above which the gripper opens
    gripper_repeat: int = 1
    warmup: bool = True  # compile the JAX function at construction, not on the first frame

    def __post_init__(self) -> None:
        check_execution(self.execution)
        if not self.checkpoint and self.variant not in checkpoint.SHIPPED:
            raise ValueError(f"variant must be one of {sorted(checkpoint.SHIPPED)}, got {self.variant!r}")


class EmbeddedModelPolicy(Policy):
    """Raw chunks: (chunk, 7) float32, motion in the robot's action units (CALVIN: [-1, 1] relative; WidowX: m and
    rad per step, the network's [-1, 1] times the robot's action scale), gripper as P(open). Motion dims the
    checkpoint marks held (``motion_held``: the demonstrations never moved them) are its ``motion_value``."""

    Config = EmbeddedConfig

    def __init__(self, config: EmbeddedConfig) -> None:
        super().__init__(config)
        import cv2

        from ivm_ros.models.lite.text import InstructionEncoder

        self._cv2 = cv2
        self.path = config.checkpoint or str(checkpoint.SHIPPED[config.variant])
        self.model, self.params, self.norm, self.info = checkpoint.load(self.path)
        self.arch = self.model.arch
        self.text_encoder = InstructionEncoder()
        self.history = History(self.arch.window)
        self._text: np.ndarray | None = None
        self._apply = jitted_apply(self.arch)  # shared per arch: compiled once per process
        self.robot = robot(self.arch.robot)
        self._scale = np.asarray(self.robot.action_scale, np.float32)
        # motion dims the demonstrations never moved (train.held_motion; absent in older files: none)
        self._held = self.norm.get("motion_held", np.zeros(6, np.float32)) > 0.5
        self._held_value = self.norm.get("motion_value", np.zeros(6, np.float32))

    def reset(self, instruction: str) -> None:
        self._text = self.text_encoder([instruction]).numpy()
        self.history.reset()

    def act(self, obs: Observation) -> np.ndarray:
        if self._text is None:
            raise RuntimeError("reset(instruction) must come before act()")
        proprio = self._proprio(obs)
        items = {"static": self._resize(obs.image_primary, self.arch.static_size)}
        if self.arch.gripper_size > 0:
            items["gripper"] = self._resize(obs.image_wrist, self.arch.gripper_size)
        stacked, _ = self.history.push(items)
        gripper = stacked.get("gripper", np.zeros((self.arch.window, 0, 0, 3), np.uint8))
        p = (proprio[list(self.arch.proprio_index)] - self.norm["proprio_mean"]) / self.norm["proprio_std"]
        motion, grip = self._apply(self.params, stacked["static"][None], gripper[None], p[None], self._text)
        prob_open = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(grip[0], np.float32)))  # sigmoid without overflow
        motion = np.asarray(motion[0], np.float32) * self._scale
        motion[:, self._held] = self._held_value[self._held]
        return np.concatenate([motion, prob_open[:, None]], axis=1)

    def _proprio(self, obs: Observation) -> np.ndarray:
        """The observation's proprio (obs_dim,) float32; ValueError when it or a needed wrist image is missing."""
        n = self.robot.obs_dim
        if obs.proprio is None or (self.arch.gripper_size > 0 and obs.image_wrist is None):
            need = "the wrist image and proprio" if self.arch.gripper_size > 0 else "proprio"
            raise ValueError(f"the embedded policy needs {need} ({self.robot.name}: {n} values)")
        proprio = np.asarray(obs.proprio, np.float32).reshape(-1)
        if proprio.shape != (n,):
            raise ValueError(f"proprio must be the {self.robot.name} proprio vector ({n},), got {proprio.shape}")
        return proprio

    def proprio_spec(self) -> ProprioSpec:
        """The robot's proprio vector (:mod:`~ivm_ros.policies.embedded.robots`): tcp xyz within 10 standard
        deviations of the training mean (the checkpoint's normalisation statistics), euler angles within
        +-(pi + 0.5), the gripper and joints within the robot's fixed ranges, the last gripper action within +-1.5."""
        low, high = self.robot.proprio_range(self.norm["proprio_mean"], self.norm["proprio_std"],
                                             self.arch.proprio_index)
        return ProprioSpec(self.robot.obs_dim, low, high)

    def _resize(self, img: np.ndarray, size: int) -> np.ndarray:
        if img.shape[:2] == (size, size):
            return img
        return self._cv2.resize(img, (size, size), interpolation=self._cv2.INTER_AREA)

    def close(self) -> None:
        self.params = None
        self.text_encoder.close()

    def describe(self) -> dict[str, Any]:
        """What it is; ``wrist_masking`` (only when not none) says its gripper camera must be masked too."""
        extra = {k: self.info[k] for k in ("lite", "wrist_masking") if self.info.get(k) not in (None, "", "none")}
        return {"policy": "embedded", "checkpoint": self.path, "masking": self.info.get("masking", "?"), **extra}


class EmbeddedPolicy(ExecutedPolicy):
    """The embedded policy as executed (:func:`~ivm_ros.policies.wrappers.execution_chain`): the plan from now
    on, (k, 7) with gripper +1 open / -1 closed: the temporal ensemble for each of the next ``chunk`` steps
    (default), the rest of the receding-horizon chunk, or the whole chunk (``execution: chunk``). Lockstep
    callers execute row 0; a faster controller executes the following rows until the next frame."""

    Config = EmbeddedConfig

    def __init__(self, config: EmbeddedConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.core = EmbeddedModelPolicy(cfg)
        self.chain = execution_chain(self.core, cfg.execution, self.core.arch.chunk, cfg.exp_weight,
                                     cfg.execute_steps, cfg.gripper_threshold, cfg.gripper_repeat)
        if cfg.warmup:
            a = self.core.arch
            wrist = np.zeros((a.gripper_size, a.gripper_size, 3), np.uint8) if a.gripper_size > 0 else None
            self.warm_up(Observation(np.zeros((a.static_size, a.static_size, 3), np.uint8), wrist,
                                     np.zeros(self.core.robot.obs_dim)))

    def describe(self) -> dict[str, Any]:
        return {**self.core.describe(), "execution": self.config.execution}

    def proprio_spec(self) -> ProprioSpec:
        return self.core.proprio_spec()
