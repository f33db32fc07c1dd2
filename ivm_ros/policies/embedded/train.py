"""Behaviour cloning of :class:`~ivm_ros.policies.embedded.model.EmbeddedPolicyNet` on expert demonstrations.

Observations: static camera masked by the lite IVM model with the IVM authors' augmentation (random threshold,
random dilation; ``masking="lite"``), or masked the same way by the simulator's ground-truth masks stored in the
demonstrations (``masking="groundtruth"``: the upper bound of masking, deployed with the ``groundtruth``
predictor), or the raw static camera (``masking="none"``: the baseline without IVM);
the unmasked gripper camera; proprio; the instruction's MiniLM embedding. Targets: the next ``chunk`` expert
actions; loss = MSE on the 6 motion dims + binary cross-entropy on the gripper, over steps inside the episode.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from ivm_ros.policies.embedded.data import (
    DemoSet,
    action_chunks,
    masked_static,
    photometric,
    random_shift,
    retexture_surface,
    window_indices,
)
from ivm_ros.policies.embedded.model import EmbeddedPolicyNet, PolicyArch
from ivm_ros.policies.embedded.robots import robot

MASKING = ("lite", "groundtruth", "none")  # where the masks come from (none: raw camera)
WRIST_MASKING = ("none", "groundtruth")  # the gripper camera: raw, or masked by the simulator's own masks


@dataclasses.dataclass
class PolicyTrainConfig:
    masking: str = "lite"
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    seed: int = 0
    threshold: tuple[float, float] = (0.4, 0.9)  # IVM authors' random threshold range
    dilation: tuple[int, int] = (3, 13)  # odd kernel sizes in pixels at the policy's static size (80: 4-16 %)
    gripper_weight: float = 0.5
    shift: int = 0  # random-shift augmentation of both cameras, pixels at the policy's sizes (0: none)
    photometric: float = 0.0  # strength of brightness/contrast/saturation/colour jitter of both cameras (0: none)
    retexture: float = 0.0  # fraction of samples whose table wood gets a random texture, both cameras (0: none)
    wrist_masking: str = "none"  # groundtruth: the gripper camera masked too, by its stored ground-truth masks
    wrist_views: float = 0.0  # fraction of samples whose gripper window is the re-rendered one (other texture, light)
    wrist_consistency: float = 0.0  # weight of the paired views' action disagreement in the loss (0: not computed)
    static_views: bool = False  # the static window is swapped with the wrist's (both re-rendered under one draw)

    def check(self) -> None:
        if self.masking not in MASKING:
            raise ValueError(f"masking must be one of {MASKING}, got {self.masking!r}")
        if self.wrist_masking not in WRIST_MASKING:
            raise ValueError(f"wrist_masking must be one of {WRIST_MASKING}, got {self.wrist_masking!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")
        if self.shift < 0:
            raise ValueError(f"shift must be >= 0 pixels, got {self.shift}")
        if self.wrist_consistency < 0 or (self.wrist_consistency > 0 and self.wrist_masking != "none"):
            raise ValueError(f"wrist_consistency must be >= 0 and needs the raw wrist view (wrist_masking='none'), "
                             f"got {self.wrist_consistency} with {self.wrist_masking!r}")
        if self.static_views and not (self.wrist_views > 0 or self.wrist_consistency > 0):
            raise ValueError("static_views pairs the static camera with the wrist views: it needs wrist_views or "
                             "wrist_consistency > 0")
        if self.static_views and self.masking == "groundtruth":
            raise ValueError("static_views: re-rendered static views are masked by lite (masking='lite') or raw "
                             "(masking='none'), not by the recording's ground truth")
        if not all(0.0 <= v <= 1.0 for v in (self.photometric, self.retexture, self.wrist_views)):
            raise ValueError(f"photometric, retexture and wrist_views must be in [0, 1], got {self.photometric}, "
                             f"{self.retexture}, {self.wrist_views}")


def make_batch(data: DemoSet, text: np.ndarray, idx: np.ndarray, arch: PolicyArch, cfg: PolicyTrainConfig,
               norm: dict[str, np.ndarray], rng: np.random.Generator,
               alternatives: Sequence[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Numpy batch: static (B, W, S, S, 3), gripper (B, W, G, G, 3), proprio (B, P), text (B, 384), actions
    (B, H, 7) with the motion divided by the robot's action scale, valid (B, H).

    ``text`` (K, 384) holds a row per sentence. Without ``alternatives`` a sample's row is its episode's recorded
    instruction (``data.text_index``); with them (one int array of rows per recorded instruction, language
    augmentation) a sample takes a random row of ``alternatives[text_index]``, drawn anew for every batch.
    With ``cfg.wrist_consistency`` also each sample's other view: gripper_paired (B, W, G, G, 3) and, with
    ``cfg.static_views``, static_paired (B, W, S, S, 3)."""
    win = window_indices(data, idx, arch.window)
    flat = win.reshape(-1)
    s, g, shape = arch.static_size, arch.gripper_size, (len(idx), arch.window)
    views = cfg.wrist_views > 0 or cfg.wrist_consistency > 0
    # which samples see the re-rendered views (whole windows: one texture and light per episode, as in deployment)
    pick = np.repeat(rng.random(len(idx)) < cfg.wrist_views, arch.window) if views else None
    static, prob, paired_static = data.static[flat], None if data.prob is None else data.prob[flat], None
    if cfg.static_views:
        static, prob, other, other_prob = varied_static(data, flat, pick, static,
                                                        prob if cfg.masking != "none" else None)
        if cfg.wrist_consistency > 0:
            paired_static = observed_static(other, other_prob, shape, cfg, rng)
    static = observed_static(static, prob, shape, cfg, rng)
    gripper, paired = data.gripper[flat].reshape(*shape, g, g, 3), None
    if g > 0 and views:
        gripper, other = varied_wrist(gripper, data, flat, pick)
        if cfg.wrist_consistency > 0:  # the other view of each sample, augmented alike
            paired = random_shift(photometric(retexture_surface(other, cfg.retexture, rng), cfg.photometric, rng),
                                  cfg.shift, rng)
    if g > 0:  # g = 0: no second camera
        gripper = photometric(retexture_surface(gripper, cfg.retexture, rng), cfg.photometric, rng)
        if cfg.wrist_masking != "none":
            gripper = masked_wrist(gripper, data, flat, cfg, s, rng)
    actions, valid = action_chunks(data, idx, arch.chunk)
    actions[..., :6] /= np.asarray(robot(arch.robot).action_scale, np.float32)  # -> the network's [-1, 1] units
    return {
        "static": static,
        "gripper": random_shift(gripper, cfg.shift, rng) if g > 0 else gripper,
        "proprio": (data.proprio[idx] - norm["proprio_mean"]) / norm["proprio_std"],
        "text": text[sentence_rows(data.text_index[idx], alternatives, rng)],
        "actions": actions,
        "valid": valid.astype(np.float32),
        **({"gripper_paired": paired} if paired is not None else {}),
        **({"static_paired": paired_static} if paired_static is not None else {}),
    }


