"""The live view without ROS: LiveState, the rate gate, the HTTP routes of the web view, and the Foxglove server
seen by a real WebSocket client."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from ivm_ros.live_view.state import LiveState, RateGate, encode_jpeg


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["Content-Type"]


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def web():
    from ivm_ros.live_view.web import WebView

    state, published = LiveState(max_width=32), []
    view = WebView(state, published.append, port=0, max_instruction_chars=20)
    yield view, state, published
    view.close()


def test_rate_gate_takes_at_most_rate_per_key():
    gate = RateGate(5.0)
    taken = [gate.ready("camera", t * 0.01) for t in range(100)]  # 1 s of a 100 Hz stream
    assert sum(taken) == 5 and gate.skipped["camera"] == 95
    assert gate.ready("mask", 0.0)  # keys are independent
    assert all(RateGate(0.0).ready("x", 0.0) for _ in range(3))


def test_jpeg_keeps_colours_and_scales_down():
    rgb = np.zeros((40, 80, 3), np.uint8)
    rgb[..., 0] = 255  # red
    decoded = cv2.imdecode(np.frombuffer(encode_jpeg(rgb, "rgb8", 95, max_width=40), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (20, 40, 3)
    assert decoded[..., 2].mean() > 240 and decoded[..., 0].mean() < 15  # BGR: red is channel 2
    assert cv2.imdecode(np.frombuffer(encode_jpeg(np.full((8, 8, 1), 200, np.uint8), "mono8"), np.uint8),
                        cv2.IMREAD_UNCHANGED).ndim == 2
    with pytest.raises(ValueError, match="cannot show encoding"):
        encode_jpeg(np.zeros((4, 4, 2), np.uint16), "mono16")


def test_state_copies_frames_and_caches_jpeg():
    state = LiveState()
    frame = np.full((10, 12, 3), 7, np.uint8)
    state.put_frame("camera", frame, "bgr8", 2_500_000_000, "cam")
    frame[:] = 0  # the middleware reuses its buffer: the view keeps its own copy
    seq, jpeg = state.jpeg("camera")
    assert state.jpeg("camera")[1] is jpeg  # encoded once
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).mean() == pytest.approx(7, abs=2)
    info = state.as_dict()["frames"]["camera"]
    assert (info["seq"], info["width"], info["height"], info["stamp"], info["frame_id"]) == (seq, 12, 10, 2.5, "cam")
    assert state.jpeg("mask") is None
    with pytest.raises(ValueError, match="unknown stream"):
        state.put_frame("depth", frame, "bgr8")


def test_http_routes(web):
    view, state, _ = web
    status, body, kind = _get(view.url)
    assert status == 200 and kind.startswith("text/html") and b'id="instruction-form"' in body
    assert b"http://" not in body and b"https://" not in body  # nothing from outside: works offline
    assert _get(view.url + "frame/mask.jpg")[0] == 404
    state.put_frame("mask", np.full((64, 64), 255, np.uint8), "mono8")
    state.set_instruction("pick up the red block")
    state.set_diagnostics([{"name": "/masking_node: masking", "level": 0, "message": "masking", "values": {"a": "1"}}])
    status, body, kind = _get(view.url + "frame/mask.jpg?seq=1")
    assert status == 200 and kind == "image/jpeg" and body[:2] == b"\xff\xd8"
    assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED).shape == (32, 32)  # max_width
    data = json.loads(_get(view.url + "state.json")[1])
    assert data["instruction"] == "pick up the red block" and data["frames"]["mask"]["encoding"] == "mono8"
    assert data["diagnostics"][0]["values"] == {"a": "1"}
    assert _get(view.url + "frame/../../etc/passwd")[0] == 404


def test_instruction_post_is_validated(web):
    view, _, published = web
    url = view.url + "instruction"
    assert _post(url, json.dumps({"text": "  open the drawer "}).encode()) == (200, {"published": "open the drawer"})
    assert _post(url, json.dumps({"text": "   "}).encode())[1]["reason"] == "instruction_empty"
    assert _post(url, json.dumps({"text": "x" * 21}).encode())[1]["reason"] == "instruction_too_long"
    assert _post(url, b"not json")[0] == 400
    assert _post(url, json.dumps({"text": 3}).encode())[0] == 400
    # a form post (what another site's page could send without a CORS preflight) is refused
    assert _post(url, b"text=push+the+button", "application/x-www-form-urlencoded")[0] == 415
    assert published == ["open the drawer"]


def test_foxglove_view_over_websocket():
    """A real WebSocket client (foxglove.websocket.v1) sees the five channels in Foxglove's schemas, receives a
    JPEG CompressedImage after a frame is put, the instruction as JSON, and can publish an instruction."""
    pytest.importorskip("foxglove")
    pytest.importorskip("websockets")
    from support.foxglove_client import FoxgloveClient

    from ivm_ros.live_view.foxglove_view import FoxgloveView

    topics = {"camera": "/camera/image_raw", "mask": "/masking_node/mask", "masked": "/masking_node/masked_image",
              "instruction": "/instruction", "diagnostics": "/diagnostics"}
    received: list[str] = []
    view = FoxgloveView(topics, port=0, on_instruction=received.append)
    client = FoxgloveClient(view.port)
    try:
        channels = client.wait_channels(set(topics.values()))
        assert {t: channels[t]["schemaName"] for t in topics.values()} == {
            "/camera/image_raw": "foxglove.CompressedImage", "/masking_node/mask": "foxglove.CompressedImage",
            "/masking_node/masked_image": "foxglove.CompressedImage", "/instruction": "ivm_ros.Instruction",
            "/diagnostics": "ivm_ros.DiagnosticArray"}
        assert "clientPublish" in client.server_info["capabilities"]
        assert client.ws.subprotocol in ("foxglove.sdk.v1", "foxglove.websocket.v1")
        client.subscribe("/camera/image_raw", "/instruction")
        time.sleep(0.3)  # the subscription reaches the server
        view.put_frame("camera", np.zeros((48, 64, 3), np.uint8), "rgb8", 3_000_000_000, "cam")
        payload = client.next_message("/camera/image_raw")
        assert payload is not None and b"\xff\xd8" in payload and b"jpeg" in payload and b"cam" in payload
        view.set_instruction("push the button")
        assert json.loads(client.next_message("/instruction")) == {"data": "push the button"}
        client.publish_json("/instruction", {"data": "open the drawer"})
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == ["open the drawer"]
    finally:
        client.close()
        view.close()
