"""Two cameras, one instruction: one masking_node process per camera (as manipulation.launch.py cameras:=[...]
starts them, planned by ivm_ros/cameras.py), fed CALVIN expert frames at a fixed rate from this process; measures
per camera the frames lost (published - masked frames received), the nodes' own drops, end-to-end latency
(publish -> masked frame received here, p50/p95) and each node's CPU.

    .venv/bin/python tools/multi_camera_bench.py --rate 15 --seconds 30 --size 640x480 \\
        --camera-params "[{}, {}]" --json docs/multi_camera.json

Frames are rendered before the clock starts (tools/calvin_frames.py: the static camera and the gripper camera,
resized to --size) and replayed in a loop, stamped with the wall time at publication. Needs the `sim` extra and
../shared/calvin; set ROS_DOMAIN_ID to a private domain."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from calvin_frames import calvin_frames  # noqa: E402

from ivm_ros.cameras import CameraNode, plain_section, plan_cameras  # noqa: E402

CAMERAS = "[/cam_front/image_raw, /wrist/image_raw]"


def _start_nodes(cameras: list[CameraNode], model: str, tmp: Path) -> list[subprocess.Popen]:
    """One masking_node process per camera, with the shared config's parameters and the camera's own."""
    import yaml

    procs = []
    for cam in cameras:
        params = {**plain_section(str(ROOT / "config" / "masking_node.yaml")), "model": model}
        for extra in cam.parameters:
            params.update(extra if isinstance(extra, dict) else {})
        path = tmp / f"{cam.name}.yaml"
        path.write_text(yaml.safe_dump({cam.node: {"ros__parameters": params}}))
        cmd = [sys.executable, "-m", "ivm_ros.ros.masking_node", "--ros-args", "-r", f"__ns:={cam.namespace}",
               "--params-file", str(path), *[a for src, dst in cam.remappings for a in ("-r", f"{src}:={dst}")]]
        log = open(tmp / f"{cam.name}.log", "w")  # noqa: SIM115 (closed with the process)
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    return procs


class Rig:
    """This process's side: one publisher per camera, the instruction, the masked outputs and /diagnostics."""

    def __init__(self, cameras: list[CameraNode]) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from ivm_ros.ros import qos

        rclpy.init()
        self.node = rclpy.create_node("multi_camera_bench")
        self.cameras = cameras
        self.pubs = [self.node.create_publisher(Image, c.topic, qos.profile("sensor_data", 1)) for c in cameras]
        self.instruction = self.node.create_publisher(String, cameras[0].instruction, qos.latched())
        self.received: list[dict[int, float]] = [{} for _ in cameras]
        for i, cam in enumerate(cameras):
            self.node.create_subscription(Image, f"{cam.node}/masked_image", lambda data, i=i: self._got(i, data),
                                          qos.profile("reliable", 10), raw=True)
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _got(self, i: int, data: bytes) -> None:
        from ivm_ros.ros.cdr import parse_image

        now = time.time_ns()
        raw = parse_image(data)
        self.received[i][raw.sec * 1_000_000_000 + raw.nanosec] = now

    def _diag(self, msg) -> None:
        for s in msg.status:
            self.diagnostics[s.name.split(":")[0]] = {kv.key: kv.value for kv in s.values}

    def counter(self, cam: CameraNode, key: str) -> int:
        return int(float(self.diagnostics.get(cam.node, {}).get(key, 0)))

    def play(self, frames: list[list], rate: float, seconds: float) -> list[list[int]]:
        """Publishes frame k of every camera on each tick of ``rate`` Hz for ``seconds``; the stamps sent."""
        from ivm_ros.ros.cdr import serialize_image

        sent: list[list[int]] = [[] for _ in self.cameras]
        period, start = 1.0 / rate, time.monotonic()
        for k in range(int(seconds * rate)):
            time.sleep(max(0.0, start + k * period - time.monotonic()))
            for i, pub in enumerate(self.pubs):
                stamp = time.time_ns()
                sec, nsec = divmod(stamp, 1_000_000_000)
                pub.publish(serialize_image(frames[i][k % len(frames[i])], "rgb8", sec, nsec, self.cameras[i].name))
                sent[i].append(stamp)
        return sent

    def close(self) -> None:
        import rclpy

        self._stop.set()
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown()


def _summary(rig: Rig, cam: CameraNode, sent: list[int], received: dict[int, float], before: dict[str, int],
             cpu: float) -> dict:
    got = [received[s] - s for s in sent if s in received]
    lat = np.array(got, dtype=np.float64) * 1e-6
    delta = {k: rig.counter(cam, k) - v for k, v in before.items()}
    return {"camera": cam.topic, "node": cam.node, "published": len(sent), "masked_received": len(got),
            "lost": len(sent) - len(got), "lost_fraction": round(1 - len(got) / max(1, len(sent)), 4),
            "node_frames_in": delta["frames_in"], "node_dropped_busy": delta["dropped_busy"],
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if got else None,
            "latency_p95_ms": round(float(np.percentile(lat, 95)), 1) if got else None,
            "node_cpu_percent": round(cpu, 1)}


def run(args: argparse.Namespace) -> dict:
    import psutil

    cameras = plan_cameras(args.cameras, args.camera_params)
    w, h = (int(v) for v in args.size.split("x"))
    instruction, static, gripper = calvin_frames(args.task, frames=args.frames, static_size=200)
    import cv2

    frames = [[cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in src] for src in (static, gripper)]
    with tempfile.TemporaryDirectory(prefix="ivm_multi_camera_") as tmp:
        procs = _start_nodes(cameras, args.model, Path(tmp))
        rig = Rig(cameras)
        try:
            rig.instruction.publish(__import__("std_msgs.msg", fromlist=["String"]).String(data=instruction))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not all(rig.received):  # nodes up, model loaded, frames flow
                rig.play(frames, args.rate, 1.0)
            if not all(rig.received):
                raise RuntimeError(f"no masked frames from every camera; logs in {tmp}")
            rig.play(frames, args.rate, 3.0)  # warm-up
            time.sleep(1.5)  # a diagnostics period: counters as of the start
            before = [{k: rig.counter(c, k) for k in ("frames_in", "dropped_busy")} for c in cameras]
            watched = [psutil.Process(p.pid) for p in procs]
            for p in watched:
                p.cpu_percent(None)
            load_before = os.getloadavg()[0]
            sent = rig.play(frames, args.rate, args.seconds)
            cpu = [p.cpu_percent(None) for p in watched]
            time.sleep(1.5)  # the last frames arrive; the nodes publish their counters
            result = {"rate_hz": args.rate, "seconds": args.seconds, "size": args.size, "model": args.model,
                      "camera_params": args.camera_params, "instruction": instruction,
                      "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                      "cpus": os.cpu_count(),
                      "cameras": [_summary(rig, c, s, r, b, u) for c, s, r, b, u in
                                  zip(cameras, sent, rig.received, before, cpu, strict=True)]}
        finally:
            rig.close()
            for p in procs:
                p.send_signal(2)
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", default=CAMERAS)
    parser.add_argument("--camera-params", default="", help="as the launch argument, e.g. \"[{}, {model: keep_all}]\"")
    parser.add_argument("--model", default="lite")
    parser.add_argument("--rate", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="640x480", help="WxH of both cameras' frames")
    parser.add_argument("--task", default="lift_red_block_table")
    parser.add_argument("--frames", type=int, default=90, help="frames rendered per camera (replayed in a loop)")
    parser.add_argument("--json", type=Path, help="append the result to this JSON list")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=1))
    if args.json:
        runs = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps([*runs, result], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
