"""``ivm-ros doctor`` over real topics: a camera publisher whose QoS does not match, one that does, none at all, and
a camera process on Fast DDS defaults; a missing package; the JSON line and the exit status.

(Named test_doctor_command.py: test/test_doctor.py holds the unit tests, and pytest cannot collect two test
modules of one basename from folders without __init__.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from sensor_msgs.msg import Image
from support.ros import Spinner

from ivm_ros.commands.cli import main
from ivm_ros.ros import qos
from ivm_ros.ros.conversions import array_to_image

ROOT = Path(__file__).resolve().parents[2]
#: what every graph test passes: short, and nothing heavy loaded
QUICK = ["--seconds", "1", "--no-load", "--model", "none", "--policy", "none", "--json"]


class CameraForTest(Node):
    """Publishes small stamped rgb8 frames on ``topic`` at ``rate_hz`` with QoS profile ``image_qos``."""

    def __init__(self, context, topic: str, image_qos: str, rate_hz: float = 20.0) -> None:
        super().__init__("doctor_test_camera", context=context)
        quiet = PublisherEventCallbacks(incompatible_qos=lambda event: None)  # the mismatch is the point
        self.publisher = self.create_publisher(Image, topic, qos.profile(image_qos, 10), event_callbacks=quiet)
        self.frame = np.zeros((48, 64, 3), np.uint8)
        self.create_timer(1.0 / rate_hz, self.publish)

    def publish(self) -> None:
        msg = array_to_image(self.frame, "rgb8")
        msg.header.stamp = self.get_clock().now().to_msg()
        self.publisher.publish(msg)


@pytest.fixture
def camera(ros_context):
    """``start(topic, image_qos)``: a CameraForTest spinning until the test ends."""
    made = []

    def start(topic: str, image_qos: str) -> CameraForTest:
        node = CameraForTest(ros_context, topic, image_qos)
        made.append((node, Spinner(ros_context, node)))
        return node

    yield start
    for node, spinner in made:
        spinner.close()
        node.destroy_node()


def _run(argv: list[str], capsys) -> tuple[int, dict, dict]:
    """Runs ``ivm-ros doctor argv``; returns the exit status, the JSON line, and the findings by check."""
    status = main(["doctor", *argv])
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    by_check: dict = {}
    for finding in report["findings"]:
        by_check.setdefault(finding["check"], finding)
    return status, report, by_check


def test_a_best_effort_camera_against_a_reliable_image_qos(camera, capsys):
    """The deliberate mismatch: the reliable subscription gets nothing, and the publishers check says so with the
    fix; with masking_node's default image_qos the same camera is fine."""
    topic = "/doctor_test/best_effort/image_raw"
    camera(topic, "sensor_data")
    status, report, found = _run(["--camera-topic", topic, "--image-qos", "reliable", *QUICK], capsys)
    assert status == 1 and report["level"] == "error"
    pub = found["publishers"]
    assert pub["level"] == "error" and "/doctor_test_camera" in pub["message"] and "best_effort" in pub["message"]
    assert "receives nothing" in pub["message"] and "image_qos:=sensor_data" in pub["advice"]
    assert report["probe"]["received"]["reliable"] == 0 and report["probe"]["received"]["best_effort"] > 0
    assert "RELIABILITY" in report["probe"]["incompatible"]["reliable"]  # DDS's own word for it
    assert "reliable 0.0 Hz" in found["rate"]["message"]
    assert "reliable gets nothing from a best-effort publisher" in found["rate"]["message"]

    status, report, found = _run(["--camera-topic", topic, *QUICK], capsys)
    assert found["publishers"]["level"] == "ok" and found["rate"]["level"] == "ok", report
    assert status == 0 and report["error"] == 0


def test_a_matching_camera_is_ok(camera, capsys):
    topic = "/doctor_test/reliable/image_raw"
    camera(topic, "reliable")
    status, report, found = _run(["--camera-topic", topic, *QUICK], capsys)
    assert status == 0, report
    assert [found[c]["level"] for c in ("transport", "discovery", "probe", "publishers", "rate", "camera side")] == \
        ["ok"] * 6
    probe = report["probe"]
    assert probe["received"]["reliable"] > 5 and probe["received"]["best_effort"] > 5
    assert 10 < probe["stamp_rate_hz"] < 30  # the camera's 20 Hz, from its stamps
    assert "cannot be read from the ROS graph" in found["camera side"]["message"]  # its node is in this process


