"""Training the lite model: Discriminator-Weighted Supervised Learning (DWSL, the IVM paper's method) and the
supervised baselines it is compared with, on the same data and budget.

- ``dwsl``:   stage 1 trains :class:`QualityDiscriminator` to tell human labels (quality 1) from machine labels
              (quality 0) given image, mask and instruction, cross-fitted (each sample is scored by a
              discriminator that never saw it, so scores are not memorised). A machine label that is exact looks
              like a human one, so D gives it about the share of human labels among exact-looking ones; the
              scores are calibrated to label quality as the prior-corrected odds ``D/(1-D)`` divided by their
              median over human labels, clipped to [0, 1]. Stage 2 trains the generator on every sample with
              its loss weighted by ``w = floor + (1 - floor) * quality`` (the IVM release's ``0.2 + 0.8 * q``).
- ``dwsl_uncalibrated``: the same with ``quality = D`` (the discriminator's raw output).
- ``sl_mix``: every sample, weight 1.
- ``sl_hq``:  only the human labels (weight 1), the rest dropped.

Per-sample loss: sigmoid cross-entropy + dice at the logits' resolution (S/2). Seeded; progress via tqdm.
``TrainConfig.init`` starts the generator from a lite checkpoint of the same arch (fine-tuning) instead of random
weights.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ivm_ros.models.lite import checkpoint
from ivm_ros.models.lite.data import IVMSet
from ivm_ros.models.lite.model import LiteArch, LiteIVM, QualityDiscriminator

METHODS = ("dwsl", "dwsl_uncalibrated", "sl_mix", "sl_hq")
DWSL_METHODS = ("dwsl", "dwsl_uncalibrated")


@dataclasses.dataclass
class TrainConfig:
    """Generator and discriminator training settings (epochs are over the whole training set)."""

    method: str = "dwsl"
    steps: int = 1500  # generator optimizer steps: the budget, equal for every method
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    seed: int = 0
    threads: int = 2
    disc_steps: int = 2000  # per fold (500: exact-vs-degraded AUC 0.73; 2000: 0.84)
    disc_folds: int = 2
    disc_lr: float = 1e-3
    weight_floor: float = 0.2  # DWSL weight of a sample the discriminator calls surely machine-made
    jitter: float = 0.15  # photometric augmentation: gain in [1-j, 1+j], offset in +-j*128
    init: str = ""  # a lite checkpoint the generator starts from ("": random initialisation)

    def check(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.steps < 1 or self.batch_size < 1 or self.disc_steps < 1:
            raise ValueError("steps, disc_steps and batch_size must be >= 1")
        if self.disc_folds < 2:
            raise ValueError(f"disc_folds must be >= 2 (cross-fitting), got {self.disc_folds}")
        if not 0.0 <= self.weight_floor <= 1.0:
            raise ValueError(f"weight_floor must be in [0, 1], got {self.weight_floor}")


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample sigmoid cross-entropy + dice. logits, target (B, 1, h, w), target in [0, 1] -> (B,)."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).mean(1)
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    dice = 1.0 - (2.0 * (p * t).sum(1) + 1.0) / (p.sum(1) + t.sum(1) + 1.0)
    return bce + dice


def _batch(data: IVMSet, idx: torch.Tensor, gen: torch.Generator | None, jitter: float
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images float (B, 3, S, S) in [0, 255], targets (B, 1, S/2, S/2) in [0, 1], text (B, 384))."""
    images = data.images[idx].float()
    if gen is not None and jitter > 0:
        b = len(idx)
        gain = 1.0 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * jitter
        offset = (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * jitter * 128
        images = (images * gain + offset).clamp(0, 255)
    return (images.contiguous(memory_format=torch.channels_last), data.targets[idx].float() / 255.0,
            data.text[data.text_index[idx]])


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _batches(n: int, batch_size: int, steps: int, gen: torch.Generator):
    """``steps`` index batches (epoch, (batch_size,) int64) over reshuffled passes of range(n); the last partial
    batch of a pass is dropped (BatchNorm)."""
    if n < batch_size:
        raise ValueError(f"{n} training samples is fewer than one batch of {batch_size}")
    step, epoch = 0, 0
    while True:
        order = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):
            if step == steps:
                return
            yield epoch, order[i : i + batch_size]
            step += 1
        epoch += 1


