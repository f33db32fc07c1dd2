"""What ``ivm-ros doctor`` needs from the ROS graph: a topic's publishers with their QoS, and what a best-effort and
a reliable subscription receive over a few seconds (frames, header stamps, samples DDS reports lost).

It only measures; ``ivm_ros.doctor`` judges the numbers.
"""

from __future__ import annotations

import dataclasses
import struct
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_policy_name_from_kind
from sensor_msgs.msg import CompressedImage, Image

from ivm_ros.ros import qos

MESSAGE_TYPES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage}
KINDS = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


@dataclasses.dataclass
class TopicProbe:
    """What one probe of ``topic`` saw. publishers: ``node``, ``type``, ``reliability`` and ``durability``
    (lower-case names) of each; received: frames per subscription kind ("best_effort", "reliable") over
    ``seconds``; lost: samples DDS reported lost per kind; stamps_ns: header stamps of the frames received (ns);
    incompatible: QoS policies DDS reported incompatible per kind; counted: whether frames were counted (publishers
    of one image type were found)."""

    topic: str
    seconds: float
    publishers: list[dict[str, Any]]
    received: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    lost: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    matched: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    stamps_ns: list[int] = dataclasses.field(default_factory=list)
    incompatible: dict[str, list[str]] = dataclasses.field(default_factory=lambda: {k: [] for k in KINDS})
    counting: bool = False
    counted: bool = False

    def reset(self) -> None:
        """Starts the counted window: what arrived while subscriptions were matching does not count."""
        self.received, self.lost, self.stamps_ns = dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0), []
        self.counting = True


def stamp_ns(data: bytes) -> int:
    """The header stamp (ns) of a serialized Image / CompressedImage (CDR: a 4-byte encapsulation whose second
    byte is 1 for little endian, then int32 sec and uint32 nanosec); 0 when too short."""
    if len(data) < 12:
        return 0
    order = "<" if data[1] == 1 else ">"
    sec, nanosec = struct.unpack_from(order + "iI", data, 4)
    return sec * 1_000_000_000 + nanosec


def describe_publisher(info: Any) -> dict[str, Any]:
    """A TopicEndpointInfo as a plain dict (node with its namespace, type, reliability, durability)."""
    profile: QoSProfile = info.qos_profile
    return {"node": f"{info.node_namespace.rstrip('/')}/{info.node_name}", "type": info.topic_type,
            "reliability": profile.reliability.name.lower(), "durability": profile.durability.name.lower()}


def _subscribe(node: Node, result: TopicProbe, kind: str, msg_type: type) -> None:
    """One raw subscription of ``kind`` that counts frames, stamps, lost samples, matches and incompatibilities."""

    def on_message(data: bytes) -> None:
        if result.counting:
            result.received[kind] += 1
            result.stamps_ns.append(stamp_ns(data))

    def on_lost(event: Any) -> None:
        if result.counting:
            result.lost[kind] += event.total_count_change

    def on_matched(event: Any) -> None:
        result.matched[kind] = event.current_count

    def on_incompatible(event: Any) -> None:
        result.incompatible[kind].append(qos_policy_name_from_kind(event.last_policy_kind))

    events = SubscriptionEventCallbacks(incompatible_qos=on_incompatible, message_lost=on_lost, matched=on_matched)
    profile = qos.profile("sensor_data", 10)
    profile.reliability = KINDS[kind]
    node.create_subscription(msg_type, result.topic, on_message, profile, raw=True, event_callbacks=events)


def _spin_until(executor: SingleThreadedExecutor, done: Callable[[], Any], seconds: float) -> None:
    """Spins until ``done()`` is true or ``seconds`` pass."""
    end = time.monotonic() + seconds
    while not done() and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.02)


def probe_topic(context: rclpy.Context, topic: str, seconds: float, discovery_s: float = 5.0,
                match_s: float = 2.0) -> TopicProbe:
    """Waits up to ``discovery_s`` for publishers of ``topic`` (usually found within 0.1 s; a participant that
    replaces one just closed in the same process was seen waiting 2.5 s); subscribes best effort and reliable,
    waits up to ``match_s`` for both to match the publishers they can, then counts what arrives for ``seconds``
    (serialized, so the pixels are never converted). No publishers, or not one image type: returns without
    counting."""
    node = Node("ivm_ros_doctor", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        _spin_until(executor, lambda: node.get_publishers_info_by_topic(topic), discovery_s)
        publishers = [describe_publisher(i) for i in node.get_publishers_info_by_topic(topic)]
        result = TopicProbe(topic, seconds, publishers)
        types = {p["type"] for p in publishers}
        if not publishers or len(types) != 1 or not types <= MESSAGE_TYPES.keys():
            return result
        for kind in KINDS:
            _subscribe(node, result, kind, MESSAGE_TYPES[next(iter(types))])
        reliable = sum(p["reliability"] == "reliable" for p in publishers)
        _spin_until(executor, lambda: result.matched["best_effort"] >= len(publishers)
                    and result.matched["reliable"] >= reliable, match_s)
        result.reset()
        _spin_until(executor, lambda: False, seconds)
        result.counting, result.counted = False, True
        # node names come with ros_discovery_info, often after the endpoints: ask again now
        result.publishers = [describe_publisher(i) for i in node.get_publishers_info_by_topic(topic)] or publishers
        return result
    finally:
        executor.shutdown()
        node.destroy_node()
