"""The embedded visuomotor policy (JAX/Flax linen): masked static image history + gripper image + proprio +
instruction embedding -> a chunk of relative end-effector actions.

Shapes (defaults): ``static`` (B, W, S, S, 3) uint8 with W = window 2 and S = 80 (the masked third-person
camera, resized); ``gripper`` (B, W, G, G, 3) uint8, G = 48 (the wrist camera, unmasked, as in the IVM paper);
``proprio`` (B, P) float32 normalised robot state; ``text`` (B, 384) float32 MiniLM sentence embedding.
``gripper_size`` 0: no second camera (SimplerEnv's WidowX has no wrist camera; the input is then (B, W, 0, 0, 3) and
ignored). ``robot`` (:mod:`~ivm_ros.policies.embedded.robots`) names the proprio vector and the action units.
Output: ``actions`` (B, H, 6) float32 in [-1, 1] (tanh) and ``gripper_logits`` (B, H) (> 0: open), H = chunk 4.
Frames of the window are stacked on channels; the instruction modulates every conv stage (FiLM).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from ivm_ros.archs import ArchRecord
from ivm_ros.policies.embedded.data import PROPRIO_INDEX
from ivm_ros.policies.embedded.robots import robot


@dataclasses.dataclass(frozen=True)
class PolicyArch(ArchRecord):
    """Sizes of the embedded policy; saved with its parameters."""

    window: int = 2
    static_size: int = 80
    gripper_size: int = 48
    proprio_dim: int = 8  # tcp xyz, tcp euler (sin/cos folded into 3 unwrapped angles), gripper width, last grip
    #: which robot_obs (15,) entries the policy reads, in order (len == proprio_dim). 14 is the last gripper
    #: action, which the official CALVIN evaluation does not reset between chains: (0, ..., 6) leaves it out
    proprio_index: tuple[int, ...] = PROPRIO_INDEX
    text_dim: int = 384
    chunk: int = 4
    widths: tuple[int, ...] = (16, 32, 64, 96)
    gripper_widths: tuple[int, ...] = (16, 32, 64)
    hidden: int = 256
    #: the proprio vector proprio_index reads and the action units: ``calvin`` (robot_obs (15,)) or ``widowx``
    robot: str = "calvin"

    def __post_init__(self) -> None:
        sizes = {"window": self.window, "static_size": self.static_size, "gripper_size": self.gripper_size,
                 "text_dim": self.text_dim, "chunk": self.chunk, "hidden": self.hidden}
        bad = {k: v for k, v in sizes.items() if not isinstance(v, int) or v < (0 if k == "gripper_size" else 1)}
        widths = {"widths": self.widths, "gripper_widths": self.gripper_widths}
        bad.update({k: v for k, v in widths.items()
                    if not isinstance(v, tuple) or not all(isinstance(w, int) and w > 0 and w % 8 == 0 for w in v)})
        if bad or not self.widths:
            raise ValueError(f"PolicyArch sizes must be positive ints (gripper_size >= 0) and widths non-empty tuples "
                             f"of multiples of 8 (GroupNorm of 8 groups): got {bad or {'widths': self.widths}}")
        n = robot(self.robot).obs_dim
        if len(self.proprio_index) != self.proprio_dim or not all(0 <= i < n for i in self.proprio_index):
            raise ValueError(f"proprio_index {self.proprio_index} must name proprio_dim={self.proprio_dim} entries of "
                             f"the {self.robot} proprio vector (0-{n - 1})")
        if self.gripper_size < 0 or (self.gripper_size > 0) != bool(self.gripper_widths):
            raise ValueError(f"gripper_size {self.gripper_size} and gripper_widths {self.gripper_widths}: both set "
                             "(a second camera) or 0 and () (none)")


class FiLMConvNet(nn.Module):
    """(B, H, W, C) float -> (B, F) with stride-2 conv stages, each followed by FiLM from ``cond`` (B, D)."""

    widths: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jnp.ndarray, cond: jnp.ndarray) -> jnp.ndarray:
        for i, w in enumerate(self.widths):
            x = nn.Conv(w, (3, 3), strides=(2, 2), name=f"conv{i}")(x)
            x = nn.GroupNorm(num_groups=8, name=f"norm{i}")(x)
            film = nn.Dense(2 * w, name=f"film{i}", kernel_init=nn.initializers.zeros)(cond)
            gamma, beta = jnp.split(film, 2, axis=-1)
            x = x * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]
            x = nn.relu(x)
            x = nn.relu(nn.Conv(w, (3, 3), name=f"conv{i}b")(x)) + x
        # spatial softmax keypoints (x, y per channel) plus global average: keeps "where" as well as "what"
        b, h, w_, c = x.shape
        logits = x.reshape(b, h * w_, c)
        attn = nn.softmax(logits, axis=1)
        ys, xs = jnp.meshgrid(jnp.linspace(-1, 1, h), jnp.linspace(-1, 1, w_), indexing="ij")
        kx = jnp.einsum("bnc,n->bc", attn, xs.reshape(-1))
        ky = jnp.einsum("bnc,n->bc", attn, ys.reshape(-1))
        return jnp.concatenate([kx, ky, x.mean(axis=(1, 2))], axis=-1)


class EmbeddedPolicyNet(nn.Module):
    """See the module docstring."""

    arch: PolicyArch

    @nn.compact
    def __call__(self, static: jnp.ndarray, gripper: jnp.ndarray, proprio: jnp.ndarray, text: jnp.ndarray
                 ) -> tuple[jnp.ndarray, jnp.ndarray]:
        a = self.arch
        cond = nn.relu(nn.Dense(a.hidden, name="text_proj")(text))

        def stack(frames: jnp.ndarray) -> jnp.ndarray:  # (B, W, S, S, 3) uint8 -> (B, S, S, 3W) in [-1, 1]
            b, w, s, s2, c = frames.shape
            x = frames.astype(jnp.float32) / 127.5 - 1.0
            return x.transpose(0, 2, 3, 1, 4).reshape(b, s, s2, w * c)

        f_static = FiLMConvNet(a.widths, name="static_encoder")(stack(static), cond)
        feats = [f_static]
        if a.gripper_size > 0:
            feats.append(FiLMConvNet(a.gripper_widths, name="gripper_encoder")(stack(gripper), cond))
        x = jnp.concatenate([*feats, nn.Dense(64, name="proprio_proj")(proprio), cond], axis=-1)
        x = nn.relu(nn.Dense(a.hidden, name="fc1")(x))
        x = nn.relu(nn.Dense(a.hidden, name="fc2")(x))
        out = nn.Dense(a.chunk * 7, name="head")(x).reshape(-1, a.chunk, 7)
        return jnp.tanh(out[..., :6]), out[..., 6]


@functools.lru_cache(maxsize=4)
def jitted_apply(arch: PolicyArch) -> Callable:
    """The jitted forward ``f(params, static, gripper, proprio, text)`` of ``arch``, one per arch for the process.

    Policies take it from here instead of jitting a fresh ``model.apply`` each time they are built. policy_node
    builds one per configure, and each fresh jit retraced and recompiled the network (a configure/cleanup cycle
    took ~2 s instead of ~0.7 s here) and left JAX's process-wide tracing caches more entries every time (~230
    Python objects: ``jnp.einsum`` jits a new inner function per trace, cached by identity in an LRU of 2048):
    RSS grew 0.13-0.18 MB per cycle (issue 15 item 7; test/ros/test_lifecycle_memory.py). The parameters are an
    argument, so every checkpoint of one arch shares one compiled executable; it stays in memory after the policy
    is closed (bounded: at most ``maxsize`` archs)."""
    return jax.jit(EmbeddedPolicyNet(arch).apply)
