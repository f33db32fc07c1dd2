"""``ivm-ros bench node``: masking_node's own overhead and frame loss, 640x480 at 30 Hz, two processes.

This process publishes frames (stamped with the publish time) and receives ``~/masked_image``; the node
runs in a child process with a given predictor (``keep_all`` by default: the node's cost alone).
Latency is receive time minus the stamp (one machine, one clock); overhead = latency - the node's own
predictor time (p50 from its diagnostics). Each Fast DDS configuration runs in turn, side by side:
``shipped`` (config/fastdds.xml) and ``default`` (Fast DDS defaults).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

from ivm_ros.benchutil import add_json_flag, emit_json, percentiles, print_table
from ivm_ros.paths import config_file


def _child_env(profile: str, domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if profile == "shipped":
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(config_file("fastdds.xml"))
    return env


def run_once(profile: str, model: str, seconds: float, rate: float, width: int, height: int, domain: int) -> dict:
    """Runs one configuration in a fresh child process pair and returns its numbers."""
    cmd = [
        sys.executable,
        "-m",
        "ivm_ros.ros.bench_node",
        "--child",
        "--profile",
        profile,
        "--model",
        model,
        "--seconds",
        str(seconds),
        "--rate",
        str(rate),
        "--size",
        f"{width}x{height}",
    ]
    out = subprocess.run(cmd, env=_child_env(profile, domain), capture_output=True, text=True, timeout=seconds + 90)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"bench child failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    import json

    return json.loads(lines[-1])


def _child(args: argparse.Namespace) -> int:
    """Runs in a process whose environment already selects the Fast DDS profile and domain."""
    import json

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from ivm_ros.ros import qos
    from ivm_ros.ros.conversions import array_to_image

    width, height = (int(v) for v in args.size.split("x"))
    node_cmd = [
        sys.executable,
        "-m",
        "ivm_ros.ros.masking_node",
        "--ros-args",
        "-p",
        f"model:={args.model}",
        "-p",
        "diagnostics_period:=0.5",
        "-r",
        "__node:=masking_node",
    ]
    node_proc = subprocess.Popen(node_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rclpy.init()
    node = rclpy.create_node("bench_node_client")
    pub = node.create_publisher(Image, "image_raw", qos.profile("sensor_data", 1))
    instr = node.create_publisher(String, "instruction", qos.latched())
    instr.publish(String(data="pick up the red block"))
    received: dict[int, float] = {}
    node_side: dict[str, float] = {}

    def on_image(msg: Image) -> None:
        received[msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = time.time_ns()

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            for kv in status.values:
                if kv.key in ("predictor_p50_ms", "mailbox_wait_p50_ms", "worker_p50_ms", "latency_p50_ms"):
                    node_side[kv.key] = float(kv.value) if kv.value != "n/a" else float("nan")

    node.create_subscription(Image, "masking_node/masked_image", on_image, qos.profile("reliable", 10))
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    template = array_to_image(frame, "rgb8")
    # wait for the node to come up and match both ways
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (pub.get_subscription_count() and len(received) > 0):
        template.header.stamp.sec, template.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
        pub.publish(template)
        executor.spin_once(timeout_sec=0.1)
    received.clear()
    sent: list[int] = []
    period = 1.0 / args.rate
    start = time.monotonic()
    next_t = start
    while time.monotonic() - start < args.seconds:
        now = time.monotonic()
        if now >= next_t:
            stamp = time.time_ns()
            template.header.stamp.sec, template.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            pub.publish(template)
            sent.append(stamp)
            next_t += period
        executor.spin_once(timeout_sec=max(0.0, min(next_t - time.monotonic(), 0.005)))
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    node_proc.terminate()
    node_proc.wait(timeout=20)
    latencies = [(received[s] - s) / 1e6 for s in sent if s in received]
    lat = percentiles(latencies)
    pred = node_side.get("predictor_p50_ms", float("nan"))
    result = {
        "sent": len(sent),
        "received": len(latencies),
        "lost": len(sent) - len(latencies),
        "latency_p50_ms": lat["p50"],
        "latency_p95_ms": lat["p95"],
        "predictor_p50_ms": pred,
        "overhead_p50_ms": round(lat["p50"] - pred, 3) if not np.isnan(pred) else float("nan"),
        "overhead_p95_ms": round(lat["p95"] - pred, 3) if not np.isnan(pred) else float("nan"),
        "node_wait_p50_ms": node_side.get("mailbox_wait_p50_ms", float("nan")),
        "node_worker_p50_ms": node_side.get("worker_p50_ms", float("nan")),
        "node_in_to_out_p50_ms": node_side.get("latency_p50_ms", float("nan")),
    }
    print(json.dumps(result))
    node.destroy_node()
    rclpy.shutdown()
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros bench node", description=__doc__)
    parser.add_argument("--model", default="keep_all")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--profiles", default="shipped,default", help="Fast DDS configurations to compare")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", default="shipped", help=argparse.SUPPRESS)
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    width, height = (int(v) for v in args.size.split("x"))
    rows = []
    for i, profile in enumerate(args.profiles.split(",")):
        res = run_once(profile, args.model, args.seconds, args.rate, width, height, domain=150 + (os.getpid() + i) % 60)
        rows.append({"fastdds": profile, **res})
    print(
        f"masking_node, {args.size} rgb8 at {args.rate:g} Hz for {args.seconds:g} s, predictor {args.model}, "
        "two processes"
    )
    print_table(rows, list(rows[0]))
    emit_json(args, {"bench": "node", "size": args.size, "rate_hz": args.rate, "model": args.model, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
