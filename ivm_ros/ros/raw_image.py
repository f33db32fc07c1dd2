"""sensor_msgs/Image -> (H, W, 3) uint8 RGB with NumPy only (no OpenCV), for processes that must not import
cv2 (the policy node runs beside Octo's pinned environment).

Validation is :mod:`ivm_ros.ros.conversions`' (same reasons, :class:`ImageRejected`); the view is zero-copy
until a channel reorder or the grey -> RGB expansion needs a copy.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

from ivm_ros.ros.conversions import ImageRejected, check_image_fields, image_to_array

__all__ = ["ImageRejected", "check_image_message", "image_to_rgb"]

#: encoding -> index of R, G, B in a pixel; mono replicates its one channel.
_RGB_INDEX = {
    "rgb8": (0, 1, 2),
    "rgba8": (0, 1, 2),
    "bgr8": (2, 1, 0),
    "8UC3": (2, 1, 0),
    "bgra8": (2, 1, 0),
    "mono8": (0, 0, 0),
    "8UC1": (0, 0, 0),
}


def check_image_message(msg: Image, max_pixels: int = 0) -> None:
    """Raises :class:`ImageRejected` for unknown encodings, zero or oversized frames (``max_pixels`` > 0),
    ``step`` shorter than a row, or a data length other than ``step * height``. Cheap: no pixel is read."""
    check_image_fields(msg.encoding, int(msg.height), int(msg.width), int(msg.step), len(msg.data), max_pixels)


def image_to_rgb(msg: Image, max_pixels: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB view (rgb8) or copy (other encodings) of ``msg``; row padding and alpha dropped.
    Raises :class:`ImageRejected` as :func:`check_image_message` does."""
    pixels, encoding = image_to_array(msg, max_pixels)
    return pixels if encoding == "rgb8" else pixels[..., list(_RGB_INDEX[encoding])]
