"""``ivm-ros bench node``: masking_node's own overhead and frame loss, 640x480 at 30 Hz, two processes.

This process is the camera and the receiver; the node runs in a child process with a given predictor
(``keep_all`` by default: the node's cost alone). The camera stamps each frame with the publish time and
publishes it serialized; the receiver takes ``~/masked_image`` serialized on its own thread (no executor in
the way) and reads only the stamp, so neither side's rclpy message conversion is counted (the receiver's is
reported apart, as ``rx_deserialize``). Latency is receive time minus the stamp (one machine, one clock);
overhead = latency - the node's predictor time (p50 from its diagnostics).

Per hop (p50s, from the node's diagnostics): ``camera_pub`` (stamp -> publish returned), ``to_node``
(stamp -> the node's callback: camera_pub + transport + take), ``node_wait`` (callback -> worker),
``node_worker`` (predictor, masking, publish; ``node_publish`` of it), ``node_in_out`` (callback -> published)
and ``to_rx`` (masked image handed to publish() -> received: publish + transport + take).

Each Fast DDS configuration (``shipped``: config/fastdds.xml; ``default``: Fast DDS defaults) and each node
I/O path (``raw``: serialized CDR in and out, the default; ``rclpy``: rclpy message conversion,
``raw_cdr:=false``) runs in a fresh process pair, side by side, with ratios rclpy/raw; ``relay`` is
the transport floor: the same topics and QoS through a node that only republishes each frame's bytes.
``node_cpu`` is the node process's CPU time (user + system) and ``node_faults`` its minor page faults per frame
sent while measuring (a 640x480 buffer page-faulted in anew costs ~225). ``lost_node_busy`` is how many frames
the node itself dropped because its worker was still busy (its ``dropped_busy`` counter, warm-up included); the
rest of ``lost`` was lost in transport.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from ivm_ros.commands.bench.common import add_json_flag, emit_json, percentiles, print_table, time_calls
from ivm_ros.paths import config_file

#: Node diagnostics the bench reads.
_NODE_KEYS = (
    "predictor_p50_ms",
    "mailbox_wait_p50_ms",
    "worker_p50_ms",
    "publish_p50_ms",
    "latency_p50_ms",
    "input_age_p50_ms",
    "output_age_p50_ms",
)
#: Node counters the bench reads (absent from diagnostics until first counted, so absent = 0).
_NODE_COUNTS = ("dropped_busy",)
IO_PATHS = ("raw", "rclpy")
#: Pseudo I/O path: a relay instead of masking_node (the transport floor).
RELAY = "relay"


def _child_env(profile: str, domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if profile == "shipped":
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(config_file("fastdds.xml"))
    return env


def run_once(
    profile: str, io: str, model: str, seconds: float, rate: float, width: int, height: int, domain: int
) -> dict:
    """Runs one configuration in a fresh child process pair and returns its numbers."""
    cmd = [sys.executable, "-m", "ivm_ros.commands.bench.node", "--child", "--profile", profile, "--io", io]
    cmd += ["--model", model, "--seconds", str(seconds), "--rate", str(rate), "--size", f"{width}x{height}"]
    out = subprocess.run(cmd, env=_child_env(profile, domain), capture_output=True, text=True, timeout=seconds + 90)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"bench child failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def _usage(pid: int) -> tuple[float, int]:
    """(user + system CPU seconds, minor page faults) of process ``pid`` so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan"), 0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[7])


def _stamp_ns(data: bytes) -> int:
    """Header stamp of a serialized little-endian sensor_msgs/Image (int32 sec, uint32 nanosec at byte 4)."""
    sec, nanosec = struct.unpack_from("<iI", data, 4)
    return sec * 1_000_000_000 + nanosec


def _node_command(io: str, model: str) -> list[str]:
    """The node under test: a relay (the transport floor) or masking_node with the given predictor and I/O path."""
    if io == RELAY:
        return [sys.executable, "-m", "ivm_ros.commands.bench.node", "--relay"]
    cmd = [sys.executable, "-m", "ivm_ros.ros.masking_node", "--ros-args", "-p", f"model:={model}"]
    cmd += ["-p", "diagnostics_period:=0.5", "-p", f"raw_cdr:={str(io == 'raw').lower()}"]
    return cmd + ["-r", "__node:=masking_node"]


