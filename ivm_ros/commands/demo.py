"""``ivm-ros demo``: a real photo through the real masking node, every mode, saved as one picture.

Starts masking_node in this process with a camera-like publisher of ../shared/images/robot.jpg (the IVM
release's WidowX photo) and the paper's instruction, switches the node's ``mode`` parameter at runtime, and
saves what the node published to ``out/demo/robot_modes.png``. The predictor is the node's default, ``lite``
(trained here on simulator frames only: on this real photo it shows the pipeline, not a useful mask).

Then runs every demo registered under the entry-point group ``ivm_ros.demos`` with ``--out`` (and ``--model``):
the simulator package registers ``sim``, simulator frames through sim_node -> masking_node.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ivm_ros.commands.bench.common import print_table
from ivm_ros.masking.config import MODES
from ivm_ros.paths import shared_dir, use_fastdds_profile

INSTRUCTION = "pick up the red cup and place it on the green pan"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivm-ros demo", description=__doc__)
    parser.add_argument("--image", type=Path, default=shared_dir() / "images" / "robot.jpg")
    parser.add_argument("--instruction", default=INSTRUCTION)
    parser.add_argument("--model", default=None, help="predictor (default: the masking node's default)")
    parser.add_argument("--out", type=Path, default=Path("out/demo"))
    parser.add_argument("--no-plugins", action="store_true", help="skip the demos of the ivm_ros.demos group")
    return parser


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    bgr = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if bgr is None:
        parser.error(f"cannot read {args.image}")
    use_fastdds_profile()
    results, rows, model = mask_every_mode(bgr, args.instruction, args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "robot_modes.png"
    _save_grid(bgr, results, args.instruction, model, path)
    print(
        f"masking_node on {args.image.name} ({bgr.shape[1]}x{bgr.shape[0]}), model {model!r}, "
        f"instruction {args.instruction!r}"
    )
    print_table(rows, list(rows[0]))
    print(f"saved {path}")
    return 0 if args.no_plugins else run_plugins(args)


def mask_every_mode(
    bgr: np.ndarray, instruction: str, model: str | None
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]], str]:
    """Runs masking_node and a camera in this process, switches the node through every mode at runtime and
    returns (what it published per mode, plus the last mask as ``"mask"``; one row of numbers per mode; the
    node's model)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from ivm_ros.ros import qos
    from ivm_ros.ros.conversions import array_to_image
    from ivm_ros.ros.masking_node import MaskingNode

    rclpy.init()
    overrides = [Parameter("model", value=model)] if model else []
    node = MaskingNode(parameter_overrides=overrides)
    client = rclpy.create_node("ivm_demo_camera")
    pub = client.create_publisher(Image, "image_raw", qos.profile("sensor_data", 1))
    client.create_publisher(String, "instruction", qos.latched()).publish(String(data=instruction))
    outputs: dict[str, list[Image]] = {"masked_image": [], "mask": []}
    for name in outputs:
        client.create_subscription(Image, f"masking_node/{name}", outputs[name].append, qos.profile("reliable", 5))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(client)
    frame = array_to_image(bgr, "bgr8")
    frame.header.frame_id = "camera"
    results, rows = {}, []
    try:
        for mode in MODES:
            node.set_parameters([Parameter("mode", value=mode)])
            results[mode], mask = _collect(executor, lambda: pub.publish(frame), outputs)
            if results[mode] is None:
                raise RuntimeError(f"masking_node published nothing in mode {mode!r}: {node.stats()}")
            rows.append(_row(mode, mask, node.stats()))
        results["mask"] = cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR)
    finally:
        node.on_shutdown(None)
        executor.shutdown()
        node.destroy_node()
        client.destroy_node()
        rclpy.shutdown()
    return results, rows, node.model


def _collect(executor, publish: Callable[[], None], outputs: dict[str, list]) -> tuple[Any, Any]:
    """Frames already in flight were masked with the previous mode: drains them, then publishes until the node
    sent back two masked images and a mask (20 s at most). Returns the last (masked image, mask), or
    (None, None) if nothing came back."""
    from ivm_ros.ros.conversions import image_to_array

    drain = time.monotonic() + 0.3
    while time.monotonic() < drain:
        executor.spin_once(timeout_sec=0.05)
    for lst in outputs.values():
        lst.clear()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (len(outputs["masked_image"]) >= 2 and outputs["mask"]):
        publish()
        executor.spin_once(timeout_sec=0.05)
        executor.spin_once(timeout_sec=0.05)
    if not outputs["masked_image"]:
        return None, None
    masked = image_to_array(outputs["masked_image"][-1])[0].copy()
    mask = image_to_array(outputs["mask"][-1])[0][..., 0].copy()
    return masked, mask


def _row(mode: str, mask: np.ndarray, stats: dict) -> dict[str, Any]:
    """One line of the demo's table: share of the frame kept and the node's own numbers."""
    return {
        "mode": mode,
        "kept_%": round(100.0 * float((mask > 0).mean()), 1),
        "node_latency_p50_ms": stats["latency_p50_ms"],
        "predictor_p50_ms": stats["predictor_p50_ms"],
        "fail_safe_frames": stats.get("fail_safe", 0),
    }


def run_plugins(args: argparse.Namespace) -> int:
    """Runs each ``ivm_ros.demos`` entry point as ``main(["--out", OUT, ("--model", M)])``; worst exit code."""
    from importlib.metadata import entry_points

    worst = 0
    for ep in sorted(entry_points(group="ivm_ros.demos"), key=lambda e: e.name):
        print(f"\n[demo] {ep.name} ({ep.value})")
        extra = ["--model", args.model] if args.model else []
        worst = max(worst, int(ep.load()(["--out", str(args.out), *extra]) or 0))
    return worst


def _save_grid(original: np.ndarray, results: dict[str, np.ndarray], instruction: str, model: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("input", original)] + list(results.items())
    cols = 4
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, img) in zip(axes.ravel(), panels):
        ax.imshow(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        ax.set_title(title)
    fig.suptitle(f"{instruction!r} — model {model}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
