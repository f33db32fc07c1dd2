"""A minimal Foxglove WebSocket client for tests (the ws-protocol, subprotocol foxglove.sdk.v1 or
foxglove.websocket.v1): reads the advertised channels, subscribes, receives message data, publishes as a client."""

from __future__ import annotations

import json
import struct
import time
from contextlib import ExitStack

from websockets.sync.client import connect

#: What Foxglove clients offer: foxglove-sdk's server (0.30) accepts only the first; earlier servers (and
#: foxglove_bridge) the second, the original ws-protocol. The messages are the same.
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]


class FoxgloveClient:
    """Connects to ws://host:port; ``channels`` maps topic -> the advertised channel (a dict)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(connect(f"ws://{host}:{port}", subprotocols=SUBPROTOCOLS,
                                                    open_timeout=10))
        self.server_info: dict = {}
        self.channels: dict[str, dict] = {}
        self._subs: dict[int, str] = {}

    def close(self) -> None:
        self._stack.close()

    def _receive(self, timeout: float) -> str | bytes | None:
        try:
            return self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None

    def _handle_text(self, text: str) -> None:
        msg = json.loads(text)
        if msg["op"] == "serverInfo":
            self.server_info = msg
        elif msg["op"] == "advertise":
            self.channels.update({c["topic"]: c for c in msg["channels"]})

    def wait_channels(self, topics: set[str], timeout: float = 10.0) -> dict[str, dict]:
        """Reads control messages until every topic in ``topics`` is advertised (or the time runs out)."""
        end = time.monotonic() + timeout
        while not topics <= set(self.channels) and time.monotonic() < end:
            msg = self._receive(0.2)
            if isinstance(msg, str):
                self._handle_text(msg)
        return self.channels

    def subscribe(self, *topics: str) -> None:
        subs = []
        for topic in topics:
            sub_id = len(self._subs) + 1
            self._subs[sub_id] = topic
            subs.append({"id": sub_id, "channelId": self.channels[topic]["id"]})
        self.ws.send(json.dumps({"op": "subscribe", "subscriptions": subs}))

    def next_message(self, topic: str, timeout: float = 10.0) -> bytes | None:
        """The payload of the next message data on a subscribed ``topic``, or None after ``timeout`` s."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            msg = self._receive(0.2)
            if isinstance(msg, str):
                self._handle_text(msg)
            elif isinstance(msg, bytes) and msg[0] == 0x01:  # message data: op, subscription id, log time, payload
                sub_id, _ = struct.unpack_from("<IQ", msg, 1)
                if self._subs.get(sub_id) == topic:
                    return msg[13:]
        return None

    def publish_json(self, topic: str, value: dict, channel_id: int = 1, schema_name: str = "") -> None:
        """Advertises a client channel on ``topic`` (once per ``channel_id``) and sends ``value`` as JSON on it."""
        advert = {"id": channel_id, "topic": topic, "encoding": "json", "schemaName": schema_name}
        self.ws.send(json.dumps({"op": "advertise", "channels": [advert]}))
        time.sleep(0.2)
        self.ws.send(struct.pack("<BI", 0x01, channel_id) + json.dumps(value).encode())
