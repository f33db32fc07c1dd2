"""masking_node across processes (the real executable) and under overload."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.parameter import Parameter
from support import TEST_ROOT
from support.ros import Probe, Spinner, stop_node_process, wait_for

from ivm_ros.ros.conversions import image_to_array
from ivm_ros.ros.masking_node import MaskingNode


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def test_masking_node_executable_in_its_own_process(ros_context):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TEST_ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [
        sys.executable,
        "-m",
        "ivm_ros.ros.masking_node",
        "--ros-args",
        "-p",
        "model:=support.predictors:CenterPredictorForTest",
        "-p",
        "dilate_ratio:=0.0",
        "-p",
        "feather_ratio:=0.0",
        "-r",
        "image_raw:=/cam/image",
        "-r",
        "__ns:=/robot",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = Probe(ros_context, prefix="/robot/masking_node")
    probe.image_pub = probe.create_publisher(
        type(probe.image_pub.msg_type()), "/cam/image", probe.image_pub.qos_profile
    )
    probe.instruction_pub = probe.create_publisher(
        type(probe.instruction_pub.msg_type()), "/robot/instruction", probe.instruction_pub.qos_profile
    )
    probe.listen("masked_image")
    spinner = Spinner(ros_context, probe)
    try:
        probe.instruct("pick up the block")
        img = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)

        # The first frames may overtake the latched instruction and pass through unmasked (documented).
        def masked() -> bool:
            probe.send(img, stamp_ns=5_000_000_007)
            got = probe.received["masked_image"]
            return bool(got) and bool((image_to_array(got[-1])[0][0, 0] == 255).all())

        assert wait_for(masked, 30, 0.1), "no masked output from the masking_node process"
        out = probe.received["masked_image"][-1]
        arr, enc = image_to_array(out)
        assert (out.header.stamp.sec, out.header.stamp.nanosec) == (5, 7)
        np.testing.assert_array_equal(arr[240, 320], img[240, 320])
        assert (arr[0, 0] == 255).all()
    finally:
        spinner.close()
        probe.destroy_node()
        stop_node_process(proc)


def test_overload_bounded_latency_counted_drops_flat_memory(ros_context):
    """60 Hz input, a 50 ms predictor: at most the predictor's pace out, every other frame counted as a drop,
    latency bounded by the predictor (no queue); then 1500 frames with flat memory. Counts are awaited, not
    assumed from a fixed time, so a busy machine only makes it slower."""
    node = MaskingNode(
        context=ros_context,
        parameter_overrides=[
            Parameter("model", value="support.predictors:SlowCenterPredictorForTest"),
            Parameter("model_config.delay_s", value=0.05),
        ],
    )
    probe = Probe(ros_context)
    probe.listen("masked_image", depth=1000)
    spinner = Spinner(ros_context, node, probe)
    try:
        assert wait_for(lambda: node.pipeline is not None and node._worker is not None)
        probe.instruct("anything")
        img = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
        assert wait_for(lambda: (probe.send(img), len(probe.received["masked_image"]) > 0)[1], 10, 0.05)
        base = node.stats()
        start, sent = time.monotonic(), 0

        def progressed() -> bool:  # a 60 Hz stream until the node has masked 40 frames and dropped 20
            nonlocal sent
            probe.send(img)
            sent += 1
            s = node.stats()
            return (s["frames_out"] - base["frames_out"] >= 40
                    and s.get("dropped_busy", 0) - base.get("dropped_busy", 0) >= 20)

        assert wait_for(progressed, 60, 1 / 60), node.stats()
        elapsed = time.monotonic() - start
        wait_for(lambda: False, 0.3)  # the frame being masked lands
        s = node.stats()
        frames_in = s["frames_in"] - base["frames_in"]
        out = s["frames_out"] - base["frames_out"]
        dropped = s.get("dropped_busy", 0) - base.get("dropped_busy", 0)
        assert out <= elapsed / 0.05 + 3, s  # never faster than the 50 ms predictor: it is the pace
        assert abs(frames_in - out - dropped) <= 2, s  # every frame is either published or counted as dropped
        # no queue: a frame waits at most for the one being masked, whatever the machine's load
        assert s["latency_p95_ms"] < 3 * s["predictor_p50_ms"] + 100, s

        probe.destroy_subscription(probe._subs.pop("masked_image"))  # the probe itself must not hoard frames
        probe.received["masked_image"].clear()
        node.pipeline.predictor.config.delay_s = 0.0
        in_before = node.stats()["frames_in"]
        assert wait_for(lambda: (probe.send(img), node.stats()["frames_in"] - in_before >= 500)[1], 60, 0.002)
        wait_for(lambda: False, 0.5)
        rss_before = _rss_mb()
        in_before = node.stats()["frames_in"]
        # ~400 Hz until the node has taken 1500 more frames (however long a busy machine needs)
        assert wait_for(lambda: (probe.send(img), node.stats()["frames_in"] - in_before >= 1500)[1], 120, 0.002)
        wait_for(lambda: False, 1.0)
        growth = _rss_mb() - rss_before
        received = node.stats()["frames_in"] - in_before
        assert growth < 30, f"memory grew {growth:.1f} MB over {received} frames"
    finally:
        spinner.close()
        node.on_shutdown(None)
        node.destroy_node()
        probe.destroy_node()


def test_shutdown_with_frames_in_flight_is_clean(ros_context):
    node = MaskingNode(
        context=ros_context,
        parameter_overrides=[Parameter("model", value="support.predictors:SlowCenterPredictorForTest")],
    )
    probe = Probe(ros_context)
    spinner = Spinner(ros_context, node, probe)
    assert wait_for(lambda: node._worker is not None)
    probe.instruct("anything")
    for _ in range(20):
        probe.send(np.zeros((48, 64, 3), np.uint8))
    spinner.close()
    node.on_shutdown(None)
    assert node._worker is None and node.pipeline is None
    node.destroy_node()
    probe.destroy_node()
    assert rclpy.ok(context=ros_context)


def test_bench_node_json(capsys):
    """``ivm-ros bench node`` end to end, briefly: both I/O paths and the relay floor, per-hop columns, one JSON
    object last."""
    import json

    from ivm_ros.commands.bench import node as bench_node

    assert bench_node.main(["--seconds", "1.5", "--profiles", "shipped", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["bench"] == "node" and [r["io"] for r in result["rows"]] == ["raw", "rclpy", "relay"]
    relay = result["rows"].pop()
    assert relay["received"] >= 0.9 * relay["sent"] and relay["overhead_p50_ms"] == relay["latency_p50_ms"]
    for row in result["rows"]:
        assert row["sent"] >= 40 and row["received"] >= 0.9 * row["sent"], row
        for key in ("overhead_p50_ms", "to_node_p50_ms", "node_in_out_p50_ms", "to_rx_p50_ms", "node_cpu_ms_per_frame"):
            assert row[key] == row[key], key  # measured, not NaN
        assert isinstance(row["lost_node_busy"], int) and row["lost_node_busy"] >= 0  # the node's own counter
    assert result["ratios"] and "overhead_p50_x" in result["ratios"][0]
    assert any(line.startswith("rclpy / raw") for line in lines)
