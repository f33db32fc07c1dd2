"""QoS profiles chosen by parameter, and clear warnings when a peer's QoS cannot match ours."""

from __future__ import annotations

from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_policy_name_from_kind,
)

#: Names accepted by the ``*_qos`` parameters.
PROFILES = ("sensor_data", "reliable", "system_default")


def profile(name: str, depth: int) -> QoSProfile:
    """``sensor_data``: best effort, volatile (what camera drivers publish); ``reliable``: reliable, volatile
    (what rosbag play and many drivers publish); ``system_default``: the RMW's defaults (reliable)."""
    reliability = {"sensor_data": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}.get(name)
    if reliability is not None:
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability, durability=DurabilityPolicy.VOLATILE
        )
    if name == "system_default":
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth)
    raise ValueError(f"unknown QoS profile {name!r}; use one of {PROFILES}")


def latched() -> QoSProfile:
    """Reliable + transient-local, depth 1: a late joiner receives the last message (the instruction)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


_HINTS = {
    "RELIABILITY": "a RELIABLE subscriber never receives from a BEST_EFFORT publisher: set this node's "
    "{param} to 'sensor_data' (best effort) or make the publisher reliable",
    "DURABILITY": "a TRANSIENT_LOCAL subscriber never receives from a VOLATILE publisher: publish with "
    "transient-local durability (latched) or subscribe volatile",
}


def subscription_events(
    logger: RcutilsLogger, topic: str, param: str, on_incompatible=None
) -> SubscriptionEventCallbacks:
    """Event callbacks that turn an incompatible-QoS event on ``topic`` into an actionable warning."""

    def incompatible(event) -> None:
        policy = qos_policy_name_from_kind(event.last_policy_kind)
        hint = _HINTS.get(policy, "compare `ros2 topic info -v {topic}` with this node's {param}")
        logger.warning(
            f"QoS mismatch on '{topic}': a publisher offers an incompatible {policy} policy "
            f"({event.total_count} incompatible publisher(s) so far); no messages will arrive from it. "
            + hint.format(param=param, topic=topic)
        )
        if on_incompatible is not None:
            on_incompatible(policy)

    return SubscriptionEventCallbacks(incompatible_qos=incompatible)


def publisher_events(logger: RcutilsLogger, topic: str, param: str, on_incompatible=None) -> PublisherEventCallbacks:
    """Event callbacks that turn an incompatible-QoS event on an output into an actionable warning."""

    def incompatible(event) -> None:
        policy = qos_policy_name_from_kind(event.last_policy_kind)
        logger.warning(
            f"QoS mismatch on '{topic}': a subscriber requests an incompatible {policy} policy "
            f"({event.total_count} so far) and will receive nothing; set this node's {param} to 'reliable' "
            "(works for both reliable and best-effort subscribers) or change the subscriber"
        )
        if on_incompatible is not None:
            on_incompatible(policy)

    return PublisherEventCallbacks(incompatible_qos=incompatible)
