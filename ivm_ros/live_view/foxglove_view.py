"""The Foxglove view: a foxglove-sdk WebSocket server (protocol ``foxglove.websocket.v1``) with one channel per
stream in Foxglove's own schemas (``foxglove.CompressedImage`` JPEG, or ``foxglove.RawImage``), the instruction
and the diagnostics as JSON channels. Open it in Foxglove with "Open connection" -> ws://host:port. With
``on_instruction`` the server also lets a client publish (``clientPublish``): a JSON ``{"data": "..."}``
message on the instruction topic (Foxglove's Publish panel) goes to the callback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ivm_ros.live_view.state import STREAMS, encode_jpeg

#: std_msgs/String-like and diagnostic_msgs/DiagnosticArray-like JSON schemas (what the Raw Messages panel shows).
INSTRUCTION_SCHEMA = {"type": "object", "title": "ivm_ros.Instruction",
                      "properties": {"data": {"type": "string"}}}
DIAGNOSTICS_SCHEMA = {
    "type": "object", "title": "ivm_ros.DiagnosticArray",
    "properties": {"status": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "level": {"type": "integer"}, "message": {"type": "string"},
        "values": {"type": "object", "additionalProperties": {"type": "string"}}}}}},
}
#: ROS Image encodings foxglove.RawImage reads as they are.
_RAW_ENCODINGS = ("rgb8", "rgba8", "bgr8", "bgra8", "8UC3", "mono8", "8UC1")
_log = logging.getLogger(__name__)


class _Listener:
    """foxglove ServerListener: client messages on the instruction topic's client channel -> the callback."""

    def __init__(self, topic: str, on_instruction: Callable[[str], None]) -> None:
        self.topic, self.on_instruction = topic, on_instruction
        self._channels: dict[tuple[int, int], str] = {}  # (client id, client channel id) -> topic

    def on_client_advertise(self, client: Any, channel: Any) -> None:
        self._channels[(client.id, channel.id)] = channel.topic

    def on_client_unadvertise(self, client: Any, client_channel_id: int) -> None:
        self._channels.pop((client.id, client_channel_id), None)

    def on_message_data(self, client: Any, client_channel_id: int, data: bytes) -> None:
        if self._channels.get((client.id, client_channel_id)) != self.topic:
            return
        try:
            text = json.loads(data)["data"]
        except (ValueError, KeyError, TypeError) as exc:
            _log.warning("instruction from a Foxglove client ignored (want JSON {\"data\": ...}): %s", exc)
            return
        if isinstance(text, str):
            self.on_instruction(text)


class FoxgloveView:
    """A :class:`~ivm_ros.live_view.state.ViewSink` that serves what it receives on a Foxglove WebSocket server.

    ``topics``: the channel topic of each stream, ``"instruction"`` and ``"diagnostics"`` (the ROS names, so
    Foxglove shows what ``ros2 topic list`` does); ``image_format`` ``"jpeg"`` (CompressedImage, small) or
    ``"raw"`` (RawImage, exact pixels). ``port`` 0 picks a free port (:attr:`port`)."""

    def __init__(self, topics: dict[str, str], host: str = "127.0.0.1", port: int = 8765, image_format: str = "jpeg",
                 jpeg_quality: int = 80, on_instruction: Callable[[str], None] | None = None) -> None:
        import foxglove
        from foxglove import channels
        from foxglove.websocket import Capability

        if image_format not in ("jpeg", "raw"):
            raise ValueError(f"image_format must be 'jpeg' or 'raw', got {image_format!r}")
        self.image_format, self.jpeg_quality = image_format, jpeg_quality
        self._current: str | None = None
        self._context = foxglove.Context()
        image_channel = channels.CompressedImageChannel if image_format == "jpeg" else channels.RawImageChannel
        self._images = {s: image_channel(topics[s], context=self._context) for s in STREAMS}
        self._instruction = foxglove.Channel(topics["instruction"], schema=INSTRUCTION_SCHEMA, context=self._context)
        self._diagnostics = foxglove.Channel(topics["diagnostics"], schema=DIAGNOSTICS_SCHEMA, context=self._context)
        listener = _Listener(topics["instruction"], on_instruction) if on_instruction else None
        self._server = foxglove.start_server(
            name="ivm_ros", host=host, port=port, context=self._context, server_listener=listener,
            capabilities=[Capability.ClientPublish] if listener else None,
            supported_encodings=["json"] if listener else None)

    @property
    def port(self) -> int:
        return int(self._server.port)

    def put_frame(self, stream: str, array: np.ndarray, encoding: str, stamp_ns: int = 0, frame_id: str = "") -> None:
        from foxglove.messages import CompressedImage, RawImage, Timestamp

        stamp = Timestamp(*divmod(int(stamp_ns), 1_000_000_000))
        if self.image_format == "jpeg":
            data = encode_jpeg(array, encoding, self.jpeg_quality)
            msg = CompressedImage(timestamp=stamp, frame_id=frame_id, data=data, format="jpeg")
        else:
            if encoding not in _RAW_ENCODINGS:
                raise ValueError(f"cannot show encoding {encoding!r}")
            pixels = np.ascontiguousarray(array)
            msg = RawImage(timestamp=stamp, frame_id=frame_id, width=pixels.shape[1], height=pixels.shape[0],
                           encoding=encoding, step=pixels.strides[0], data=pixels.tobytes())
        self._images[stream].log(msg)

    def set_instruction(self, text: str) -> None:
        self._current = text
        self._instruction.log({"data": text})

    def set_diagnostics(self, statuses: list[dict[str, Any]]) -> None:
        """Logs the statuses, and the current instruction again: a client that connects later (the server keeps
        no history) sees it within one diagnostics period."""
        self._diagnostics.log({"status": statuses})
        if self._current is not None:
            self._instruction.log({"data": self._current})

    def close(self) -> None:
        self._server.stop()
