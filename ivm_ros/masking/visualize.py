"""The debug view: the input with the kept region tinted and outlined."""

from __future__ import annotations

import cv2
import numpy as np


def debug_overlay(
    image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (0, 255, 0), alpha: float = 0.35
) -> np.ndarray:
    """(H, W, 3) uint8 image and (H, W) uint8 mask (0..255) -> (H, W, 3) uint8 view for humans.

    The kept region is tinted with ``color`` (image channel order) at strength ``alpha`` and outlined.
    """
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    tint = np.empty_like(image)
    tint[:] = color
    weight = mask.astype(np.float32) * (alpha / 255.0)
    out = cv2.blendLinear(image, tint, 1.0 - weight, weight)
    contours, _ = cv2.findContours((mask >= 128).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, color, thickness=max(1, image.shape[0] // 240))
    return out
