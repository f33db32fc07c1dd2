"""The live view's screenshot for the docs: masking_node (model lite) + viewer_node (web) in one process, fed a
CALVIN expert episode at 10 Hz, photographed in headless Chromium after an instruction typed into the page.

    .venv/bin/python tools/live_view_shot.py docs/live_view.png [--chromium /usr/bin/chromium]

Needs the `sim` extra, ../shared/calvin, playwright (pip) and a Chromium (apt-get install chromium)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calvin_frames import calvin_frames  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--model", default="lite")
    args = parser.parse_args(argv)

    import rclpy
    from playwright.sync_api import sync_playwright
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from ivm_ros.ros import qos
    from ivm_ros.ros.conversions import array_to_image
    from ivm_ros.ros.masking_node import MaskingNode
    from ivm_ros.ros.viewer_node import ViewerNode

    instruction, frames, _ = calvin_frames("open_drawer", frames=90, static_size=320)
    rclpy.init()
    masking = MaskingNode(parameter_overrides=[Parameter("model", value=args.model)])
    viewer = ViewerNode(parameter_overrides=[Parameter("web_port", value=0), Parameter("rate", value=10.0)])
    camera = rclpy.create_node("camera")
    pub = camera.create_publisher(Image, "image_raw", qos.profile("sensor_data", 1))
    executor = SingleThreadedExecutor()
    for node in (masking, viewer, camera):
        executor.add_node(node)
    stop = threading.Event()
    threading.Thread(target=lambda: [executor.spin_once(timeout_sec=0.05) for _ in iter(stop.is_set, True)],
                     daemon=True).start()

    def play() -> None:
        i = 0
        while not stop.is_set():
            msg = array_to_image(frames[i % len(frames)], "rgb8")
            msg.header.frame_id = "static_camera"
            msg.header.stamp = camera.get_clock().now().to_msg()
            pub.publish(msg)
            i += 1
            stop.wait(0.1)

    threading.Thread(target=play, daemon=True).start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(viewer.url)
            page.fill("#instruction-input", instruction)
            page.click("#instruction-send")
            page.wait_for_function(f"document.getElementById('instruction').textContent === {instruction!r}",
                                   timeout=30000)
            page.wait_for_function("document.getElementById('diagnostics').textContent.includes('mask_predicted')",
                                   timeout=30000)
            time.sleep(3.0)  # frames masked for the typed instruction fill all three views
            page.screenshot(path=str(args.output), full_page=True)
            browser.close()
        print(f"{args.output}: {masking.stats()['frames_out']} frames masked, instruction {instruction!r}")
    finally:
        stop.set()
        time.sleep(0.2)
        masking.on_shutdown(None)
        viewer.on_shutdown()
        executor.shutdown()
        rclpy.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