def test_no_publisher_is_an_error_with_advice(capsys):
    status, report, found = _run(["--camera-topic", "/doctor_test/nobody/image_raw", "--discovery-seconds", "1",
                                  *QUICK], capsys)
    assert status == 1 and report["level"] == "error"
    assert found["publishers"]["level"] == "error" and "nobody publishes" in found["publishers"]["message"]
    assert "camera_topic:=" in found["publishers"]["advice"]
    assert "rate" not in found and report["probe"]["publishers"] == []


def test_the_text_report_has_one_line_per_check_and_a_summary(capsys):
    status = main(["doctor", "--no-graph", "--no-load", "--model", "none", "--policy", "none"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert status == 0
    assert lines[0].startswith("OK    transport: this shell: RMW ") and lines[-1].startswith("doctor: ")
    assert not lines[-1].startswith("{")  # no JSON without --json


def test_a_missing_package_names_the_install_command(monkeypatch, capsys):
    """transformers hidden from this process: the package check of the default model and loading a predictor that
    imports it both report the pip line and the rosdep key."""
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    status, _, found = _run(["--no-graph", "--no-load", "--policy", "none", "--json"], capsys)
    lite = found["model lite packages"]
    assert status == 1 and lite["level"] == "error" and "transformers" in lite["message"]
    assert "pip install transformers" in lite["advice"] and "python3-transformers-pip" in lite["advice"]

    double = "support.predictors:NeedsTransformersPredictorForTest"
    status, _, found = _run(["--no-graph", "--model", double, "--policy", "none", "--json"], capsys)
    loaded = found[f"model {double}"]
    assert status == 1 and loaded["level"] == "error" and "cannot load" in loaded["message"]
    assert loaded["advice"].startswith("pip install transformers")


def test_a_camera_process_on_fast_dds_defaults_loses_frames_and_doctor_says_why(capsys):
    """A real camera process (640x480 at 10 Hz) without the shipped profile, named on its command line as ros2
    launch names nodes: the probe (shipped profile, like masking_node) counts the loss, and the camera side is
    read from the process's environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("FASTDDS_DEFAULT_PROFILES_FILE",
                                                            "FASTRTPS_DEFAULT_PROFILES_FILE")}
    code = ("import sys, time, numpy as np, rclpy\nfrom rclpy.node import Node\nfrom sensor_msgs.msg import Image\n"
            "from ivm_ros.ros import qos\nfrom ivm_ros.ros.conversions import array_to_image\n"
            "rclpy.init(args=sys.argv)\nnode = Node('camera')\n"
            "pub = node.create_publisher(Image, '/doctor_test/defaults/image_raw', qos.profile('sensor_data', 10))\n"
            "frame = np.zeros((480, 640, 3), np.uint8)\nwhile True:\n"
            "    msg = array_to_image(frame, 'rgb8')\n"
            "    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 10**9)\n"
            "    pub.publish(msg)\n    time.sleep(0.1)\n")
    child = subprocess.Popen([sys.executable, "-c", code, "--ros-args", "-r", "__node:=doctor_test_far_camera"],
                             env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        status, report, found = _run(["--camera-topic", "/doctor_test/defaults/image_raw", *QUICK[:1], "2",
                                      *QUICK[2:]], capsys)
    finally:
        child.kill()
        child.wait()
    assert found["publishers"]["level"] == "ok"
    rate, side = found["rate"], found["camera side"]
    assert rate["level"] in ("warn", "error"), rate  # 0-3 of 20 frames arrived in runs here
    assert side["level"] == "warn" and f"pid {child.pid}" in side["message"] and "default profile" in side["message"]
    assert "export FASTDDS_DEFAULT_PROFILES_FILE=" in side["advice"] and "restart the camera" in side["advice"]
    assert status == (1 if rate["level"] == "error" else 0)
