"""Image encodings (ROS names) and the channel handling the nodes need; NumPy (OpenCV on use), no ROS."""

from __future__ import annotations

import numpy as np

#: Supported encodings -> channels.
CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3}
#: Encoding of the masked output for each input encoding (alpha dropped, channel order kept).
OUTPUT_ENCODING = {
    "rgb8": "rgb8",
    "bgr8": "bgr8",
    "rgba8": "rgb8",
    "bgra8": "bgr8",
    "mono8": "mono8",
    "8UC1": "mono8",
    "8UC3": "bgr8",
}
#: Luma weights in each 3-channel output's channel order (BT.601).
LUMA = {"rgb8": (0.299, 0.587, 0.114), "bgr8": (0.114, 0.587, 0.299), "mono8": (0.299, 0.587, 0.114)}


def to_output(arr: np.ndarray, encoding: str) -> tuple[np.ndarray, str]:
    """Drops alpha: (H, W, C) in ``encoding`` -> (H, W, 1|3) view and the output encoding."""
    out_enc = OUTPUT_ENCODING[encoding]
    return (arr[..., :3] if arr.shape[2] == 4 else arr), out_enc


def to_rgb(arr: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W, C) uint8 in ``encoding`` -> contiguous (H, W, 3) uint8 RGB (the predictors' input)."""
    if encoding in ("rgb8",):
        return np.ascontiguousarray(arr)
    import cv2  # here, not at module level: ivm_ros.ros.conversions (and so the policy node) imports this module

    if encoding == "rgba8":
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGBA2RGB)
    if encoding in ("bgr8", "8UC3"):
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_BGR2RGB)
    if encoding == "bgra8":
        return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_GRAY2RGB)