def observed_static(static: np.ndarray, prob: np.ndarray | None, shape: tuple[int, int], cfg: PolicyTrainConfig,
                    rng: np.random.Generator) -> np.ndarray:
    """The static frames (B x W, S, S, 3) uint8 as the policy sees them, (B, W, S, S, 3) uint8: scene changes first
    (retexture, photometric: what a camera would see), then the mask of ``prob`` (B x W, S, S) uint8 with one draw
    per sample (unless ``cfg.masking`` is none), then the camera's own shift."""
    s = static.shape[1]
    static = photometric(retexture_surface(static.reshape(*shape, s, s, 3), cfg.retexture, rng), cfg.photometric,
                         rng).reshape(-1, s, s, 3)
    if cfg.masking != "none":
        if prob is None:
            raise ValueError(f"masking={cfg.masking!r} needs demonstrations loaded with masks (a predictor or "
                             "stored_masks)")
        static = masked_static(static, prob, rng, cfg.threshold, cfg.dilation)
    return random_shift(static.reshape(*shape, s, s, 3), cfg.shift, rng)


def varied_static(data: DemoSet, flat: np.ndarray, pick: np.ndarray, static: np.ndarray, prob: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]:
    """(static frames, their probabilities, the other view's frames, its probabilities): the recorded ``static``
    (B x W, S, S, 3) uint8 and ``prob`` (B x W, S, S) uint8 (None: unmasked, none returned) of frames ``flat``, swapped
    for ``data.static_varied`` / ``prob_varied`` where ``pick`` (B x W,) bool is set; the other view the reverse."""
    if data.static_varied is None or (prob is not None and data.prob_varied is None):
        raise ValueError("static_views needs demonstrations loaded with stored_static_views (ivm-ros sim-data "
                         "gripper-views --static adds them; masked: with the predictor of their probabilities)")
    static, other = swapped(pick[:, None, None, None], static, data.static_varied[flat])
    if prob is None:
        return static, None, other, None
    prob, other_prob = swapped(pick[:, None, None], prob, data.prob_varied[flat])
    return static, prob, other, other_prob


