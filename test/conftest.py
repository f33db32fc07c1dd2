"""Test-wide ROS isolation: a private domain, localhost-only discovery, logs in a temp folder, and the
shipped Fast DDS profile. Set before rclpy is imported anywhere."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ["ROS_DOMAIN_ID"] = os.environ.get("IVM_ROS_TEST_DOMAIN", str(random.randint(50, 99)))
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
