"""mIoU of a lite model against ground-truth masks, grouped (distraction level, task family, ...), plus a
bar plot and a gallery image of predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ivm_ros.models.lite.data import IVMSet
from ivm_ros.models.lite.model import LiteIVM


@torch.inference_mode()
def predict_set(model: LiteIVM, data: IVMSet, batch_size: int = 64) -> np.ndarray:
    """Probabilities at the dataset's stored resolution: (N, H, W) float32."""
    if data.full_masks is None:
        raise ValueError("evaluation needs a set loaded with keep_full=True")
    h, w = data.full_masks.shape[1:]
    out = []
    for i in range(0, len(data), batch_size):
        sl = slice(i, i + batch_size)
        logits = model(data.images[sl].float(), data.text[data.text_index[sl]])
        out.append(torch.sigmoid(F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False))[:, 0])
    return torch.cat(out).numpy()


def iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-sample IoU of boolean (N, H, W) arrays; 1.0 where both are empty."""
    inter = np.logical_and(pred, truth).reshape(len(pred), -1).sum(1)
    union = np.logical_or(pred, truth).reshape(len(pred), -1).sum(1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def family(task: str) -> str:
    """Task family for reports: the task name's verb (``lift_red_block_table`` -> ``lift``)."""
    return task.split("_")[0]


def summarize(ious: np.ndarray, groups: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """{group column: {value: mIoU}} plus {"all": {"mIoU": ..., "count": N}}."""
    out: dict[str, dict[str, float]] = {"all": {"mIoU": float(ious.mean()), "count": float(len(ious))}}
    for name, col in groups.items():
        out[name] = {str(v): float(ious[col == v].mean()) for v in np.unique(col)}
    return out


def evaluate(model: LiteIVM, data: IVMSet, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, H, W), IoU per sample (N,)) at ``threshold``."""
    probs = predict_set(model, data)
    return probs, iou(probs > threshold, data.full_masks)


def gallery(data: IVMSet, probs: np.ndarray, ious: np.ndarray, path: str | Path, count: int = 12,
            threshold: float = 0.5, seed: int = 0) -> Path:
    """Rows of (frame, ground truth, prediction) tiles with instruction and IoU; saved as PNG."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(probs), size=min(count, len(probs)), replace=False)
    tiles = []
    for i in pick:
        img = data.originals[i]
        gt = _tint(img, data.full_masks[i], (0, 255, 255))
        pr = _tint(img, probs[i] > threshold, (255, 80, 0))
        row = np.hstack([img, gt, pr])
        bar = np.full((28, row.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, f"{data.meta['instruction'][i]}  IoU {ious[i]:.2f}", (4, 19), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.vstack([bar, row]))
    cols = 2
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    grid = np.vstack([np.hstack(tiles[r : r + cols]) for r in range(0, len(tiles), cols)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


def _tint(img: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    out = img.copy()
    out[mask] = (0.45 * out[mask] + 0.55 * np.array(colour)).astype(np.uint8)
    return out


def plot_bars(results: Mapping[str, Mapping[str, float]], path: str | Path, title: str,
              targets: Mapping[str, float] | None = None,
              points: Mapping[str, Mapping[str, Sequence[float]]] | None = None) -> Path:
    """Grouped bars: results[series][category] = mIoU; ``points[series][category]`` (e.g. one value per training
    seed) are drawn as dots on their bar. Saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = list(results)
    cats = list(dict.fromkeys(c for s in series for c in results[s]))
    x = np.arange(len(cats))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(cats) + 2), 4))
    for k, s in enumerate(series):
        vals = [results[s].get(c, np.nan) for c in cats]
        centers = x + (k - (len(series) - 1) / 2) * width
        ax.bar(centers, vals, width, label=s)
        for i, cat in enumerate(cats):
            dots = list((points or {}).get(s, {}).get(cat, ()))
            ax.plot([centers[i]] * len(dots), dots, "o", color="k", markersize=3, zorder=3)
    for cat, val in (targets or {}).items():
        if cat in cats:
            i = cats.index(cat)
            ax.hlines(val, i - 0.45, i + 0.45, colors="k", linestyles="dashed")
    ax.set_xticks(x, cats, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mIoU")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.24), ncol=min(4, len(series)), frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
