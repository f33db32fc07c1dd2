"""viewer_node against a real masking_node (centre predictor double) on real topics: the Foxglove server seen by a
WebSocket client, and the web page driven in headless Chromium (a screenshot lands in the test's tmp_path)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter
from std_msgs.msg import String
from support.ros import Spinner, wait_for

from ivm_ros.ros import qos
from ivm_ros.ros.viewer_node import ViewerNode


def _scene(step: int, h: int = 240, w: int = 320) -> np.ndarray:
    """A table with three blocks; the red one slides so successive frames differ."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (70, 90, 120)
    img[h // 2:] = (150, 120, 90)
    x = 60 + (step * 4) % 120
    img[110:150, x:x + 40] = (220, 30, 30)
    img[150:180, 200:230] = (40, 60, 220)
    img[60:100, 240:290] = (230, 120, 200)
    return img


@contextmanager
def _frames(probe, period: float = 0.08):
    """Publishes moving frames from ``probe`` every ``period`` s while the block runs."""
    stop = threading.Event()

    def run() -> None:
        step = 0
        while not stop.is_set():
            probe.send(_scene(step), stamp_ns=time.time_ns(), frame_id="camera")
            step += 1
            stop.wait(period)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@contextmanager
def _viewer(ros_context, **params):
    node = ViewerNode(context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    spinner = Spinner(ros_context, node)
    try:
        yield node
    finally:
        spinner.close()
        node.on_shutdown()
        node.destroy_node()


def _chromium() -> str:
    for candidate in (os.environ.get("IVM_ROS_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    pytest.skip("no Chromium on PATH (Debian/Ubuntu: apt-get install chromium; or set IVM_ROS_CHROMIUM)")


def test_foxglove_viewer_serves_the_masking_topics(rig, ros_context):
    """ws:// clients see the camera, mask, masked image, instruction and diagnostics channels; a frame published on
    the camera topic comes back as a masked foxglove.CompressedImage; a client's instruction reaches the node."""
    pytest.importorskip("foxglove")
    pytest.importorskip("websockets")
    from support.foxglove_client import FoxgloveClient

    node, probe = rig(listen=())
    probe.instruct("pick up the red block")
    with _viewer(ros_context, viewer="foxglove", foxglove_port=0, rate=50.0) as viewer:
        client = FoxgloveClient(viewer.view.port)
        try:
            topics = {"/image_raw", "/masking_node/mask", "/masking_node/masked_image", "/instruction", "/diagnostics"}
            channels = client.wait_channels(topics)
            assert topics <= set(channels), sorted(channels)
            assert channels["/masking_node/mask"]["schemaName"] == "foxglove.CompressedImage"
            client.subscribe("/masking_node/masked_image", "/instruction", "/diagnostics")
            with _frames(probe):
                payload = client.next_message("/masking_node/masked_image", timeout=15)
                assert payload is not None and b"\xff\xd8" in payload and b"camera" in payload
                assert json.loads(client.next_message("/instruction", timeout=5)) == {"data": "pick up the red block"}
                diag = json.loads(client.next_message("/diagnostics", timeout=5))
                assert any("masking_node" in s["name"] for s in diag["status"])
            client.publish_json("/instruction", {"data": "open the drawer"})
            assert wait_for(lambda: node.stats()["instruction"] == "open the drawer", 10)
        finally:
            client.close()
        assert viewer.frames_shown["masked"] > 0 and viewer.rejected == 0


def test_web_viewer_in_headless_chromium(rig, ros_context, tmp_path):
    """The page shows camera | mask | masked image and the node's diagnostics; an instruction typed into its box
    is published on the instruction topic, the masking node takes it, and the page then shows it."""
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (uses the system Chromium)")

    node, probe = rig(listen=())
    heard: list[str] = []
    probe.create_subscription(String, "instruction", lambda m: heard.append(m.data), qos.latched())
    probe.instruct("push the button")
    with _viewer(ros_context, viewer="web", web_port=0, rate=10.0) as viewer, _frames(probe), \
            sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(viewer.url)
        for name in ("camera", "mask", "masked"):
            page.wait_for_function(f"document.getElementById('{name}').naturalWidth > 0", timeout=20000)
        page.wait_for_function("document.getElementById('diagnostics').textContent.includes('masking_node')",
                               timeout=20000)
        assert page.inner_text("#instruction") == "push the button"
        page.wait_for_timeout(500)  # one more poll: the latest frames of all three
        shot = tmp_path / "live_view.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"\nlive view screenshot: {shot}")
        if out := os.environ.get("IVM_ROS_LIVE_VIEW_SCREENSHOT"):
            shutil.copy(shot, out)

        page.fill("#instruction-input", "pick up the red block")
        page.click("#instruction-send")
        assert wait_for(lambda: "pick up the red block" in heard, 10), heard  # (1) on the ROS topic
        assert wait_for(lambda: node.stats()["instruction"] == "pick up the red block", 10)
        page.wait_for_function("document.getElementById('instruction').textContent === 'pick up the red block'",
                               timeout=10000)  # (2) the page shows what the topic now carries
        page.wait_for_function("document.getElementById('send-status').textContent === "
                               "'published: pick up the red block'", timeout=10000)  # the POST's answer
        browser.close()
    assert shot.stat().st_size > 10000
    assert min(viewer.frames_shown.values()) > 0 and viewer.rejected == 0


@pytest.mark.parametrize("viewer", ["web", "foxglove"])
def test_viewer_node_executable_serves_and_exits_cleanly(ros_context, viewer):
    """`python -m ivm_ros.ros.viewer_node` (what `ros2 run ivm_ros viewer_node` runs) serves on the port it is
    given, publishes what a client sends (a POST to the page, or a Foxglove client message), and exits with 0
    and no traceback on Ctrl-C."""
    import socket
    import subprocess
    import sys

    from support.ros import stop_node_process

    if viewer == "foxglove":
        pytest.importorskip("foxglove")
        pytest.importorskip("websockets")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    heard: list[str] = []
    probe = rclpy.create_node("probe", context=ros_context)
    probe.create_subscription(String, "/robot/instruction", lambda m: heard.append(m.data), qos.latched())
    spinner = Spinner(ros_context, probe)
    cmd = [sys.executable, "-m", "ivm_ros.ros.viewer_node", "--ros-args", "-p", f"viewer:={viewer}",
           "-p", f"{viewer}_port:={port}", "-r", "__ns:=/robot"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if viewer == "web":
            _post_from_page(port)
            url = f"http://127.0.0.1:{port}/"
        else:
            _publish_from_foxglove(port)
            url = f"ws://127.0.0.1:{port}"
        assert wait_for(lambda: heard == ["open the drawer"], 10), heard
    finally:
        output = stop_node_process(proc)
        spinner.close()
        probe.destroy_node()
    assert f"live view ({viewer}) on {url}" in output


def _post_from_page(port: int) -> None:
    import urllib.request

    def page() -> bytes:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
        except OSError:
            return b""

    assert wait_for(lambda: b"instruction-form" in page(), 20)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/instruction", data=b'{"text": "open the drawer"}',
                                 headers={"Content-Type": "application/json"})
    assert json.loads(urllib.request.urlopen(req, timeout=5).read()) == {"published": "open the drawer"}


def _publish_from_foxglove(port: int) -> None:
    from support.foxglove_client import FoxgloveClient

    client = None
    end = time.monotonic() + 20
    while client is None:
        try:
            client = FoxgloveClient(port)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)
    try:
        assert "/robot/instruction" in client.wait_channels({"/robot/instruction", "/robot/masking_node/mask"})
        client.publish_json("/robot/instruction", {"data": "open the drawer"})
        time.sleep(0.5)
    finally:
        client.close()


def test_compressed_camera_and_oversized_frames(ros_context):
    """image_transport:=compressed shows a JPEG camera; a frame over max_pixels is counted, not shown."""
    from sensor_msgs.msg import CompressedImage, Image

    from ivm_ros.ros.conversions import array_to_compressed, array_to_image

    probe = rclpy.create_node("probe", context=ros_context)
    jpeg = probe.create_publisher(CompressedImage, "image_raw/compressed", qos.profile("sensor_data", 1))
    mask = probe.create_publisher(Image, "masking_node/mask", qos.profile("sensor_data", 1))
    spinner = Spinner(ros_context, probe)
    try:
        with _viewer(ros_context, image_transport="compressed", web_port=0, rate=50.0, max_pixels=5000) as viewer:
            def send() -> bool:
                jpeg.publish(array_to_compressed(_scene(0, 48, 64), "rgb8"))
                mask.publish(array_to_image(np.zeros((100, 100), np.uint8), "mono8"))  # 10000 px > 5000
                return viewer.frames_shown["camera"] > 0 and viewer.rejected > 0

            assert wait_for(send, 10, period=0.1)
            state = viewer.view.as_dict()["frames"]
            assert state["camera"]["width"] == 64 and "mask" not in state
    finally:
        spinner.close()
        probe.destroy_node()
