"""A straightforward NumPy/OpenCV implementation of IVM's post-processing, one image at a time.

This is the yardstick: it follows the release's steps literally (float64 masks, per-image OpenCV calls,
NumPy compositing) and is what :mod:`ivm_ros.masking.apply` must agree with to within one grey level and
what ``ivm-ros bench masking`` compares speed against. Not used at run time.
"""

from __future__ import annotations

import cv2
import numpy as np

from ivm_ros.masking.config import MaskingConfig, kernel_size


def reference_mask(image: np.ndarray, prob: np.ndarray, cfg: MaskingConfig) -> tuple[np.ndarray, np.ndarray, bool]:
    """One image.

    Args:
        image: (H, W, 3) uint8.
        prob: (h, w) float probabilities.
    Returns:
        (masked image uint8, soft mask float64 (H, W) in [0, 1], fail_safe flag).
    """
    h, w = image.shape[:2]
    if prob.shape != (h, w):
        prob = cv2.resize(prob.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    prob = prob.astype(np.float32)
    mask = prob > cfg.threshold
    fail_safe = bool(cfg.fail_safe != "off" and mask.sum() == 0)
    if fail_safe and cfg.fail_safe == "release":  # the release's lines, as written
        if cfg.threshold > prob.max():
            prob = prob + cfg.threshold
        mask = prob > cfg.threshold
    elif fail_safe:
        mask = np.ones_like(mask)
    mask = mask.astype(np.uint8)
    kd = kernel_size(h, cfg.dilate_ratio)
    if kd > 1:
        mask = cv2.dilate(mask, np.ones((kd, kd), np.uint8))
    keep = mask.copy()
    mask = mask.astype(np.float64)
    kf = kernel_size(h, cfg.feather_ratio)
    if kf > 1:
        mask = cv2.GaussianBlur(mask, (kf, kf), 0)
    if cfg.crop_mode == "release":  # the release crops to the feathered mask's support
        keep = mask > 0
    if cfg.mode == "highlight":
        mask = cfg.highlight_alpha + (1 - cfg.highlight_alpha) * mask
    m = mask[..., None]
    if cfg.mode in ("overlay", "highlight"):
        out = image * m + np.array(cfg.fill_color) * (1 - m)
    elif cfg.mode == "blur":
        kb = kernel_size(h, cfg.blur_ratio)
        blurred = cv2.GaussianBlur(image, (kb, kb), 0) if kb > 1 else image
        out = image * m + blurred * (1 - m)
    elif cfg.mode == "gray":
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
        out = image * m + gray * (1 - m)
    else:  # crop
        out = image.astype(np.float64)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    if cfg.crops and keep.any():
        ys, xs = np.nonzero(keep)
        out = out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        if cfg.resizes_crop:
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
    return out, mask, fail_safe
