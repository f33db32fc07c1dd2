"""Octo (github octo-models/octo, v1.5 API) behind the :class:`~ivm_ros.policies.base.Policy` interface.

Octo is not on PyPI and pins old jax/flax/tensorflow, so it runs in its own environment and is imported only
when an :class:`OctoPolicy` is constructed without a model; this module itself needs only NumPy and JAX.

What Octo's ``sample_actions`` does itself: runs the transformer on ``observations`` with their
``timestep_pad_mask``, samples the action head with the given ``rng`` (the diffusion head needs a key) and,
given ``unnormalization_statistics``, maps actions back with ``mean + std * a`` only where the statistics'
``mask`` is true (the gripper stays as predicted, in [0, 1], 1 open). What the caller does (here): resize
images (256x256 primary, 128x128 wrist), stack the history window with its pad mask (copies of the first
frame after a reset), add and remove the batch dimension, build the task once per instruction with
``create_tasks(texts=[...])``, pick the dataset's action statistics, split a fresh rng key per call, and
execute the chunk (temporal ensembling or receding horizon) with a sticky gripper.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ivm_ros.policies.base import ACTION_DIM, Observation, Policy, PolicyConfig
from ivm_ros.policies.wrappers import ExecutedPolicy, History, check_execution, execution_chain


@dataclasses.dataclass
class OctoConfig(PolicyConfig):
    """Settings of the Octo policy (each is a ``policy_config.<name>`` parameter of the policy node)."""

    #: Octo checkpoint: a local folder (config.json, example_batch.msgpack, dataset_statistics.json, orbax
    #: steps) or ``hf://<repo>`` where the hub is reachable.
    checkpoint: str = "hf://rail-berkeley/octo-small-1.5"
    step: int = -1  # checkpoint step; -1: the latest
    dataset: str = "bridge_dataset"  # whose action statistics unnormalise (ignored for single-dataset models)
    window: int = 2  # observation history (Octo 1.5: 2)
    primary_size: int = 256  # px, square
    wrist_size: int = 128  # px, square
    use_wrist: bool = False  # feed the wrist camera (the observation must carry it)
    execution: str = "ensemble"  # ensemble | receding | chunk (the whole chunk, executed by the caller)
    action_horizon: int = 4  # chunk rows ensembled (Octo 1.5 predicts 4)
    exp_weight: float = 0.0  # temporal ensembling: weight exp(-exp_weight * age rank); 0 = mean
    execute_steps: int = 4  # receding horizon: actions executed per model call
    gripper_threshold: float = 0.5  # Octo's gripper output > threshold = open
    gripper_repeat: int = 1  # consecutive requests before the gripper switches
    #: Multiplies the unnormalised deltas (x y z roll pitch yaw) into the environment's action units, e.g. 50
    #: for metres -> the simulator's 0.02 m per action unit.
    action_scale: list[float] = dataclasses.field(default_factory=lambda: [1.0] * 6)
    seed: int = 0  # first rng key; every call splits a fresh one
    warmup: bool = True  # run the model once at construction: JAX compiles there (~30 s on CPU), not on frame 1

    def __post_init__(self) -> None:
        check_execution(self.execution)
        if len(self.action_scale) != ACTION_DIM - 1:
            raise ValueError(f"action_scale needs {ACTION_DIM - 1} values (x y z roll pitch yaw), "
                             f"got {len(self.action_scale)}")
        for name in ("window", "primary_size", "wrist_size", "action_horizon", "execute_steps", "gripper_repeat"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def action_statistics(dataset_statistics: Any, dataset: str) -> dict[str, np.ndarray]:
    """The action statistics ``sample_actions`` unnormalises with: ``mean``, ``std`` (7,) float32 and, when
    the statistics have one, ``mask`` (7,) bool (True where the dimension was normalised).

    ``dataset_statistics`` is an Octo model's: ``{dataset: {"action": {...}, ...}}`` for a multi-dataset model,
    ``{"action": {...}, ...}`` for a single-dataset (finetuned) one, where ``dataset`` is ignored.
    """
    if not dataset_statistics:
        raise ValueError("the Octo model has no dataset statistics: its actions cannot be unnormalised")
    stats = dataset_statistics
    if "action" not in stats:
        if dataset not in stats:
            raise ValueError(f"dataset {dataset!r} is not in the model's statistics; available: {sorted(stats)}")
        stats = stats[dataset]
    action = stats["action"]
    out = {k: np.asarray(action[k], np.float32) for k in ("mean", "std")}
    if "mask" in action:
        out["mask"] = np.asarray(action["mask"], bool)
    return out


@functools.partial(jax.jit, static_argnums=1)
def _resize(image: jax.Array, size: int) -> jax.Array:
    out = jax.image.resize(image.astype(jnp.float32), (size, size, image.shape[2]), "lanczos3", antialias=True)
    return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8 with antialiased Lanczos-3 (Octo's own resize method)."""
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(_resize(image, size))


