"""The plain image-folder output of ``ivm-ros mask-bag --frames-dir DIR`` (what a training script reads without
ROS): per camera topic ``/a/b`` a folder ``DIR/a_b`` with ``masked/<log_time_ns>.png``, ``mask/<log_time_ns>.png``
(mono, 0..255 as applied) and ``frames.csv`` (one row per written frame: log_time_ns, stamp_ns, frame_id,
fail_safe_action, instruction)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import IO, Any

from ivm_ros.bags import BagError
from ivm_ros.bags.frames import to_bgr
from ivm_ros.pipeline import MaskingResult

COLUMNS = ("log_time_ns", "stamp_ns", "frame_id", "fail_safe_action", "instruction")


def topic_folder(topic: str) -> str:
    """``/camera/image_raw`` -> ``camera_image_raw``."""
    return "_".join(part for part in topic.split("/") if part) or "root"


class FrameFolder:
    """Writes PNGs and an index per camera topic under ``root`` (which must be missing or empty)."""

    def __init__(self, root: Path, topics: Any) -> None:
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise BagError(f"frames folder {root} exists and is not empty: choose a new path")
        self.root = root
        self._files: dict[str, IO[str]] = {}
        self._rows: dict[str, Any] = {}
        for topic in topics:
            folder = root / topic_folder(topic)
            (folder / "masked").mkdir(parents=True, exist_ok=True)
            (folder / "mask").mkdir(exist_ok=True)
            self._files[topic] = (folder / "frames.csv").open("w", newline="", encoding="utf-8")
            self._rows[topic] = csv.writer(self._files[topic])
            self._rows[topic].writerow(COLUMNS)

    def add(self, topic: str, log_time: int, stamp_ns: int, frame_id: str, result: MaskingResult,
            instruction: str) -> None:
        """Writes one frame's masked image and mask as ``<log_time>.png`` and its index row."""
        import cv2

        folder = self.root / topic_folder(topic)
        for sub, arr, enc in (("masked", result.masked, result.encoding), ("mask", result.mask, "mono8")):
            if not cv2.imwrite(str(folder / sub / f"{log_time}.png"), to_bgr(arr, enc)):
                raise BagError(f"cannot write {folder / sub / f'{log_time}.png'}")
        self._rows[topic].writerow((log_time, stamp_ns, frame_id, result.fail_safe_action, instruction))

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
