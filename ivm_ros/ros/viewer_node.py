"""viewer_node: a live view of the masking for a browser, without RViz (``viewer:=web`` or ``viewer:=foxglove``
in manipulation.launch.py).

Subscribes (relative names, remappable) to ``image_raw`` (the camera; ``image_raw/compressed`` with
``image_transport:=compressed``), ``masking_node/mask``,
``masking_node/masked_image``, ``instruction`` and ``/diagnostics``, takes at most ``rate`` frames a second of
each image stream (the others are skipped before any pixel is read) and hands them to a view
(:mod:`ivm_ros.live_view`): ``viewer:=web`` serves a self-contained page on http://host:web_port/ whose box
publishes a new instruction on ``instruction`` (latched, as an operator would); ``viewer:=foxglove`` serves a
Foxglove WebSocket on ws://host:foxglove_port (a client may publish ``{"data": ...}`` on the instruction topic).
Binds 127.0.0.1 unless ``host`` says otherwise. All HTTP / WebSocket work is in :mod:`ivm_ros.live_view`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from ivm_ros.live_view.state import STREAMS, LiveState, RateGate, ViewSink
from ivm_ros.ros import qos
from ivm_ros.ros.cdr import CdrUnsupported, parse_image
from ivm_ros.ros.conversions import ImageRejected, compressed_to_array, image_to_array
from ivm_ros.ros.instruction import subscribe_instruction
from ivm_ros.ros.params import Param, declare_table, invalid_parameters
from ivm_ros.ros.worker_node import spin_node

VIEWERS = ("web", "foxglove")
#: stream -> the topic it is read from (relative: follows the namespace; remap to move it).
TOPICS = {"camera": "image_raw", "mask": "masking_node/mask", "masked": "masking_node/masked_image"}
PARAMETERS = (
    Param("viewer", "web", "'web' (a page on http://host:web_port/) or 'foxglove' (a Foxglove WebSocket on "
          "ws://host:foxglove_port)", choices=VIEWERS, read_only=True),
    Param("host", "127.0.0.1", "address to bind ('0.0.0.0': every interface; anyone reaching it can publish "
          "instructions)", read_only=True),
    Param("web_port", 8080, "HTTP port of the web view (0: any free port, logged)", lo=0, hi=65535, read_only=True),
    Param("foxglove_port", 8765, "WebSocket port of the Foxglove view (0: any free port, logged)", lo=0, hi=65535,
          read_only=True),
    Param("rate", 5.0, "frames per second taken of each image stream (the rest are skipped unread)", lo=0.1,
          hi=60.0, read_only=True),
    Param("jpeg_quality", 80, "JPEG quality of the snapshots (web, and foxglove_images 'jpeg')", lo=1, hi=100,
          read_only=True),
    Param("max_width", 640, "web view: snapshots wider than this are scaled down (0: full size)", lo=0, hi=16384,
          read_only=True),
    Param("foxglove_images", "jpeg", "Foxglove image channels: 'jpeg' (foxglove.CompressedImage) or 'raw' "
          "(foxglove.RawImage, exact pixels, ~10x the bandwidth)", choices=("jpeg", "raw"), read_only=True),
    Param("image_transport", "raw", "camera input: 'raw' (image_raw) or 'compressed' (image_raw/compressed, decoded "
          "only for the frames shown)", choices=("raw", "compressed"), read_only=True),
    Param("image_qos", "sensor_data", "QoS of the image subscriptions (best effort also reads reliable publishers)",
          choices=qos.PROFILES, read_only=True),
    Param("max_pixels", 3840 * 2160, "frames with more pixels are not shown (a compressed one is not decoded)",
          lo=1, hi=1 << 30, read_only=True),
    Param("diagnostics_filter", "", "show only /diagnostics statuses whose name contains this (empty: all)"),
    Param("publish_instructions", True, "let the page's box (or a Foxglove client) publish on 'instruction'",
          read_only=True),
    Param("max_instruction_chars", 1000, "longer typed instructions are refused", lo=1, hi=100000, read_only=True),
)


def status_dicts(msg: DiagnosticArray, name_filter: str = "") -> list[dict[str, Any]]:
    """The statuses of a DiagnosticArray as plain dicts (level as an int), those whose name contains
    ``name_filter``."""
    return [{"name": s.name, "level": s.level[0] if isinstance(s.level, bytes) else int(s.level),
             "message": s.message, "hardware_id": s.hardware_id, "values": {kv.key: kv.value for kv in s.values}}
            for s in msg.status if name_filter in s.name]


def _stamp_ns(header: Any) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def _decode_raw(data: bytes, max_pixels: int) -> tuple[np.ndarray, str, int, str]:
    """(pixels, encoding, stamp ns, frame_id) of a serialized Image: a zero-copy view, or through rclpy for an
    encapsulation the CDR parser does not read."""
    try:
        raw = parse_image(data)
        return raw.to_array(max_pixels), raw.encoding, raw.sec * 1_000_000_000 + raw.nanosec, raw.frame_id
    except CdrUnsupported:
        msg = deserialize_message(data, Image)
        return (*image_to_array(msg, max_pixels), _stamp_ns(msg.header), msg.header.frame_id)


class ViewerNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "viewer_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_table(self, PARAMETERS)
        if problems := invalid_parameters(self):
            raise ValueError("; ".join(problems))
        value = lambda name: self.get_parameter(name).value
        self.gate = RateGate(value("rate"))
        self.frames_shown = dict.fromkeys(STREAMS, 0)
        self.rejected = 0
        self._instruction_pub = None
        if value("publish_instructions"):
            self._instruction_pub = self.create_publisher(String, "instruction", qos.latched())
        topics = {s: self.resolve_topic_name(t) for s, t in TOPICS.items()}
        topics |= {"instruction": self.resolve_topic_name("instruction"), "diagnostics": "/diagnostics"}
        self.view, self.url = self._start_view(value("viewer"), topics)
        image_qos = qos.profile(value("image_qos"), 1)
        compressed = value("image_transport") == "compressed"
        self._subs = [self.create_subscription(Image, TOPICS[s], lambda m, s=s: self._on_image(s, m), image_qos,
                                               raw=True) for s in STREAMS if not (compressed and s == "camera")]
        if compressed:
            self._subs.append(self.create_subscription(CompressedImage, f"{TOPICS['camera']}/compressed",
                                                       self._on_compressed, image_qos))
        self._subs += subscribe_instruction(self, lambda m: self.view.set_instruction(m.data), lambda _: None)
        self._subs.append(self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10))
        self.get_logger().info(f"live view ({value('viewer')}) on {self.url}: {topics}")

    def _start_view(self, viewer: str, topics: dict[str, str]) -> tuple[ViewSink, str]:
        """The view the ``viewer`` parameter names, started, and its address."""
        value = lambda name: self.get_parameter(name).value
        host = value("host")
        publish = self.publish_instruction if self._instruction_pub is not None else None
        if viewer == "foxglove":
            from ivm_ros.live_view.foxglove_view import FoxgloveView

            view = FoxgloveView(topics, host, value("foxglove_port"), value("foxglove_images"),
                                value("jpeg_quality"), on_instruction=publish)
            return view, f"ws://{host}:{view.port}"
        from ivm_ros.live_view.web import WebView

        state = LiveState(value("jpeg_quality"), value("max_width"), poll_ms=max(100, int(500 / value("rate"))))
        state.topics = dict(topics)
        self._web = WebView(state, publish or self._refuse_instruction, host, value("web_port"),
                            value("max_instruction_chars"))
        return state, self._web.url

    def publish_instruction(self, text: str) -> None:
        """Publishes ``text`` on ``instruction`` (what the page's box and a Foxglove client's message do)."""
        self._instruction_pub.publish(String(data=text))
        self.get_logger().info(f"instruction from the live view: {text!r}")

    def _refuse_instruction(self, text: str) -> None:
        self.get_logger().warning(f"instruction {text!r} from the live view not published: publish_instructions "
                                  "is false", throttle_duration_sec=5.0)

    def _on_image(self, stream: str, data: bytes) -> None:
        if self.gate.ready(stream):
            self._show(stream, lambda: _decode_raw(data, self.get_parameter("max_pixels").value))

    def _on_compressed(self, msg: CompressedImage) -> None:
        if self.gate.ready("camera"):
            self._show("camera", lambda: (*compressed_to_array(msg, self.get_parameter("max_pixels").value),
                                          _stamp_ns(msg.header), msg.header.frame_id))

    def _show(self, stream: str, decode: Callable[[], tuple[np.ndarray, str, int, str]]) -> None:
        """Decodes one frame that passed the rate gate and hands it to the view; a bad one is counted and logged."""
        try:
            self.view.put_frame(stream, *decode())
        except (ImageRejected, ValueError) as exc:
            self.rejected += 1
            self.get_logger().warning(f"{stream} frame not shown: {exc}", throttle_duration_sec=5.0)
            return
        self.frames_shown[stream] += 1

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        statuses = status_dicts(msg, self.get_parameter("diagnostics_filter").value)
        if statuses:
            self.view.set_diagnostics(statuses)

    def on_shutdown(self, state: Any = None) -> None:
        """Stops the server (spin_node calls this before destroying the node)."""
        web = getattr(self, "_web", None)
        if web is not None:
            web.close()
            self._web = None
        self.view.close()


def main(args: list[str] | None = None) -> None:
    spin_node(ViewerNode, args)


if __name__ == "__main__":
    main()
