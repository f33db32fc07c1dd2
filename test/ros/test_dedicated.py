"""DedicatedSubscription: a subscription served by its own thread, with real rclpy nodes and topics."""

from __future__ import annotations

import threading

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from support.ros import Spinner, wait_for

from ivm_ros.ros.dedicated import DedicatedSubscription


def test_thread_serves_messages_and_events_the_executor_does_not(ros_context):
    import rclpy

    node = rclpy.create_node("dedicated_test", context=ros_context)
    got: list[tuple[str, str]] = []
    errors: list[Exception] = []
    incompatible: list[str] = []

    def callback(msg: String) -> None:
        got.append((msg.data, threading.current_thread().name))
        if msg.data == "boom":
            raise RuntimeError("callback failure")

    sub = DedicatedSubscription(
        node,
        String,
        "chatter",
        callback,
        QoSProfile(depth=10),
        event_callbacks=SubscriptionEventCallbacks(
            incompatible_qos=lambda event: incompatible.append(threading.current_thread().name)
        ),
        on_error=errors.append,
        name="test_dedicated",
    )
    assert sub.threaded
    spinner = Spinner(ros_context, node)  # the executor runs too, but must never take from the subscription
    pub = node.create_publisher(String, "chatter", QoSProfile(depth=10))
    best_effort = node.create_publisher(
        String, "chatter", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    )
    try:
        assert wait_for(lambda: pub.get_subscription_count() == 1)
        for text in ("a", "boom", "b"):
            pub.publish(String(data=text))
        assert wait_for(lambda: len(got) == 3), got
        assert [t for t, _ in got] == ["a", "boom", "b"]
        assert {name for _, name in got} == {"test_dedicated"}  # not the executor's thread
        assert len(errors) == 1 and "callback failure" in str(errors[0])  # reported, and serving went on
        assert wait_for(lambda: incompatible), "incompatible-QoS event not delivered"
        assert set(incompatible) == {"test_dedicated"}
        sub.destroy()
        assert not sub.threaded
        pub.publish(String(data="after"))
        wait_for(lambda: False, 0.3)
        assert [t for t, _ in got][-1] == "b"
        assert node.count_subscribers("chatter") == 0
    finally:
        spinner.close()
        node.destroy_publisher(best_effort)
        node.destroy_node()


def test_serves_without_any_executor(ros_context):
    import rclpy

    node = rclpy.create_node("dedicated_alone", context=ros_context)
    got: list[str] = []
    sub = DedicatedSubscription(node, String, "alone", lambda m: got.append(m.data), QoSProfile(depth=10), raw=False)
    pub = node.create_publisher(String, "alone", QoSProfile(depth=10))
    try:
        assert wait_for(lambda: pub.get_subscription_count() == 1)
        assert wait_for(lambda: (pub.publish(String(data="x")), bool(got))[1], 5, 0.05)
    finally:
        sub.destroy()
        node.destroy_node()
