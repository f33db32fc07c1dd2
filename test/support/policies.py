"""Test doubles for policies and for the Octo model, NumPy only (no torch): named for what they are."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

import numpy as np

from ivm_ros.policies.base import Observation, Policy, PolicyConfig, ProprioSpec
from ivm_ros.policies.wrappers import ExecutedPolicy, execution_chain


@dataclasses.dataclass
class PixelConfig(PolicyConfig):
    chunk: int = 1  # rows per act()
    delay_s: float = 0.0  # sleep per act() (a slow model)
    gripper: float = 1.0
    proprio_dim: int = 0  # > 0: states a ProprioSpec of this length (no range)


class PixelPolicyForTest(Policy):
    """dx = the frame's first red value / 255 (so each action names its frame), row i of a chunk adds i to dy;
    records resets and calls in class-level lists. Instructions containing 'explode' make act() raise,
    'nan' makes it return NaN."""

    Config = PixelConfig
    resets: ClassVar[list[str]] = []
    calls: ClassVar[list[float]] = []  # stamps of the observations acted on
    observations: ClassVar[list[Observation]] = []

    def reset(self, instruction: str) -> None:
        type(self).resets.append(instruction)
        self.instruction = instruction

    def act(self, obs: Observation) -> np.ndarray:
        type(self).calls.append(obs.stamp)
        type(self).observations.append(obs)
        time.sleep(self.config.delay_s)
        if "explode" in self.instruction:
            raise RuntimeError("policy failure for test")
        out = np.zeros((self.config.chunk, 7), np.float32)
        out[:, 0] = obs.image_primary[0, 0, 0] / 255.0
        out[:, 1] = np.arange(self.config.chunk)
        out[:, 6] = self.config.gripper
        if "nan" in self.instruction:
            out[0, 0] = np.nan
        return out

    def proprio_spec(self) -> ProprioSpec | None:
        return ProprioSpec(self.config.proprio_dim) if self.config.proprio_dim else None


@dataclasses.dataclass
class FixedActionConfig(PolicyConfig):
    action: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)  # the one-row plan of every act()


class FixedActionPolicyForTest(Policy):
    """Returns ``action`` (7 values, ``policy_config.action``) as a one-row plan on every call: known values for
    checking what the node publishes."""

    Config = FixedActionConfig

    def reset(self, instruction: str) -> None:
        pass

    def act(self, obs: Observation) -> np.ndarray:
        return np.asarray(self.config.action, np.float32)[None]


class ChunkPolicyForTest(Policy):
    """Returns the chunks it was given, in order (for the wrappers), and counts calls."""

    def __init__(self, chunks: list[np.ndarray]) -> None:
        super().__init__()
        self.chunks = [np.asarray(c, np.float32) for c in chunks]
        self.calls = 0
        self.resets: list[str] = []

    def reset(self, instruction: str) -> None:
        self.resets.append(instruction)

    def act(self, obs: Observation) -> np.ndarray:
        self.calls += 1
        return self.chunks[(self.calls - 1) % len(self.chunks)]


class OctoModelStandInForTest:
    """Octo 1.5's OctoModel as the adapter uses it: ``example_batch``, ``dataset_statistics``,
    ``create_tasks(texts=...)`` and ``sample_actions(observations, tasks, unnormalization_statistics=..., rng=...)``
    with the real call signature and shapes: (batch, window, H, W, 3) images, (batch, window) pad mask in,
    (batch, 4, 7) actions out. Shapes are checked against the example batch as Octo's ``_verify_shapes`` does.

    The "normalised" actions are fixed (``normalized``) so tests can check the unnormalisation, which follows
    Octo's code: ``mean + std * a`` only where ``mask`` is true. Every call is recorded.
    """

    def __init__(self, window: int = 2, horizon: int = 4, wrist: bool = True, normalized: Any = None) -> None:
        observation = {
            "image_primary": np.zeros((1, window, 256, 256, 3), np.uint8),
            "timestep_pad_mask": np.ones((1, window), bool),
            "pad_mask_dict": {"image_primary": np.ones((1, window), bool)},
        }
        if wrist:
            observation["image_wrist"] = np.zeros((1, window, 128, 128, 3), np.uint8)
            observation["pad_mask_dict"]["image_wrist"] = np.ones((1, window), bool)
        self.example_batch = {
            "observation": observation,
            "task": {"language_instruction": {"input_ids": np.zeros((1, 16), np.int32),
                                              "attention_mask": np.zeros((1, 16), np.int32)}},
        }
        self.horizon = horizon
        mean = np.array([0.01, -0.02, 0.03, 0.1, -0.1, 0.2, 0.5], np.float32)
        std = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], np.float32)
        mask = np.array([True] * 6 + [False])
        self.dataset_statistics = {
            "bridge_dataset": {"action": {"mean": mean, "std": std, "mask": mask, "p01": mean - 1, "p99": mean + 1}},
            "other_dataset": {"action": {"mean": mean * 0, "std": std * 0 + 1}},
        }
        self.normalized = (np.ones((horizon, 7), np.float32) if normalized is None
                           else np.asarray(normalized, np.float32))
        self.tasks_created: list[list[str]] = []
        self.calls: list[dict[str, Any]] = []

    def create_tasks(self, goals: Any = None, texts: list[str] | None = None) -> dict[str, Any]:
        assert goals is None and texts is not None
        self.tasks_created.append(list(texts))
        ids = np.zeros((len(texts), 16), np.int32)
        for i, text in enumerate(texts):
            codes = [ord(ch) % 1000 for ch in text[:16]]
            ids[i, : len(codes)] = codes
        return {"language_instruction": {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int32)},
                "pad_mask_dict": {"language_instruction": np.ones(len(texts), bool)}}

    def sample_actions(self, observations: dict[str, Any], tasks: dict[str, Any],
                       unnormalization_statistics: dict[str, Any] | None = None, normalization_type: Any = None,
                       timestep_pad_mask: Any = None, train: bool = False, argmax: bool = False,
                       sample_shape: tuple[int, ...] = (), rng: Any = None, temperature: float = 1.0) -> np.ndarray:
        assert rng is not None, "the diffusion head needs an rng key"
        example = self.example_batch["observation"]
        for key, value in observations.items():
            if key in ("pad_mask_dict",):
                for k, v in value.items():
                    assert v.shape[1:] == example[key][k].shape[1:], (key, k, v.shape)
                continue
            assert key in example, f"observation key {key} not in the example batch"
            assert value.shape[1:] == example[key].shape[1:], (key, value.shape, example[key].shape)
            assert value.dtype == example[key].dtype, (key, value.dtype)
        batch = observations["image_primary"].shape[0]
        self.calls.append({"observations": observations, "tasks": tasks, "stats": unnormalization_statistics,
                           "rng": np.asarray(rng).copy()})
        action = np.broadcast_to(self.normalized, (batch, self.horizon, 7)).copy()
        if unnormalization_statistics is not None:
            stats = unnormalization_statistics
            mask = stats.get("mask", np.ones_like(stats["mean"], dtype=bool))
            action = np.where(mask, action * stats["std"] + stats["mean"], action)
        return action


@dataclasses.dataclass
class EnsembledPixelConfig(PixelConfig):
    chunk: int = 4
    first_row_only: bool = False  # emulate a chain that returns one action per call (before issue 15)


class EnsembledPixelPolicyForTest(ExecutedPolicy):
    """The pixel double as a model with 4-step chunks, run through the real execution chain (temporal
    ensembling -> sticky gripper) as the embedded and Octo policies are; ``first_row_only`` keeps row 0."""

    Config = EnsembledPixelConfig

    def __init__(self, config: EnsembledPixelConfig | None = None) -> None:
        super().__init__(config)
        self.core = PixelPolicyForTest(self.config)
        self.chain = execution_chain(self.core, "ensemble", self.config.chunk, 0.0, 1, 0.5, 1)

    def act(self, obs: Observation) -> np.ndarray:
        actions = super().act(obs)
        return actions[:1] if self.config.first_row_only else actions


@dataclasses.dataclass
class ReplayConfig(PolicyConfig):
    actions_file: str = ""  # .npy (N, 7) float: the actions every task replays from its start


class ReplayPolicyForTest(Policy):
    """Test double: replays recorded actions (e.g. the expert's for one subtask) from the first after each reset,
    then holds still: known, deterministic commands for checking that two transports step the same."""

    Config = ReplayConfig

    def __init__(self, config: ReplayConfig | None = None) -> None:
        super().__init__(config)
        self.actions = np.load(self.config.actions_file).astype(np.float32)
        self.i = 0

    def reset(self, instruction: str) -> None:
        self.i = 0

    def act(self, obs: Observation) -> np.ndarray:
        a = self.actions[self.i] if self.i < len(self.actions) else np.array([0, 0, 0, 0, 0, 0, -1], np.float32)
        self.i += 1
        return a[None]
