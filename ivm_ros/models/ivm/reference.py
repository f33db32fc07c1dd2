"""The IVM-V1.0 release's own inference path, written out straight: the yardstick for the engine.

As the release's ``forward_batch``: PIL bicubic resize on the host, one sigmoid per frame copied to the host,
then NumPy/OpenCV post-processing (fail-safe, threshold, rectangular dilation + Gaussian blur with
2*int(0.05*H)+1, composite with white). ``ivm-ros bench ivm`` compares the engine's speed against it; the
masking library's own literal reference is :mod:`ivm_ros.masking.reference`. Not used at run time.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ivm_ros.models.ivm.model import IMAGENET_MEAN, IMAGENET_STD, IVMModel
from ivm_ros.models.ivm.prompt_encoder import CLIP_MEAN, CLIP_STD


def release_postprocess(
    prob: np.ndarray, image: np.ndarray, threshold: float = 0.1, do_crop: bool = False
) -> np.ndarray:
    """The release's ``forward_batch`` tail on one frame (utils.py at 54e6288, line for line).

    (H, W) float32 probabilities + (H, W, 3) image -> float32 image, (H, W, 3), or with ``do_crop`` the crop
    to the feathered mask's support (``mask > 0``), not resized back.
    """
    mask = prob.astype(np.float32)[:, :, None].copy()
    if threshold > mask.max():  # "fail to find the target, reserve the full image" (see masking fail_safe release)
        mask += threshold
    mask = (mask > threshold).astype(np.float32)
    k = int(mask.shape[0] * 0.05) * 2 + 1
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)), iterations=1).astype(np.float32)
    mask = cv2.GaussianBlur(mask, (k, k), 0)[:, :, None]
    white = np.full_like(image, 255, dtype=np.float32)
    out = image.astype(np.float32) * mask + white * (1 - mask)
    ys, xs = np.where(mask[:, :, 0] > 0)
    if do_crop and ys.size:  # the release prints a warning and keeps the whole image when nothing is kept
        out = out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return out


def reference_forward(model: IVMModel, frames: np.ndarray, instructions: Sequence[str]) -> list[np.ndarray]:
    """Release-style path: PIL resizing on the host, per-frame sigmoid + NumPy/OpenCV post-processing."""
    s, c = model.arch.img_size, model.prompt_encoder.clip_size
    squares = [Image.fromarray(f).resize((s, s), Image.BICUBIC) for f in frames]
    sam = np.stack([np.asarray(q, np.float32) / 255.0 for q in squares])
    sam = (sam - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    clip = np.stack([np.asarray(q.resize((c, c), Image.BICUBIC), np.float32) / 255.0 for q in squares])
    clip = (clip - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
    dev = model.device
    sam_t = torch.from_numpy(sam).permute(0, 3, 1, 2).to(dev)
    clip_t = torch.from_numpy(clip).permute(0, 3, 1, 2).to(dev)
    ids, mask = model.prompt_encoder.tokenize(instructions, dev)
    with torch.no_grad():
        logits = model(sam_t, clip_t, ids, mask)
        logits = F.interpolate(logits.float(), (s, s), mode="bilinear", align_corners=False)
        out = []
        for lg, frame in zip(logits, frames):
            prob = torch.sigmoid(F.interpolate(lg[None], frame.shape[:2], mode="bilinear", align_corners=False))
            out.append(release_postprocess(prob[0, 0].cpu().numpy(), frame))
    return out