def train_discriminator(data: IVMSet, idx: torch.Tensor, cfg: TrainConfig, seed: int, progress: bool = True,
                        desc: str = "dwsl stage 1: discriminator") -> QualityDiscriminator:
    """Stage 1 of DWSL on the samples ``idx`` (int64) of ``data``: human (1) vs machine (0) labels, the classes
    weighted to balance (D's odds are then p(x | human) / p(x | machine), which calibration normalises)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    disc = QualityDiscriminator().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr, weight_decay=cfg.weight_decay)
    steps = cfg.disc_steps
    bar = tqdm(total=steps, desc=desc, unit="batch", disable=not progress)
    humans = int((data.quality[idx] == 1).sum())
    pos_weight = (len(idx) - humans) / max(1, humans)  # balanced classes: human labels are usually the few
    disc.train()
    for step, (_, sub) in enumerate(_batches(len(idx), cfg.batch_size, steps, gen)):
        for g in opt.param_groups:
            g["lr"] = cfg.disc_lr * _schedule(step, steps, cfg.warmup_steps)
        loss = _disc_loss(disc, data, idx[sub], gen, cfg.jitter, pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return disc.eval()


def cross_fitted_scores(data: IVMSet, cfg: TrainConfig, progress: bool = True
                        ) -> tuple[np.ndarray, list[QualityDiscriminator], dict[str, Any]]:
    """Out-of-fold D scores: ``cfg.disc_folds`` discriminators, each trained on the other folds and scoring its
    own. Returns (scores (N,) float32 P(human label), the discriminators, a report)."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    folds = torch.randperm(len(data), generator=gen).chunk(cfg.disc_folds)
    scores = np.empty(len(data), np.float32)
    discs = []
    for k, fold in enumerate(folds):
        rest = torch.cat([f for j, f in enumerate(folds) if j != k])
        disc = train_discriminator(data, rest, cfg, cfg.seed + 10 * k, progress,
                                   f"dwsl stage 1: discriminator {k + 1}/{cfg.disc_folds}")
        scores[fold.numpy()] = discriminator_scores(disc, data, fold)
        discs.append(disc)
    return scores, discs, discriminator_report(data, scores)


def discriminator_report(data: IVMSet, scores: np.ndarray) -> dict[str, Any]:
    """Out-of-fold diagnostics: human-vs-machine accuracy, exact-vs-degraded AUC, mean score per degradation."""
    human = data.quality.numpy() == 1
    degradation = data.meta["degradation"]
    exact = degradation == "none"
    says_human = scores > 0.5
    balanced = (float(says_human[human].mean() + (~says_human)[~human].mean()) / 2
                if human.any() and (~human).any() else None)
    return {"human_vs_machine_balanced_accuracy": balanced,
            "exact_vs_degraded_auc": auc(scores[exact], scores[~exact]),
            "mean_score": {"human": _mean(scores[human]), "machine_exact": _mean(scores[~human & exact]),
                           "machine_degraded": _mean(scores[~exact])},
            "mean_score_by_degradation": {str(k): _mean(scores[degradation == k]) for k in np.unique(degradation)}}


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if len(x) else None


def auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """P(a positive scores above a negative), ties counting half (Mann-Whitney); None if a side is empty."""
    if len(pos) == 0 or len(neg) == 0:
        return None
    neg = np.sort(neg)
    below = np.searchsorted(neg, pos, "left")
    tied = np.searchsorted(neg, pos, "right") - below
    return float((below + 0.5 * tied).mean() / len(neg))


