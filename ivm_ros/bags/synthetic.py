"""Small rosbag2 files made with ``rosbags`` (MCAP or sqlite3), for the mask-bag tests and ``ivm-ros bench bag``.

A recording of a grey table: a red square slides left to right and a blue disc stays put. Topics:
``/camera/image_raw`` (Image rgb8), ``/wrist/image_raw/compressed`` (CompressedImage, JPEG), ``/instruction``
(std_msgs/String at the frame indices given) and ``/joint_states`` (sensor_msgs/JointState, one per frame). Header
stamps are 5 ms before each frame's log time (a camera's exposure time precedes the recorder's receive time).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

CAMERA, WRIST, INSTRUCTION, JOINTS = "/camera/image_raw", "/wrist/image_raw/compressed", "/instruction", "/joint_states"
START_NS = 1_700_000_000_000_000_000
STAMP_LAG_NS = 5_000_000


def scene(index: int, frames: int, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame ``index`` of ``frames``: grey, a red square moving right, a blue disc."""
    img = np.full((height, width, 3), 128, np.uint8)
    side = max(4, height // 4)
    x = int((width - side) * index / max(1, frames - 1))
    img[height // 2 - side // 2: height // 2 + side // 2, x: x + side] = (220, 30, 30)
    cv2.circle(img, (width * 3 // 4, height // 4), max(2, height // 8), (30, 30, 220), -1)
    return img


def write_bag(path: Path, storage: str = "mcap", frames: int = 10, size: tuple[int, int] = (64, 48),
              instructions: Sequence[tuple[int, str]] = ((0, "pick up the red block"),), fps: float = 30.0) -> None:
    """Writes the rosbag2 folder ``path`` (``storage`` mcap or sqlite3) with ``frames`` frames of ``size`` (W, H)
    per camera; each ``(i, text)`` of ``instructions`` is logged 1 ms before frame i."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.LATEST)
    t = store.types
    plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=store) for topic, msgtype in (
            (CAMERA, "sensor_msgs/msg/Image"), (WRIST, "sensor_msgs/msg/CompressedImage"),
            (INSTRUCTION, "std_msgs/msg/String"), (JOINTS, "sensor_msgs/msg/JointState"))}
        said = dict(instructions)
        for i in range(frames):
            log = START_NS + int(i * 1e9 / fps)
            if i in said:
                writer.write(conns[INSTRUCTION], log - 1_000_000,
                             store.serialize_cdr(t["std_msgs/msg/String"](data=said[i]), "std_msgs/msg/String"))
            stamp = log - STAMP_LAG_NS
            header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](
                sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000), frame_id="camera_optical")
            rgb = scene(i, frames, *size)
            image = t["sensor_msgs/msg/Image"](header=header, height=size[1], width=size[0], encoding="rgb8",
                                               is_bigendian=0, step=size[0] * 3, data=rgb.reshape(-1))
            writer.write(conns[CAMERA], log, store.serialize_cdr(image, "sensor_msgs/msg/Image"))
            jpeg = cv2.imencode(".jpg", rgb[..., ::-1])[1].reshape(-1)
            wrist = t["sensor_msgs/msg/CompressedImage"](header=header, format="rgb8; jpeg compressed bgr8", data=jpeg)
            writer.write(conns[WRIST], log + 100_000, store.serialize_cdr(wrist, "sensor_msgs/msg/CompressedImage"))
            joints = t["sensor_msgs/msg/JointState"](header=header, name=["j1"], position=np.array([0.01 * i]),
                                                     velocity=np.zeros(1), effort=np.zeros(1))
            writer.write(conns[JOINTS], log + 200_000, store.serialize_cdr(joints, "sensor_msgs/msg/JointState"))
