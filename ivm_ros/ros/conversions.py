"""sensor_msgs Image / CompressedImage <-> NumPy arrays, validated, without per-pixel Python; actions ->
geometry_msgs/TwistStamped, std_msgs/Float64 (gripper) and Float64MultiArray.

Incoming data is viewed, not copied (``np.frombuffer`` over the message buffer); outgoing data is written
with ``arr.tobytes()``: assigning an ndarray or a memoryview to ``msg.data`` costs 24-43 ms per frame in
rclpy (DESIGN.md). All encodings here are 8 bits per channel, so ``is_bigendian`` does not change the
bytes and is accepted either way.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Float64, Float64MultiArray, Header, MultiArrayDimension, MultiArrayLayout

from ivm_ros.encodings import CHANNELS
from ivm_ros.image_payload import (  # noqa: F401  (re-exported: nodes and tests import them from here)
    JPEG_MAX_MARKERS,
    JPEG_SOF_MARKERS,
    PNG_SIGNATURE,
    ImageRejected,
    check_compressed_header,
    check_image_fields,
    decode_compressed,
    view_rows,
)
from ivm_ros.policies.base import ACTION_LABELS


def image_to_array(msg: Image, max_pixels: int = 0) -> tuple[np.ndarray, str]:
    """Zero-copy view of an Image as (H, W, C) uint8, with the row padding (``step``) stripped.

    Returns the view and its encoding. Raises :class:`ImageRejected` as :func:`check_image_fields` does.
    """
    enc, h, w, step = msg.encoding, int(msg.height), int(msg.width), int(msg.step)
    c = check_image_fields(enc, h, w, step, len(msg.data), max_pixels)
    return view_rows(np.frombuffer(msg.data, dtype=np.uint8), h, w, step, c), enc


def compressed_to_array(msg: CompressedImage, max_pixels: int = 0) -> tuple[np.ndarray, str]:
    """Decodes a CompressedImage to (H, W, C) uint8 and its encoding (bgr8/bgra8/mono8): see
    :func:`~ivm_ros.image_payload.decode_compressed`. Raises :class:`ImageRejected`."""
    return decode_compressed(msg.data, msg.format, max_pixels)


def array_to_image(arr: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """(H, W, C) or (H, W) uint8 -> Image with a tight ``step``; the header is copied (stamp, frame_id)."""
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8, got {arr.dtype}")
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    if CHANNELS.get(encoding) != c:
        raise ValueError(f"{c}-channel array cannot be encoded as {encoding!r}")
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step = h, w, encoding, 0, w * c
    msg.data = arr.tobytes()
    return msg


def array_to_compressed(
    arr: np.ndarray, encoding: str, header: Header | None = None, fmt: str = "jpeg"
) -> CompressedImage:
    """(H, W, C) uint8 -> CompressedImage (``fmt`` "jpeg" or "png"), for tests and bag tools."""
    import cv2

    bgr = arr if encoding in ("bgr8", "mono8") else cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", bgr)
    if not ok:
        raise ValueError(f"cannot encode {arr.shape} as {fmt}")
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format, msg.data = fmt, buf.tobytes()
    return msg


# ------------------------------------------------------------------------------------------------ actions

#: Labels of the 7 action values, in the layout of every ``~/action`` message.
ACTION_LAYOUT = MultiArrayLayout(
    dim=[MultiArrayDimension(label="action: " + ",".join(ACTION_LABELS), size=len(ACTION_LABELS),
                             stride=len(ACTION_LABELS))],
    data_offset=0,
)


def action_to_array(action: np.ndarray) -> Float64MultiArray:
    """(7,) action ``dx dy dz droll dpitch dyaw gripper`` -> Float64MultiArray with a labelled layout."""
    return Float64MultiArray(layout=ACTION_LAYOUT, data=[float(v) for v in action])


def action_to_twist(action: np.ndarray, scale_per_second: np.ndarray, header: Header) -> TwistStamped:
    """(7,) action -> TwistStamped: linear = ``action[:3] * scale_per_second[:3]`` (m/s), angular =
    ``action[3:6] * scale_per_second[3:6]`` (rad/s); ``scale_per_second`` (6,) is metres / radians per action
    unit times the control rate. The gripper value is not part of a twist."""
    lin, ang = action[:3] * scale_per_second[:3], action[3:6] * scale_per_second[3:6]
    twist = TwistStamped(header=header)
    twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z = (float(v) for v in lin)
    twist.twist.angular.x, twist.twist.angular.y, twist.twist.angular.z = (float(v) for v in ang)
    return twist


def gripper_command(action: np.ndarray) -> Float64:
    """The gripper value of a (7,) action (> 0 open) as std_msgs/Float64."""
    return Float64(data=float(action[6]))
