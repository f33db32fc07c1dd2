"""Reading IVM datasets (the data engine's ``index.json`` + ``shard_*.npz`` format, see ivm_ros_sim.data.engine)
into tensors for training and evaluation. ``np.load(allow_pickle=False)``: a dataset never runs code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from ivm_ros.datasets import read_index
from ivm_ros.models.lite.text import InstructionEncoder

FORMAT = "ivm_ros_sim.ivm/1"


@dataclasses.dataclass
class IVMSet:
    """N samples resized for the lite model.

    images (N, 3, S, S) uint8; targets (N, 1, S/2, S/2) uint8 (mask area-resized, 255 = fully inside);
    full_masks (N, H, W) bool at the stored resolution (evaluation) or None; originals (N, H, W, 3) uint8 or None;
    quality (N,) int64 (1 exact, 0 degraded); text (U, 384) float32 sentence embeddings and text_index (N,)
    int64 into it; meta: per-sample string columns (instruction, task, distraction, degradation, camera; kind and
    stage where stored: ``sim-data simpler-ivm``).
    """

    images: torch.Tensor
    targets: torch.Tensor
    quality: torch.Tensor
    text: torch.Tensor
    text_index: torch.Tensor
    meta: dict[str, np.ndarray]
    full_masks: np.ndarray | None = None
    originals: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


def read_shards(root: str | Path) -> dict[str, np.ndarray]:
    """All columns of a dataset folder, concatenated; a clear error for a missing or foreign folder."""
    root = Path(root)
    index = read_index(root, FORMAT, "ivm-ros sim-data ivm")
    parts = []
    for shard in index["shards"]:
        with np.load(root / shard["file"], allow_pickle=False) as z:
            parts.append({k: z[k] for k in z.files})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def load_set(root: str | Path, image_size: int, encoder: InstructionEncoder, keep_full: bool = False,
             progress: bool = True) -> IVMSet:
    """Reads a dataset folder and prepares model inputs at ``image_size`` (S) and targets at S/2."""
    cols = read_shards(root)
    n = len(cols["image"])
    half = image_size // 2
    images = np.empty((n, image_size, image_size, 3), np.uint8)
    targets = np.empty((n, half, half), np.uint8)
    for i in tqdm(range(n), desc=f"load {Path(root).name}", unit="img", disable=not progress):
        images[i] = cv2.resize(cols["image"][i], (image_size, image_size), interpolation=cv2.INTER_AREA)
        targets[i] = cv2.resize(cols["mask"][i].astype(np.float32), (half, half), interpolation=cv2.INTER_AREA
                                ).clip(0, 1).__mul__(255).round().astype(np.uint8)
    texts, text_index = np.unique(cols["instruction"], return_inverse=True)
    meta = {k: cols[k] for k in ("instruction", "task", "distraction", "degradation", "camera", "kind", "stage")
            if k in cols}
    return IVMSet(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        targets=torch.from_numpy(targets).unsqueeze(1),
        quality=torch.from_numpy(cols["quality"].astype(np.int64)),
        text=encoder([str(t) for t in texts]),
        text_index=torch.from_numpy(text_index.astype(np.int64)),
        meta=meta,
        full_masks=cols["mask"].astype(bool) if keep_full else None,
        originals=cols["image"] if keep_full else None,
    )