class OctoModelPolicy(Policy):
    """An Octo model's raw action chunks: (action_horizon, 7) float32, deltas unnormalised and multiplied by
    ``action_scale``, gripper as predicted ([0, 1], 1 open). :class:`OctoPolicy` executes them."""

    Config = OctoConfig

    def __init__(self, model: Any, config: OctoConfig) -> None:
        super().__init__(config)
        self.model = model
        self.statistics = action_statistics(model.dataset_statistics, config.dataset)
        self.history = History(config.window)
        self._scale = np.array([*config.action_scale, 1.0], np.float32)
        self._rng = jax.random.PRNGKey(config.seed)
        self._task: Any = None
        # Octo's example batch says which observation keys the model was trained with
        self._pad_mask_dict = "pad_mask_dict" in model.example_batch["observation"]

    def reset(self, instruction: str) -> None:
        self._task = self.model.create_tasks(texts=[instruction])
        self.history.reset()

    def act(self, obs: Observation) -> np.ndarray:
        if self._task is None:
            raise RuntimeError("reset(instruction) must come before act()")
        cfg = self.config
        items = {"image_primary": resize_image(obs.image_primary, cfg.primary_size)}
        if cfg.use_wrist:
            if obs.image_wrist is None:
                raise ValueError("use_wrist is set but the observation has no wrist image")
            items["image_wrist"] = resize_image(obs.image_wrist, cfg.wrist_size)
        stacked, pad_mask = self.history.push(items)
        observations: dict[str, Any] = {k: v[None] for k, v in stacked.items()}
        observations["timestep_pad_mask"] = pad_mask[None]
        if self._pad_mask_dict:  # every image present at every step (timestep padding is the mask above)
            observations["pad_mask_dict"] = {k: np.ones((1, cfg.window), bool) for k in stacked}
        self._rng, key = jax.random.split(self._rng)
        actions = self.model.sample_actions(
            observations, self._task, unnormalization_statistics=self.statistics, rng=key
        )
        return np.asarray(actions[0], np.float32) * self._scale

    def describe(self) -> dict[str, Any]:
        return {"policy": "octo", "checkpoint": self.config.checkpoint, "dataset": self.config.dataset}


def load_octo_model(checkpoint: str, step: int = -1) -> Any:
    """``OctoModel.load_pretrained(checkpoint, step)``; imports Octo here, not at module import."""
    try:
        from octo.model.octo_model import OctoModel
    except ImportError as exc:
        raise ImportError(
            "the 'octo' policy needs the octo package (github octo-models/octo, not on PyPI) in this Python, "
            f"with jax 0.4.20, flax 0.7.5, tensorflow 2.15, transformers 4.40 and numpy<2: {exc}"
        ) from exc
    return OctoModel.load_pretrained(checkpoint, step if step >= 0 else None)


class OctoPolicy(ExecutedPolicy):
    """Octo as the robot runs it: model -> temporal ensembling or receding horizon or the whole chunk -> sticky
    gripper (+1 open / -1 closed). Returns the plan from now on, (k, 7), k <= action_horizon: row 0 is what
    Octo's own wrappers return for one step per call (see :mod:`ivm_ros.policies.wrappers`).

    ``model``: an already built ``OctoModel`` (or anything with its ``create_tasks`` / ``sample_actions`` /
    ``example_batch`` / ``dataset_statistics``); by default the checkpoint is loaded.
    """

    Config = OctoConfig

    def __init__(self, config: OctoConfig | None = None, model: Any = None) -> None:
        super().__init__(config)
        cfg = self.config
        self.core = OctoModelPolicy(model if model is not None else load_octo_model(cfg.checkpoint, cfg.step), cfg)
        self.chain = execution_chain(self.core, cfg.execution, cfg.action_horizon, cfg.exp_weight,
                                     cfg.execute_steps, cfg.gripper_threshold, cfg.gripper_repeat)
        if cfg.warmup:
            self.warm_up()

    def warm_up(self) -> None:  # type: ignore[override]
        """One reset + act on black frames at the model's sizes, so ``sample_actions`` is compiled before the
        first real frame; leaves no history behind (the next :meth:`reset` starts clean anyway)."""
        cfg = self.config
        black = np.zeros((cfg.primary_size, cfg.primary_size, 3), np.uint8)
        wrist = np.zeros((cfg.wrist_size, cfg.wrist_size, 3), np.uint8) if cfg.use_wrist else None
        super().warm_up(Observation(black, wrist))

    def describe(self) -> dict[str, Any]:
        return {**self.chain.describe(), "execution": self.config.execution}
