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


#: The profile variable each Fast DDS major version reads (2: Humble/Iron/Jazzy; 3: Kilted/Rolling, the PyPI wheels,
#: which warn that the old name is deprecated).
PROFILE_VAR = {2: "FASTRTPS_DEFAULT_PROFILES_FILE", 3: "FASTDDS_DEFAULT_PROFILES_FILE"}
FASTDDS_2_DISTROS = ("humble", "iron", "jazzy")


def fastdds_major(environ: Mapping[str, str]) -> int | None:
    """The Fast DDS major version this process loads: from ``ROS_DISTRO`` (what setup.bash sets), else from the
    installed ``ros-fastdds`` wheel, else None (unknown)."""
    distro = environ.get("ROS_DISTRO", "").lower()
    if distro:
        return 2 if distro in FASTDDS_2_DISTROS else 3
    try:
        from importlib.metadata import version

        return int(version("ros-fastdds").split(".")[0])
    except Exception:  # not installed from wheels, or an odd version string
        return None


def variables_for(major: int | None) -> list[str]:
    """The profile variable Fast DDS ``major`` reads; both when the version is unknown (None)."""
    return [PROFILE_VAR[major]] if major in PROFILE_VAR else list(PROFILE_VAR.values())


def profile_variables(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The environment variable(s) that give Fast DDS its XML profile in this ROS (see :func:`fastdds_major`)."""
    return variables_for(fastdds_major(environ))


def use_fastdds_profile() -> None:
    """Points Fast DDS at the shipped profile unless the user chose one; call before rclpy.init()."""
    names = profile_variables()
    if not any(os.environ.get(name) for name in names):
        for name in names:
            os.environ[name] = str(config_file("fastdds.xml"))
