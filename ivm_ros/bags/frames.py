"""Image messages of a rosbag2 file (the ``rosbags`` library's message objects) <-> NumPy frames; no ROS.

In: ``sensor_msgs/msg/Image`` (8-bit encodings of :data:`ivm_ros.encodings.CHANNELS`; a zero-copy view of the
message buffer with the row padding stripped) and ``sensor_msgs/msg/CompressedImage`` (JPEG, PNG or any format
OpenCV decodes). Out: the same two types, built with a fixed typestore so every output bag carries the same
definitions. A frame that cannot be used raises :class:`~ivm_ros.image_payload.ImageRejected` (an
:class:`~ivm_ros.inputs.InputRejected`) with a short ``reason``
(the masking node's reasons: ``encoding``, ``size``, ``step``, ``data_length``, ``decode``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ivm_ros.image_payload import check_image_fields, decode_compressed, view_rows
from ivm_ros.inputs import InputRejected

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED)


def image_to_array(msg: Any, max_pixels: int = 0) -> tuple[np.ndarray, str]:
    """A rosbags ``sensor_msgs/msg/Image`` -> (H, W, C) uint8 view without row padding, and its encoding."""
    enc, h, w, step = msg.encoding, int(msg.height), int(msg.width), int(msg.step)
    c = check_image_fields(enc, h, w, step, len(msg.data), max_pixels)
    return view_rows(np.frombuffer(msg.data, np.uint8), h, w, step, c), enc


def compressed_to_array(msg: Any, max_pixels: int = 0) -> tuple[np.ndarray, str]:
    """A rosbags ``sensor_msgs/msg/CompressedImage`` -> decoded (H, W, C) uint8 and bgr8 / bgra8 / mono8 (JPEG
    and PNG sizes checked from their headers before decoding when ``max_pixels`` > 0)."""
    return decode_compressed(msg.data, msg.format, max_pixels)


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
