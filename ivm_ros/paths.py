"""Where the package's data files are: the source tree, the colcon share folder, or the venv's share/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "ivm_ros"
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def share_dir() -> Path:
    """The folder holding ``config/`` and ``launch/`` (source checkout first, then installs)."""
    if (_SOURCE_ROOT / "package.xml").is_file() and (_SOURCE_ROOT / "config").is_dir():
        return _SOURCE_ROOT
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # ament_index not installed or package not indexed
        return Path(sys.prefix) / "share" / PACKAGE


def config_file(name: str) -> Path:
    path = share_dir() / "config" / name
    if not path.is_file():
        raise FileNotFoundError(f"ivm_ros config file not found: {path}")
    return path


def shared_dir() -> Path:
    """The project's shared data (``../shared`` beside the checkout, or $IVM_ROS_SHARED)."""
    return Path(os.environ.get("IVM_ROS_SHARED", _SOURCE_ROOT.parent / "shared"))


def use_fastdds_profile() -> None:
    """Points Fast DDS at the shipped profile unless the user chose one; call before rclpy.init()."""
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_file("fastdds.xml")))
