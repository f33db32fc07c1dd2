"""Image messages of a rosbag2 file (the ``rosbags`` library's message objects) <-> NumPy frames; no ROS.

In: ``sensor_msgs/msg/Image`` (8-bit encodings of :data:`ivm_ros.encodings.CHANNELS`; a zero-copy view of the
message buffer with the row padding stripped) and ``sensor_msgs/msg/CompressedImage`` (JPEG, PNG or any format
OpenCV decodes). Out: the same two types, built with a fixed typestore so every output bag carries the same
definitions. A frame that cannot be used raises :class:`~ivm_ros.inputs.InputRejected` with a short ``reason``
(the masking node's reasons: ``encoding``, ``size``, ``step``, ``data_length``, ``decode``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ivm_ros.encodings import CHANNELS
from ivm_ros.inputs import InputRejected

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED)


def image_to_array(msg: Any, max_pixels: int = 0) -> tuple[np.ndarray, str]:
    """A rosbags ``sensor_msgs/msg/Image`` -> (H, W, C) uint8 view without row padding, and its encoding."""
    enc, h, w, step, data = msg.encoding, int(msg.height), int(msg.width), int(msg.step), msg.data
    if enc not in CHANNELS:
        raise InputRejected("encoding", f"unsupported encoding {enc!r}; supported: {sorted(CHANNELS)}")
    c = CHANNELS[enc]
    if h == 0 or w == 0:
        raise InputRejected("size", f"zero size {w}x{h}")
    if max_pixels and h * w > max_pixels:
        raise InputRejected("size", f"{w}x{h} = {h * w} pixels exceeds max_pixels={max_pixels}")
    if step < w * c:
        raise InputRejected("step", f"step {step} < width*channels {w * c} for {enc}")
    if len(data) != step * h:
        raise InputRejected("data_length", f"{len(data)} bytes, expected step*height = {step}*{h} = {step * h}")
    flat = np.frombuffer(data, np.uint8)
    return flat.reshape(h, step)[:, : w * c].reshape(h, w, c), enc


def compressed_to_array(msg: Any, max_pixels: int = 0) -> tuple[np.ndarray, str]:
    """A rosbags ``sensor_msgs/msg/CompressedImage`` -> decoded (H, W, C) uint8 and bgr8 / bgra8 / mono8."""
    import cv2

    buf = np.frombuffer(msg.data, np.uint8)
    if buf.size == 0:
        raise InputRejected("data_length", "empty CompressedImage")
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputRejected("decode", f"cannot decode {buf.size} bytes of format {msg.format!r}")
    if arr.dtype != np.uint8:
        raise InputRejected("encoding", f"decoded {arr.dtype} image; only 8-bit images are supported")
    if max_pixels and arr.shape[0] * arr.shape[1] > max_pixels:
        raise InputRejected("size", f"{arr.shape[1]}x{arr.shape[0]} exceeds max_pixels={max_pixels}")
    if arr.ndim == 2:
        return arr[..., None], "mono8"
    return arr, {3: "bgr8", 4: "bgra8"}[arr.shape[2]]


def message_to_array(msg: Any, msgtype: str, max_pixels: int = 0) -> tuple[np.ndarray, str]:
    """Either image type -> (H, W, C) uint8 and its ROS encoding; raises InputRejected."""
    return (image_to_array if msgtype == IMAGE else compressed_to_array)(msg, max_pixels)


def compression_of(fmt: str) -> str:
    """``png`` when a CompressedImage ``format`` names PNG (lossless), else ``jpeg``."""
    return "png" if "png" in fmt.lower() else "jpeg"


def to_bgr(arr: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W, C) or (H, W) uint8 in rgb8 / bgr8 / mono8 -> what ``cv2.imwrite`` / ``imencode`` expect."""
    if encoding == "rgb8":
        return np.ascontiguousarray(arr[..., ::-1])
    return arr


class ImageMessages:
    """Builds output messages with one ``rosbags`` typestore (``typestore``: the types and their definitions)."""

    def __init__(self, typestore: Any) -> None:
        self.typestore = typestore
        types = typestore.types
        self._image, self._compressed = types[IMAGE], types[COMPRESSED]
        self._header, self._time = types["std_msgs/msg/Header"], types["builtin_interfaces/msg/Time"]

    def definition(self, msgtype: str) -> tuple[str, str]:
        """(message definition text, RIHS01 hash) of one of :data:`IMAGE_TYPES`, for a bag connection."""
        return self.typestore.generate_msgdef(msgtype, ros_version=2)[0], self.typestore.hash_rihs01(msgtype)

    def header(self, sec: int, nanosec: int, frame_id: str) -> Any:
        return self._header(stamp=self._time(sec=sec, nanosec=nanosec), frame_id=frame_id)

    def image(self, arr: np.ndarray, encoding: str, header: Any) -> memoryview:
        """(H, W, C) or (H, W) uint8 -> serialized ``sensor_msgs/msg/Image`` (CDR) with a tight ``step``."""
        h, w = arr.shape[:2]
        c = 1 if arr.ndim == 2 else arr.shape[2]
        flat = np.ascontiguousarray(arr).reshape(-1)
        msg = self._image(header=header, height=h, width=w, encoding=encoding, is_bigendian=0, step=w * c, data=flat)
        return self.typestore.serialize_cdr(msg, IMAGE)

    def compressed(self, arr: np.ndarray, encoding: str, header: Any, kind: str) -> memoryview:
        """(H, W, C) uint8 -> serialized ``sensor_msgs/msg/CompressedImage`` (``kind`` jpeg or png), with the
        ``format`` image_transport writes (``"bgr8; jpeg compressed bgr8"``)."""
        import cv2

        out_enc = "mono8" if encoding == "mono8" or arr.ndim == 2 else "bgr8"
        ok, buf = cv2.imencode(".png" if kind == "png" else ".jpg", to_bgr(arr, encoding))
        if not ok:
            raise InputRejected("encode", f"cannot encode a {arr.shape} frame as {kind}")
        msg = self._compressed(header=header, format=f"{out_enc}; {kind} compressed {out_enc}", data=buf.reshape(-1))
        return self.typestore.serialize_cdr(msg, COMPRESSED)