def varied_wrist(gripper: np.ndarray, data: DemoSet, flat: np.ndarray, pick: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(the gripper windows (B, W, G, G, 3) uint8 taken from ``data.gripper_varied`` (the same states re-rendered)
    where ``pick`` (B x W,) bool is set, the other view of each sample: re-rendered where the first is recorded and
    the reverse)."""
    if data.gripper_varied is None:
        raise ValueError("wrist_views or wrist_consistency > 0 needs demonstrations loaded with stored_gripper_views "
                         "(ivm-ros sim-data gripper-views adds them)")
    at = pick.reshape(gripper.shape[:2])[:, :, None, None, None]
    return swapped(at, gripper, data.gripper_varied[flat].reshape(gripper.shape))


def swapped(at: np.ndarray, recorded: np.ndarray, varied: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``varied`` where ``at`` (broadcast over the frames' trailing axes) is set and ``recorded`` elsewhere, the
    reverse): a sample's view and its other view."""
    return np.where(at, varied, recorded), np.where(at, recorded, varied)


def masked_wrist(gripper: np.ndarray, data: DemoSet, flat: np.ndarray, cfg: PolicyTrainConfig, static_size: int,
                 rng: np.random.Generator) -> np.ndarray:
    """The gripper frames (B, W, G, G, 3) uint8 masked by their stored ground-truth masks with the static camera's
    augmentation (random threshold; dilation scaled from the static size to G); a frame where nothing named is in
    view is blank (deployment masks the wrist with ``fail_safe="off"``)."""
    if data.gripper_prob is None:
        raise ValueError("wrist_masking='groundtruth' needs demonstrations loaded with stored_gripper_masks "
                         "(ivm-ros sim-data gripper-masks adds them)")
    shape = gripper.shape
    g = shape[2]
    dilation = tuple(max(1, round(d * g / static_size)) for d in cfg.dilation)
    out = masked_static(gripper.reshape(-1, g, g, 3), data.gripper_prob[flat], rng, cfg.threshold, dilation,
                        empty="blank")
    return out.reshape(shape)


def sentence_rows(recorded: np.ndarray, alternatives: Sequence[np.ndarray] | None, rng: np.random.Generator
                  ) -> np.ndarray:
    """(B,) rows of the text table: ``recorded`` itself, or one random row of ``alternatives[r]`` for each."""
    if alternatives is None:
        return recorded
    return np.array([alternatives[r][rng.integers(len(alternatives[r]))] for r in recorded], np.int64)


def check_alternatives(alternatives: Sequence[np.ndarray] | None, n_recorded: int, n_rows: int) -> None:
    """ValueError unless ``alternatives`` gives every recorded instruction a non-empty set of text rows."""
    if alternatives is None:
        return
    if len(alternatives) != n_recorded:
        raise ValueError(f"alternatives: {len(alternatives)} entries for {n_recorded} recorded instructions")
    bad = [i for i, a in enumerate(alternatives) if len(a) == 0 or min(a) < 0 or max(a) >= n_rows]
    if bad:
        raise ValueError(f"alternatives of recorded instructions {bad[:5]} are empty or not rows of the "
                         f"{n_rows}-row text table")


def bc_loss(model: EmbeddedPolicyNet, params: Any, batch: dict[str, jnp.ndarray], gripper_weight: float,
            consistency: float = 0.0) -> jnp.ndarray:
    """MSE on the motion + ``gripper_weight`` x BCE on the gripper, over the valid chunk steps. With a
    ``gripper_paired`` and/or ``static_paired`` batch (the same samples' other wrist / static view; a camera without
    one sees its own view twice): the mean of both views' losses plus ``consistency`` x the squared difference of
    their actions (motion, and gripper probability x gripper_weight)."""
    valid = batch["valid"]
    target = (batch["actions"][..., 6] > 0).astype(jnp.float32)

    def run(static: jnp.ndarray, gripper: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        motion, grip_logits = model.apply(params, static, gripper, batch["proprio"], batch["text"])
        mse = ((motion - batch["actions"][..., :6]) ** 2).mean(-1)
        return mse + gripper_weight * optax.sigmoid_binary_cross_entropy(grip_logits, target), motion, grip_logits

    per_step, motion, grip = run(batch["static"], batch["gripper"])
    if "gripper_paired" in batch or "static_paired" in batch:
        other, motion2, grip2 = run(batch.get("static_paired", batch["static"]),
                                    batch.get("gripper_paired", batch["gripper"]))
        gap = ((motion - motion2) ** 2).mean(-1) + gripper_weight * (jax.nn.sigmoid(grip) - jax.nn.sigmoid(grip2)) ** 2
        per_step = 0.5 * (per_step + other) + consistency * gap
    return (per_step * valid).sum() / jnp.maximum(valid.sum(), 1.0)


def proprio_norm(data: DemoSet) -> dict[str, np.ndarray]:
    """The checkpoint's statistics: proprio mean / std (P,) and the held motion dims (:func:`held_motion`)."""
    mean = data.proprio.mean(0)
    std = np.maximum(data.proprio.std(0), 1e-3)
    return {"proprio_mean": mean.astype(np.float32), "proprio_std": std.astype(np.float32), **held_motion(data)}


def held_motion(data: DemoSet) -> dict[str, np.ndarray]:
    """``motion_held`` (6,) float32 1/0 and ``motion_value`` (6,) float32 in the robot's action units: the motion
    dims every demonstrated action sets to one value (e.g. the WidowX expert's roll and pitch, always 0), which the
    policy then returns exactly. A network's small error on such a dim has nothing in the data to correct it and
    integrates over an episode (measured: a WidowX policy trained on all-zero roll/pitch labels returned
    0.008 rad per step on them, and its wrist pitched away in closed loop)."""
    motion = data.actions[:, :6].astype(np.float64)
    held = (motion.max(0) - motion.min(0)) <= 1e-9 if len(motion) else np.zeros(6, bool)
    value = np.where(held, motion[0] if len(motion) else 0.0, 0.0)
    return {"motion_held": held.astype(np.float32), "motion_value": value.astype(np.float32)}


def train_policy(data: DemoSet, text: np.ndarray, arch: PolicyArch, cfg: PolicyTrainConfig, progress: bool = True,
                 init: tuple[Any, dict[str, np.ndarray]] | None = None,
                 alternatives: Sequence[np.ndarray] | None = None
                 ) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """Returns (params, normalisation statistics, report with the loss history). ``init`` (params, norm) of a
    checkpoint of the same arch continues its training (fine-tuning: its proprio normalisation is kept);
    ``alternatives``: language augmentation (:func:`make_batch`)."""
    cfg.check()
    check_alternatives(alternatives, len(data.instructions), len(text))
    rng = np.random.default_rng(cfg.seed)
    model = EmbeddedPolicyNet(arch)
    norm = proprio_norm(data) if init is None else init[1]
    first = make_batch(data, text, rng.integers(0, len(data), 2), arch, cfg, norm, rng)
    params = init[0] if init is not None else model.init(jax.random.PRNGKey(cfg.seed), first["static"],
                                                         first["gripper"], first["proprio"], first["text"])
    warmup = min(cfg.warmup_steps, cfg.steps // 2)  # a short run still decays
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, cfg.steps)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=cfg.weight_decay))
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, batch):
        loss, grads = jax.value_and_grad(lambda p: bc_loss(model, p, batch, cfg.gripper_weight,
                                                                    cfg.wrist_consistency))(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    history, running, t0 = [], 0.0, time.perf_counter()
    log_every = max(1, min(100, cfg.steps // 10))
    bar = tqdm(range(cfg.steps), desc=f"policy ({cfg.masking})", unit="batch", disable=not progress)
    for i in bar:
        batch = make_batch(data, text, rng.integers(0, len(data), cfg.batch_size), arch, cfg, norm, rng, alternatives)
        params, opt_state, loss = step(params, opt_state, batch)
        running += float(loss)
        if (i + 1) % log_every == 0:
            history.append({"step": i + 1, "loss": running / log_every})
            bar.set_postfix(loss=f"{running / log_every:.4f}")
            running = 0.0
    report = {"masking": cfg.masking, "steps": cfg.steps, "frames": len(data), "history": history,
              "fine_tuned": init is not None, "sentences": len(text),
              "train_seconds": time.perf_counter() - t0, "config": dataclasses.asdict(cfg)}
    return params, norm, report
