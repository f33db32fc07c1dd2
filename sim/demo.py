"""``ivm-ros sim-demo`` (also run by ``ivm-ros demo``): simulator frames masked by the shipped lite model,
through the real nodes.

sim_node (lockstep, paused after each reset) publishes the static camera and the task's CALVIN evaluation
sentence; masking_node (default model) masks the frame; this client resets the sim to a few tasks, clean and
under large distraction, and saves camera frame | predicted mask | masked observation per row to
``out/demo/sim_lite.png``. With the lite model it starts one masking node per lite checkpoint (``--checkpoints``,
default lite_v2 and lite_v3) on the same camera and instruction: one mask panel per checkpoint, the masked
observation of the last.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ivm_ros.paths import use_fastdds_profile

TASKS = ("lift_red_block_table", "open_drawer", "push_blue_block_left", "turn_on_lightbulb")
#: The lite checkpoints the demo shows side by side by default: the default lite_v2 and lite_v3 (hard cases).
COMPARED = ("lite_v2", "lite_v3")
Row = tuple[str, str, np.ndarray, list[np.ndarray], np.ndarray]  # level, instruction, frame, masks, masked frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros sim-demo", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--levels", default="none,large")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--model", default=None, help="predictor (default: the masking node's default)")
    parser.add_argument("--checkpoints", default=None,
                        help="comma-separated lite checkpoints (shipped names or files), one masking node each "
                             f"(default with the lite model: {','.join(COMPARED)}; another --model: its own)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    args = parser.parse_args(argv)
    use_fastdds_profile()

    if args.checkpoints is None:
        args.checkpoints = ",".join(COMPARED) if args.model in (None, "lite") else ""
    checkpoints = [c for c in args.checkpoints.split(",") if c] or [""]
    rig = DemoRig(args.model, checkpoints)
    rows: list[Row] = []
    try:
        rig.wait_until_matched()
        for level in [v for v in args.levels.split(",") if v]:
            for task in [t for t in args.tasks.split(",") if t]:
                frame, masks, masked_frame = rig.capture(task, level, args.seed)
                rows.append((level, rig.sim.env.instruction, frame, masks, masked_frame))
                kept = ", ".join(f"{100 * float((m > 127).mean()):.1f}%" for m in masks)
                print(f"[sim-demo] {task} ({level}): kept {kept} of the frame ({rig.label})")
    finally:
        rig.close()
    path = save_grid(rows, args.out / "sim_lite.png", rig.label)
    print(f"sim_node -> masking_node ({rig.label}) on {len(rows)} episodes; saved {path}")
    return 0


class DemoRig:
    """sim_node (lockstep, paused after each reset) + one masking_node per checkpoint ("": the model's default;
    with several, nodes ``masking_0``, ``masking_1``, ...) + a client recording the camera frames, masks and masked
    frames by stamp, all on one executor in this process (rclpy is imported here, not at module import, so
    ``--help`` works without ROS)."""

    def __init__(self, model: str | None, checkpoints: Sequence[str] = ("",)) -> None:
        import rclpy
        from ivm_ros_sim.ros.sim_node import SimNode
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import Image
        from std_srvs.srv import Trigger

        from ivm_ros.ros import qos
        from ivm_ros.ros.masking_node import MaskingNode

        rclpy.init()
        self.sim = SimNode(parameter_overrides=[
            Parameter("lockstep", value=True), Parameter("lockstep_timeout", value=0.0),
            Parameter("publish_gripper_camera", value=False), Parameter("seed_increment", value=0)])
        self.maskers = []
        for i, checkpoint in enumerate(checkpoints):
            overrides = [Parameter("model", value=model)] if model else []
            overrides += [Parameter("model_config.checkpoint", value=checkpoint)] if checkpoint else []
            name = ["-r", f"__node:=masking_{i}"] if len(checkpoints) > 1 else []
            self.maskers.append(MaskingNode(parameter_overrides=overrides,
                                            cli_args=["--ros-args", "-r", "image_raw:=camera/image_raw", *name]))
        self.masking = self.maskers[-1]
        self.label = ", ".join(f"{m.model} {c}".strip() for m, c in zip(self.maskers, checkpoints))
        self.client = rclpy.create_node("ivm_sim_demo")
        self.got: dict[str, dict[int, Image]] = {"camera": {}}
        self.client.create_subscription(Image, "camera/image_raw", self._keep("camera"), qos.profile("reliable", 5))
        # every node's mask, the last node's masked frame (the only one the picture shows)
        topics = [(f"mask{i}", f"{node.get_name()}/mask") for i, node in enumerate(self.maskers)]
        topics.append(("masked", f"{self.masking.get_name()}/masked_image"))
        for kind, topic in topics:
            self.got[kind] = {}
            self.client.create_subscription(Image, topic, self._keep(kind), qos.profile("reliable", 5))
        self.reset = self.client.create_client(Trigger, "sim_node/reset")
        self.executor = SingleThreadedExecutor()
        for node in (self.sim, *self.maskers, self.client):
            self.executor.add_node(node)

    def _keep(self, kind: str):
        return lambda msg: self.got[kind].__setitem__(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec, msg)

    def settle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.02)

    def wait_until_matched(self) -> None:
        """The sim pauses after each reset's single frame: let every subscription match before the first reset."""
        client = self.client
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
                client.count_subscribers("camera/image_raw") >= 1 + len(self.maskers)
                and all(client.count_publishers(f"{m.get_name()}/mask") >= 1 for m in self.maskers)
                and client.count_publishers(f"{self.masking.get_name()}/masked_image") >= 1):
            self.settle(0.05)
        self.settle(0.5)

    def capture(self, task: str, level: str, seed: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Resets the sim to (task, level, seed) and returns the camera frame, each node's mask and the last node's
        masked frame, all of one stamp.

        The reset's frame and its instruction travel on different topics: the first frame of a new task can be
        masked for the previous one. So the episode is reset again (same seed: the same frame) once masking_node
        holds the new instruction; a lost best-effort frame is replayed the same way."""
        from rclpy.parameter import Parameter

        from ivm_ros.ros.conversions import image_to_array

        self.sim.set_parameters([Parameter("task", value=task), Parameter("distraction", value=level),
                                 Parameter("seed", value=seed)])
        stamp = None
        for attempt in range(4):
            self._reset(task, level)
            if attempt == 0:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and any(m.stats()["instruction"] != self.sim.env.instruction
                                                          for m in self.maskers):
                    self.settle(0.05)
                continue
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and stamp is None:
                self.executor.spin_once(timeout_sec=0.05)
                every = set.intersection(*(set(v) for v in self.got.values()))
                stamp = max(every) if every else None
            if stamp is not None:
                break
        if stamp is None:
            raise RuntimeError(f"no masked frame for {task}/{level}: {self.masking.stats()}")
        masks = [image_to_array(self.got[f"mask{i}"][stamp])[0][..., 0].copy() for i in range(len(self.maskers))]
        return (image_to_array(self.got["camera"][stamp])[0].copy(), masks,
                image_to_array(self.got["masked"][stamp])[0].copy())

    def _reset(self, task: str, level: str) -> None:
        from std_srvs.srv import Trigger

        for kind in self.got.values():
            kind.clear()
        future = self.reset.call_async(Trigger.Request())
        self.executor.spin_until_future_complete(future, timeout_sec=60)
        if not future.done() or not future.result().success:
            raise RuntimeError(f"sim_node reset to {task}/{level} failed: {future.result()}")

    def close(self) -> None:
        import rclpy

        for node in self.maskers:
            node.on_shutdown(None)
        self.executor.shutdown()
        for node in (*self.maskers, self.client, self.sim):
            node.destroy_node()
        rclpy.shutdown()


def tinted(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: ``frame`` with the pixels where ``mask`` (H, W) uint8 is above 127 tinted orange."""
    tint = frame.copy()
    on = mask > 127
    tint[on] = (0.45 * tint[on] + 0.55 * np.array([255, 80, 0])).astype(np.uint8)
    return tint


def save_grid(rows: list[Row], path: Path, model: str) -> Path:
    """One row per episode: camera frame, each mask tinted on the frame, masked observation (RGB, upscaled x2)."""
    tiles = []
    for level, instruction, frame, masks, masked in rows:
        row = np.hstack([frame, *(tinted(frame, m) for m in masks), masked])
        row = cv2.resize(row, (row.shape[1] * 2, row.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
        bar = np.full((30, row.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, f"'{instruction}' | distraction {level} | {model}", (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.vstack([bar, row]))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(tiles), cv2.COLOR_RGB2BGR))
    return path