def calibrated_quality(scores: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Label quality in [0, 1] from D = P(human | sample): odds D/(1-D) over their median on human labels.

    D is trained class-balanced, so its odds estimate p(x | human) / p(x | machine): with a machine labeller that
    is exact with probability g, that is 1/g for an exact label whoever made it and ~0 for a wrong one. Dividing
    by the human labels' median odds maps exact labels to ~1 without knowing g. (N,) float32.
    """
    s = np.clip(scores.astype(np.float64), 1e-6, 1 - 1e-6)
    odds = s / (1 - s)
    ref = np.median(odds[quality == 1]) if bool((quality == 1).any()) else odds.max()
    return np.clip(odds / ref, 0.0, 1.0).astype(np.float32)


def _disc_loss(disc: QualityDiscriminator, data: IVMSet, idx: torch.Tensor, gen: torch.Generator | None,
               jitter: float, pos_weight: float) -> torch.Tensor:
    images, _, text = _batch(data, idx, gen, jitter)
    masks = _full_res_labels(data, idx, images.shape[-1])
    logits = disc(images, masks, text)
    return F.binary_cross_entropy_with_logits(logits, data.quality[idx].float(),
                                              pos_weight=torch.tensor(pos_weight))


def _full_res_labels(data: IVMSet, idx: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(data.targets[idx].float() / 255.0, size=(size, size), mode="bilinear", align_corners=False)


@torch.no_grad()
def discriminator_scores(disc: QualityDiscriminator, data: IVMSet, idx: torch.Tensor | None = None,
                         batch_size: int = 128) -> np.ndarray:
    """P(high quality) per sample, (len(idx),) float32."""
    idx = torch.arange(len(data)) if idx is None else idx
    out = []
    for i in range(0, len(idx), batch_size):
        sub = idx[i : i + batch_size]
        images, _, text = _batch(data, sub, None, 0.0)
        out.append(torch.sigmoid(disc(images, _full_res_labels(data, sub, images.shape[-1]), text)))
    return torch.cat(out).numpy().astype(np.float32)


def sample_weights(data: IVMSet, cfg: TrainConfig, scores: np.ndarray | None = None) -> torch.Tensor:
    """(N,) float32 loss weights for ``cfg.method``; the DWSL methods need the discriminator's ``scores``."""
    if cfg.method == "sl_mix":
        return torch.ones(len(data))
    if cfg.method == "sl_hq":
        return (data.quality == 1).float()
    if scores is None:
        raise ValueError(f"{cfg.method} needs discriminator scores")
    q = calibrated_quality(scores, data.quality.numpy()) if cfg.method == "dwsl" else scores
    return cfg.weight_floor + (1.0 - cfg.weight_floor) * torch.from_numpy(q)


def train_generator(data: IVMSet, weights: torch.Tensor, cfg: TrainConfig, arch: LiteArch,
                    progress: bool = True) -> tuple[LiteIVM, list[dict[str, float]]]:
    """Stage 2 (or plain SL): minimises sum(w_i * loss_i) / sum(w_i) per batch; samples with w = 0 are skipped."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    keep = torch.nonzero(weights > 0).squeeze(1)
    model = LiteIVM(arch)
    if cfg.init:  # fine-tuning: the same arch, every tensor from the file
        checkpoint.load_into(model, checkpoint.read(cfg.init, checkpoint.FORMAT)[0], cfg.init)
    model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.steps
    log_every = max(1, min(100, steps // 10))
    history: list[dict[str, float]] = []
    running, seen = 0.0, 0
    bar = tqdm(total=steps, desc=f"{cfg.method}: generator", unit="batch", disable=not progress)
    for step, (epoch, sub) in enumerate(_batches(len(keep), cfg.batch_size, steps, gen)):
        idx = keep[sub]
        for g in opt.param_groups:
            g["lr"] = cfg.lr * _schedule(step, steps, cfg.warmup_steps)
        images, targets, text = _batch(data, idx, gen, cfg.jitter)
        w = weights[idx]
        loss = (segmentation_loss(model(images, text), targets) * w).sum() / w.sum().clamp(min=1e-6)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += loss.item()
        seen += 1
        bar.update(1)
        if (step + 1) % log_every == 0:
            history.append({"step": step + 1, "epoch": epoch, "loss": running / seen})
            bar.set_postfix(epoch=epoch, loss=f"{running / seen:.3f}")
            running, seen = 0.0, 0
    bar.close()
    return model.eval(), history


def train(data: IVMSet, cfg: TrainConfig, arch: LiteArch, out: str | Path, progress: bool = True
          ) -> tuple[LiteIVM, dict[str, Any]]:
    """One method end to end; writes ``out/<method>.safetensors`` (and the discriminator for dwsl)."""
    cfg.check()
    torch.set_num_threads(cfg.threads)
    out = Path(out)
    t0 = time.perf_counter()
    report: dict[str, Any] = {"method": cfg.method, "config": dataclasses.asdict(cfg), "train_samples": len(data),
                              "exact_labels": int((data.quality == 1).sum())}
    scores = None
    if cfg.method in DWSL_METHODS:
        scores, discs, report["discriminator"] = cross_fitted_scores(data, cfg, progress)
        for k, disc in enumerate(discs):
            checkpoint.save(out / f"{cfg.method}_discriminator_{k}.safetensors", disc,
                            checkpoint.DISCRIMINATOR_FORMAT, info=report["discriminator"])
    weights = sample_weights(data, cfg, scores).numpy()
    human, exact = data.quality.numpy() == 1, data.meta["degradation"] == "none"
    report["mean_weight"] = {"human": _mean(weights[human]), "machine_exact": _mean(weights[~human & exact]),
                             "machine_degraded": _mean(weights[~exact])}
    weights = torch.from_numpy(weights)
    model, report["history"] = train_generator(data, weights, cfg, arch, progress)
    report["train_seconds"] = time.perf_counter() - t0
    checkpoint.save(out / f"{cfg.method}.safetensors", model, checkpoint.FORMAT, arch=arch,
                    info={k: report[k] for k in ("method", "train_samples", "train_seconds")} |
                    {"steps": cfg.steps, "seed": cfg.seed})
    return model, report
