"""The ``instruction`` input of both nodes: received from latched and from plain publishers, each message once.

One transient-local subscription alone never matches a volatile publisher (``ros2 topic pub --once /instruction
std_msgs/msg/String "{data: ...}"`` is one: its message never arrived), and one volatile subscription alone
misses the command a latched publisher sent before the node started. So there are two reliable subscriptions,
transient-local (depth 1: the latched command for a late joiner) and volatile (depth 10: every live publisher). A
latched publisher matches both; its message is taken once, keyed by publisher and sequence number (source
timestamp where the RMW gives no sequence number). Best-effort publishers match neither (a warning says so).
"""

from __future__ import annotations

from collections.abc import Callable

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_policy_name_from_kind
from std_msgs.msg import String

from ivm_ros.ros import qos
from ivm_ros.runtime import SeenRecently

TOPIC = "instruction"


def _message_key(info: dict) -> tuple:
    gid = info.get("publisher_gid") or {}
    gid_bytes = bytes(gid.get("data", b"")) if isinstance(gid, dict) else bytes(gid)
    sequence = info.get("publication_sequence_number")
    return (gid_bytes, sequence) if sequence else (gid_bytes, info.get("source_timestamp"))


def _latched_events(node: Node, count_qos: Callable[[str], None]) -> SubscriptionEventCallbacks:
    """The transient-local subscription: a volatile publisher is expected (the volatile one serves it), anything
    else is the usual warning."""
    warn = qos.subscription_events(node.get_logger(), TOPIC, "instruction QoS", count_qos).incompatible_qos

    def incompatible(event) -> None:
        if qos_policy_name_from_kind(event.last_policy_kind) == "DURABILITY":
            node.get_logger().info(
                f"'{TOPIC}': a volatile publisher (e.g. ros2 topic pub) is received by the volatile subscription; "
                "only a latched one (--qos-durability transient_local) reaches nodes that start after it published",
                once=True)
            return
        warn(event)

    return SubscriptionEventCallbacks(incompatible_qos=incompatible)


def subscribe_instruction(node: Node, on_message: Callable[[String], None],
                          count_qos: Callable[[str], None]) -> list:
    """Creates both subscriptions on ``instruction``; ``on_message`` gets each message once. Returns them (for
    ``destroy``)."""
    seen = SeenRecently(64)

    def once(msg: String, info: dict) -> None:
        if seen.first_time(_message_key(info)):
            on_message(msg)

    volatile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.VOLATILE)
    return [
        node.create_subscription(String, TOPIC, once, qos.latched(), event_callbacks=_latched_events(node, count_qos)),
        node.create_subscription(String, TOPIC, once, volatile, event_callbacks=qos.subscription_events(
            node.get_logger(), TOPIC, "instruction QoS", count_qos)),
    ]
