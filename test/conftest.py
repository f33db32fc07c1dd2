"""Test-wide ROS isolation: a private domain, localhost-only discovery, logs in a temp folder, and the
shipped Fast DDS profile. Set before rclpy is imported anywhere.

The domain is this run's alone: support/ros_domain.py locks it for the life of the pytest process (concurrent runs
on this machine never share one) and skips domains where a DDS participant already listens. Node processes a
test starts inherit it through the environment. IVM_ROS_TEST_DOMAIN=<id> forces an id (no lock, no check)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from support.ros_domain import claim_domain

ROOT = Path(__file__).resolve().parents[1]


def _test_domain() -> str:
    if os.environ.get("IVM_ROS_TEST_DOMAIN"):
        return os.environ["IVM_ROS_TEST_DOMAIN"]
    outer = os.environ.get("ROS_DOMAIN_ID", "")  # the developer's own ROS graph: never join it
    return str(claim_domain(exclude={int(outer)} if outer.isdigit() else set()))


os.environ["ROS_DOMAIN_ID"] = _test_domain()
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="ivm_ros_test_logs_"))
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(ROOT / "config" / "fastdds.xml")
os.environ.pop("ROS_PYTHON_CHECK_FIELDS", None)

import pytest  # noqa: E402


@pytest.fixture
def ros_context():
    """A fresh rclpy context for one test; shut down afterwards."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    if context.ok():
        rclpy.shutdown(context=context)
