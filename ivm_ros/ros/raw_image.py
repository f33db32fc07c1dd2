"""sensor_msgs/Image -> (H, W, 3) uint8 RGB with NumPy only (no OpenCV), for processes that must not import
cv2 (the policy node runs beside Octo's pinned environment).

Validation follows :func:`ivm_ros.ros.conversions.image_to_array` (same reasons); the view is zero-copy
until a channel reorder or the grey -> RGB expansion needs a copy.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

#: encoding -> (channels, index of R, G, B in a pixel); mono replicates its one channel.
_LAYOUT = {
    "rgb8": (3, (0, 1, 2)),
    "rgba8": (4, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "8UC3": (3, (2, 1, 0)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
    "8UC1": (1, (0, 0, 0)),
}
ENCODINGS = tuple(_LAYOUT)


class ImageInvalid(ValueError):
    """An image that cannot be used. ``reason`` is a short stable key for counters."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def check_image(msg: Image, max_pixels: int = 0) -> None:
    """Raises :class:`ImageInvalid` for unknown encodings, zero or oversized frames (``max_pixels`` > 0),
    ``step`` shorter than a row, or a data length other than ``step * height``. Cheap: no pixel is read."""
    layout = _LAYOUT.get(msg.encoding)
    if layout is None:
        raise ImageInvalid("encoding", f"unsupported encoding {msg.encoding!r}; supported: {sorted(_LAYOUT)}")
    c = layout[0]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise ImageInvalid("size", f"zero size {w}x{h}")
    if max_pixels and h * w > max_pixels:
        raise ImageInvalid("size", f"{w}x{h} = {h * w} pixels exceeds max_pixels={max_pixels}")
    if step < w * c:
        raise ImageInvalid("step", f"step {step} < width*channels {w * c} for {msg.encoding}")
    if len(msg.data) != step * h:
        raise ImageInvalid("data_length", f"{len(msg.data)} bytes, expected step*height = {step}*{h} = {step * h}")


def image_to_rgb(msg: Image, max_pixels: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB view (rgb8) or copy (other encodings) of ``msg``; row padding and alpha dropped.
    Raises :class:`ImageInvalid` as :func:`check_image` does."""
    check_image(msg, max_pixels)
    c, rgb = _LAYOUT[msg.encoding]
    h, w = int(msg.height), int(msg.width)
    pixels = np.frombuffer(msg.data, dtype=np.uint8).reshape(h, int(msg.step))[:, : w * c].reshape(h, w, c)
    return pixels if (c, rgb) == (3, (0, 1, 2)) else pixels[..., list(rgb)]
