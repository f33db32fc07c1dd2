"""``ivm-ros sim-demo`` (also run by ``ivm-ros demo``): simulator frames masked by the shipped lite model,
through the real nodes.

sim_node (lockstep, paused after each reset) publishes the static camera and the task's CALVIN evaluation
sentence; masking_node (default model) masks the frame; this client resets the sim to a few tasks, clean and
under large distraction, and saves camera frame | predicted mask | masked observation per row to
``out/demo/sim_lite.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from ivm_ros.paths import use_fastdds_profile

TASKS = ("lift_red_block_table", "open_drawer", "push_blue_block_left", "turn_on_lightbulb")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivm-ros sim-demo", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--levels", default="none,large")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--model", default=None, help="predictor (default: the masking node's default)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    args = parser.parse_args(argv)
    use_fastdds_profile()

    import rclpy
    from ivm_ros_sim.ros.sim_node import SimNode
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from std_srvs.srv import Trigger

    from ivm_ros.ros import qos
    from ivm_ros.ros.conversions import image_to_array
    from ivm_ros.ros.masking_node import MaskingNode

    rclpy.init()
    sim = SimNode(parameter_overrides=[Parameter("lockstep", value=True), Parameter("lockstep_timeout", value=0.0),
                                       Parameter("publish_gripper_camera", value=False),
                                       Parameter("seed_increment", value=0)])
    overrides = [Parameter("model", value=args.model)] if args.model else []
    masking = MaskingNode(parameter_overrides=overrides, cli_args=["--ros-args", "-r", "image_raw:=camera/image_raw"])
    client = rclpy.create_node("ivm_sim_demo")
    got: dict[str, dict[int, Image]] = {"camera": {}, "masked": {}, "mask": {}}

    def keep(kind: str):
        return lambda msg: got[kind].__setitem__(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec, msg)

    client.create_subscription(Image, "camera/image_raw", keep("camera"), qos.profile("reliable", 5))
    client.create_subscription(Image, "masking_node/masked_image", keep("masked"), qos.profile("reliable", 5))
    client.create_subscription(Image, "masking_node/mask", keep("mask"), qos.profile("reliable", 5))
    reset = client.create_client(Trigger, "sim_node/reset")
    executor = SingleThreadedExecutor()
    for node in (sim, masking, client):
        executor.add_node(node)
    rows = []

    def settle(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.02)

    try:
        # The sim pauses after each reset's single frame: let every subscription match before the first reset.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (client.count_subscribers("camera/image_raw") >= 2
                                                    and client.count_publishers("masking_node/masked_image") >= 1):
            settle(0.05)
        settle(0.5)
        for level in [v for v in args.levels.split(",") if v]:
            for task in [t for t in args.tasks.split(",") if t]:
                sim.set_parameters([Parameter("task", value=task), Parameter("distraction", value=level),
                                    Parameter("seed", value=args.seed)])
                stamp = None
                # The reset's frame and its instruction travel on different topics: the first frame of a new task
                # can be masked for the previous one. So the episode is reset again (same seed: the same frame)
                # once masking_node holds the new instruction; a lost best-effort frame is replayed the same way.
                for attempt in range(4):
                    for kind in got.values():
                        kind.clear()
                    future = reset.call_async(Trigger.Request())
                    executor.spin_until_future_complete(future, timeout_sec=60)
                    if not future.done() or not future.result().success:
                        raise RuntimeError(f"sim_node reset to {task}/{level} failed: {future.result()}")
                    if attempt == 0:
                        deadline = time.monotonic() + 10
                        while time.monotonic() < deadline and masking.stats()["instruction"] != sim.env.instruction:
                            settle(0.05)
                        continue
                    deadline = time.monotonic() + 20
                    while time.monotonic() < deadline and stamp is None:
                        executor.spin_once(timeout_sec=0.05)
                        both = set(got["camera"]) & set(got["masked"]) & set(got["mask"])
                        stamp = max(both) if both else None
                    if stamp is not None:
                        break
                if stamp is None:
                    raise RuntimeError(f"no masked frame for {task}/{level}: {masking.stats()}")
                frame = image_to_array(got["camera"][stamp])[0].copy()
                mask = image_to_array(got["mask"][stamp])[0][..., 0].copy()
                masked_frame = image_to_array(got["masked"][stamp])[0].copy()
                rows.append((level, sim.env.instruction, frame, mask, masked_frame))
                print(f"[sim-demo] {task} ({level}): kept {100 * float((mask > 127).mean()):.1f}% of the frame")
    finally:
        masking.on_shutdown(None)
        executor.shutdown()
        for node in (masking, client, sim):
            node.destroy_node()
        rclpy.shutdown()
    path = save_grid(rows, args.out / "sim_lite.png", masking.model)
    print(f"sim_node -> masking_node (model {masking.model!r}) on {len(rows)} episodes; saved {path}")
    return 0


def save_grid(rows: list, path: Path, model: str) -> Path:
    """One row per episode: camera frame, mask tinted on the frame, masked observation (RGB, upscaled x2)."""
    tiles = []
    for level, instruction, frame, mask, masked in rows:
        tint = frame.copy()
        on = mask > 127
        tint[on] = (0.45 * tint[on] + 0.55 * np.array([255, 80, 0])).astype(np.uint8)
        row = np.hstack([frame, tint, masked])
        row = cv2.resize(row, (row.shape[1] * 2, row.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
        bar = np.full((30, row.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, f"'{instruction}' | distraction {level} | {model}", (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.vstack([bar, row]))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(tiles), cv2.COLOR_RGB2BGR))
    return path
