"""Where the package's data files are: the source tree, the colcon share folder, or the venv's share/."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
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


def profile_variables(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The environment variable(s) that give Fast DDS its XML profile in this ROS: ``FASTRTPS_DEFAULT_PROFILES_FILE``
    for Fast DDS 2 (Humble, Iron, Jazzy), ``FASTDDS_DEFAULT_PROFILES_FILE`` for Fast DDS 3 (Kilted, Rolling, the
    PyPI wheels; it warns that the old name is deprecated), both when the version cannot be told."""
    from ivm_ros.doctor import PROFILE_VAR, fastdds_major

    major = fastdds_major(environ)
    return [PROFILE_VAR[major]] if major in PROFILE_VAR else list(PROFILE_VAR.values())


def use_fastdds_profile() -> None:
    """Points Fast DDS at the shipped profile unless the user chose one; call before rclpy.init()."""
    names = profile_variables()
    if not any(os.environ.get(name) for name in names):
        for name in names:
            os.environ[name] = str(config_file("fastdds.xml"))