class _Receiver:
    """The client's receiving side: receive time per frame stamp, the last frame's bytes, the node's diagnostics."""

    def __init__(self) -> None:
        self.received: dict[int, int] = {}
        self.last: list[bytes] = []
        self.node_side: dict[str, float] = {}

    def on_image(self, data: bytes) -> None:
        self.received[_stamp_ns(data)] = time.time_ns()
        self.last[:] = [data]

    def on_diag(self, msg) -> None:  # diagnostic_msgs/DiagnosticArray
        for status in msg.status:
            for kv in status.values:
                if kv.key in _NODE_KEYS or kv.key in _NODE_COUNTS:
                    self.node_side[kv.key] = float(kv.value) if kv.value != "n/a" else float("nan")


def _child(args: argparse.Namespace) -> int:
    """Runs in a process whose environment already selects the Fast DDS profile and domain."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from ivm_ros.ros import qos
    from ivm_ros.ros.cdr import serialize_image
    from ivm_ros.ros.dedicated import DedicatedSubscription
    from ivm_ros.runtime import tune_malloc

    tune_malloc()  # the camera's own publish: ~2.0 -> ~0.6 ms p50 here (runtime.tune_malloc)
    width, height = (int(v) for v in args.size.split("x"))
    cmd = _node_command(args.io, args.model)
    node_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rclpy.init()
    node = rclpy.create_node("bench_node_client")
    pub = node.create_publisher(Image, "image_raw", qos.profile("sensor_data", 1))
    instr = node.create_publisher(String, "instruction", qos.latched())
    instr.publish(String(data="pick up the red block"))
    rx = _Receiver()
    receiver = DedicatedSubscription(
        node, Image, "masking_node/masked_image", rx.on_image, qos.profile("reliable", 10), raw=True, name="bench_rx"
    )
    node.create_subscription(DiagnosticArray, "/diagnostics", rx.on_diag, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)

    def publish() -> int:
        stamp = time.time_ns()
        pub.publish(serialize_image(frame, "rgb8", *divmod(stamp, 1_000_000_000), "camera"))
        return stamp

    _wait_until_matched(executor, publish, lambda: bool(pub.get_subscription_count() and rx.received))
    rx.received.clear()
    sent, camera_pub, usage = _camera_loop(executor, publish, node_proc.pid, args.rate, args.seconds)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    node_proc.terminate()
    node_proc.wait(timeout=20)
    receiver.destroy()
    print(json.dumps(_child_result(args.io, rx, sent, camera_pub, usage)))
    node.destroy_node()
    rclpy.shutdown()
    return 0


def _wait_until_matched(executor, publish: Callable[[], int], matched: Callable[[], bool]) -> None:
    """Publishes and spins until the node is up and matched both ways (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not matched():
        publish()
        executor.spin_once(timeout_sec=0.1)


def _camera_loop(
    executor, publish: Callable[[], int], pid: int, rate: float, seconds: float
) -> tuple[list[int], list[float], tuple[float, int]]:
    """Publishes at ``rate`` Hz for ``seconds``, spinning in between. Returns the stamps sent, each publish's
    duration (ms) and the node process's (CPU seconds, minor faults) used meanwhile."""
    sent: list[int] = []
    camera_pub: list[float] = []
    period = 1.0 / rate
    cpu_start, faults_start = _usage(pid)
    start = time.monotonic()
    next_t = start
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now >= next_t:
            stamp = publish()
            camera_pub.append((time.time_ns() - stamp) / 1e6)
            sent.append(stamp)
            next_t += period
        executor.spin_once(timeout_sec=max(0.0, min(next_t - time.monotonic(), 0.005)))
    cpu_end, faults_end = _usage(pid)
    return sent, camera_pub, (cpu_end - cpu_start, faults_end - faults_start)


def _child_result(
    io: str, rx: _Receiver, sent: list[int], camera_pub: list[float], usage: tuple[float, int]
) -> dict[str, float | int]:
    """One configuration's numbers: loss, end-to-end latency, overhead and the per-hop split."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    latencies = [(rx.received[s] - s) / 1e6 for s in sent if s in rx.received]
    lat = percentiles(latencies)
    deser = time_calls(lambda: deserialize_message(rx.last[0], Image), 30) if rx.last else np.array([np.nan])
    side = {k: rx.node_side.get(k, float("nan")) for k in _NODE_KEYS}
    pred = 0.0 if io == RELAY else side["predictor_p50_ms"]
    cpu, faults = usage
    return {
        "sent": len(sent),
        "received": len(latencies),
        "lost": len(sent) - len(latencies),
        "lost_node_busy": float("nan") if io == RELAY else int(rx.node_side.get("dropped_busy", 0)),
        "latency_p50_ms": lat["p50"],
        "latency_p95_ms": lat["p95"],
        "predictor_p50_ms": pred,
        "overhead_p50_ms": round(lat["p50"] - pred, 3),
        "overhead_p95_ms": round(lat["p95"] - pred, 3),
        "camera_pub_p50_ms": round(float(np.median(camera_pub)), 3),
        "to_node_p50_ms": side["input_age_p50_ms"],
        "node_wait_p50_ms": side["mailbox_wait_p50_ms"],
        "node_worker_p50_ms": side["worker_p50_ms"],
        "node_publish_p50_ms": side["publish_p50_ms"],
        "node_in_out_p50_ms": side["latency_p50_ms"],
        "to_rx_p50_ms": round(lat["p50"] - side["output_age_p50_ms"], 3),
        "rx_deserialize_p50_ms": round(float(np.median(deser)), 3),
        "node_cpu_ms_per_frame": round(cpu * 1e3 / max(len(sent), 1), 3),
        "node_faults_per_frame": round(faults / max(len(sent), 1), 1),
        "load": round(os.getloadavg()[0], 2),
    }


def _relay() -> int:
    """The transport floor: a node named masking_node that republishes each received frame's bytes unchanged
    (serialized in and out, input on its own thread, same QoS as masking_node), until SIGTERM/SIGINT."""
    import signal

    import rclpy
    from sensor_msgs.msg import Image

    from ivm_ros.ros import qos
    from ivm_ros.ros.dedicated import DedicatedSubscription
    from ivm_ros.runtime import tune_malloc

    tune_malloc()  # as masking_node's main() does
    rclpy.init()
    node = rclpy.create_node("masking_node")
    pub = node.create_publisher(Image, "~/masked_image", qos.profile("reliable", 1))
    sub = DedicatedSubscription(node, Image, "image_raw", pub.publish, qos.profile("sensor_data", 1), raw=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    sub.destroy()
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _ratios(rows: list[dict]) -> list[dict]:
    """rclpy/raw ratios of the main timings, per Fast DDS configuration and repeat."""
    keys = ("overhead_p50_ms", "overhead_p95_ms", "node_in_out_p50_ms", "node_cpu_ms_per_frame")
    out = []
    for row in rows:
        if row["io"] != "rclpy":
            continue
        base = next(
            (r for r in rows if r["io"] == "raw" and r["fastdds"] == row["fastdds"] and r["run"] == row["run"]), None
        )
        if base is None:
            continue
        ratio = {"fastdds": row["fastdds"], "run": row["run"]}
        ratio.update({k.split("_ms")[0] + "_x": round(row[k] / base[k], 2) if base[k] else float("nan") for k in keys})
        out.append(ratio)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros bench node", description=__doc__)
    parser.add_argument("--model", default="keep_all")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--profiles", default="shipped,default", help="Fast DDS configurations to compare")
    parser.add_argument(
        "--io",
        default=",".join((*IO_PATHS, RELAY)),
        help="node I/O paths to compare: raw, rclpy; 'relay' is the transport floor (a node that only "
        "republishes each frame's bytes)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of every configuration, interleaved")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--relay", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile", default="shipped", help=argparse.SUPPRESS)
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.relay:
        return _relay()
    if args.child:
        return _child(args)
    width, height = (int(v) for v in args.size.split("x"))
    ios = [io for io in args.io.split(",") if io]
    if any(io not in (*IO_PATHS, RELAY) for io in ios):
        parser.error(f"--io takes {', '.join((*IO_PATHS, RELAY))}")
    rows = []
    for run in range(args.repeat):
        for i, profile in enumerate(args.profiles.split(",")):
            for j, io in enumerate(ios if run % 2 == 0 else ios[::-1]):  # alternate the order against drift
                domain = 150 + (os.getpid() + 7 * run + 3 * i + j) % 60
                res = run_once(profile, io, args.model, args.seconds, args.rate, width, height, domain)
                rows.append({"fastdds": profile, "io": io, "run": run, **res})
    rows.sort(key=lambda r: (r["fastdds"] != "shipped", r["run"], r["io"]))
    print(
        f"masking_node, {args.size} rgb8 at {args.rate:g} Hz for {args.seconds:g} s, predictor {args.model}, "
        "two processes (ms; load = 1-min load average)"
    )
    print_table(rows, list(rows[0]))
    ratios = _ratios(rows)
    if ratios:
        print("\nrclpy / raw (node I/O through rclpy message conversion vs serialized CDR)")
        print_table(ratios, list(ratios[0]))
    emit_json(
        args,
        {"bench": "node", "size": args.size, "rate_hz": args.rate, "model": args.model, "rows": rows, "ratios": ratios},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
