"""Instructions that are not valid UTF-8 or hold control characters are rejected and counted by both nodes over
real topics; the previous command stays (issue 15, item 2)."""

from __future__ import annotations

import struct

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import String
from support.ros import Spinner, wait_for

from ivm_ros.inputs import InputRejected, check_instruction
from ivm_ros.ros import qos
from ivm_ros.ros.masking_node import MaskingNode
from ivm_ros.ros.policy_node import PolicyNode


@pytest.mark.parametrize("text", ["\ufffd\ufffd(\ufffd\ufffd", "open\x00 the drawer", "go\x1b[2J", "a\x7fb"])
def test_undecodable_and_control_characters_are_rejected(text):
    with pytest.raises(InputRejected) as info:
        check_instruction(text, 1000)
    assert info.value.reason == "instruction_encoding"


@pytest.mark.parametrize("text", ["open the drawer", "  lift\tthe red block\n", "café rouge 红色的方块"])
def test_ordinary_text_and_whitespace_pass(text):
    assert check_instruction(text, 1000) == text.strip()


def _string_cdr(payload: bytes) -> bytes:
    """A serialized std_msgs/String (little-endian CDR) holding ``payload`` as its bytes, valid UTF-8 or not."""
    body = struct.pack("<I", len(payload) + 1) + payload + b"\x00"
    return b"\x00\x01\x00\x00" + body + b"\x00" * (-len(body) % 4)


def _nodes(context):
    masking = MaskingNode(context=context, parameter_overrides=[Parameter("model", value="keep_all")])
    policy = PolicyNode(context=context, parameter_overrides=[
        Parameter("policy", value="support.policies:PixelPolicyForTest")])
    return masking, policy


def test_both_nodes_reject_invalid_utf8_over_a_topic_and_keep_the_previous_command(ros_context):
    masking, policy = _nodes(ros_context)
    sender = Node("instruction_sender", context=ros_context)
    pub = sender.create_publisher(String, "/instruction", qos.latched())
    spinner = Spinner(ros_context, masking, policy, sender)
    try:
        assert wait_for(lambda: all(n._state_machine.current_state[1] == "active" for n in (masking, policy)), 15)
        pub.publish(String(data="open the drawer"))
        assert wait_for(lambda: masking.stats()["instruction"] == "open the drawer"
                        and policy.stats()["instruction"] == "open the drawer", 10)
        pub.publish(_string_cdr(b"\xff\xfe(\xc3\x28"))  # not UTF-8: rclpy decodes it with U+FFFD
        assert wait_for(lambda: masking.counters.get("rejected_instruction_encoding") == 1
                        and policy.counters.get("rejected_instruction_encoding") == 1, 10), (
            masking.stats(), policy.stats())  # (depth 1: wait before the next message replaces it)
        pub.publish(_string_cdr(b"close the drawer\x07"))  # a control character (BEL)
        assert wait_for(lambda: masking.counters.get("rejected_instruction_encoding") == 2
                        and policy.counters.get("rejected_instruction_encoding") == 2, 10), (
            masking.stats(), policy.stats())
        assert masking.stats()["instruction"] == "open the drawer"
        assert policy.stats()["instruction"] == "open the drawer"
        assert policy.counters.get("instructions") == 1  # no new task was started
    finally:
        spinner.close()
        for node in (masking, policy):
            node.on_shutdown(None)
            node.destroy_node()
        sender.destroy_node()


def _active(*nodes) -> bool:
    return all(n._state_machine.current_state[1] == "active" for n in nodes)


def test_a_volatile_publisher_like_ros2_topic_pub_reaches_both_nodes_once(ros_context):
    """`ros2 topic pub --once /instruction std_msgs/msg/String ...` publishes reliable + volatile: the volatile
    subscription takes it (a transient-local one alone never matched it)."""
    masking, policy = _nodes(ros_context)
    sender = Node("topic_pub_like_sender", context=ros_context)
    pub = sender.create_publisher(String, "/instruction", qos.profile("reliable", 10))  # reliable + volatile
    spinner = Spinner(ros_context, masking, policy, sender)
    try:
        assert wait_for(lambda: _active(masking, policy) and pub.get_subscription_count() == 2, 15), (
            "the volatile publisher matches one subscription per node")
        pub.publish(String(data="push the button"))
        assert wait_for(lambda: masking.stats()["instruction"] == "push the button"
                        and policy.stats()["instruction"] == "push the button", 10)
        assert masking.counters.get("instructions") == 1
        assert masking.counters.get("qos_incompatible_durability") == 0  # expected, not a problem
    finally:
        spinner.close()
        for node in (masking, policy, sender):
            node.destroy_node()


def test_a_latched_command_reaches_a_late_joiner_and_live_ones_arrive_once(ros_context):
    sender = Node("latched_sender", context=ros_context)
    pub = sender.create_publisher(String, "/instruction", qos.latched())
    pub.publish(String(data="open the drawer"))  # before the nodes exist
    masking, policy = _nodes(ros_context)
    spinner = Spinner(ros_context, masking, policy, sender)
    try:
        assert wait_for(lambda: masking.stats()["instruction"] == "open the drawer"
                        and policy.stats()["instruction"] == "open the drawer", 15)
        assert pub.get_subscription_count() == 4  # both subscriptions of both nodes
        for i, text in enumerate(["lift the red block", "lift the blue block", "close the drawer"]):
            pub.publish(String(data=text))
            assert wait_for(lambda t=text: masking.stats()["instruction"] == t, 10)
            assert wait_for(lambda n=i: masking.counters.get("instructions") == n + 2, 2)
        assert not wait_for(lambda: masking.counters.get("instructions") > 4, 0.5), "a message was taken twice"
        assert wait_for(lambda: policy.stats()["instruction"] == "close the drawer", 10)
    finally:
        spinner.close()
        for node in (masking, policy, sender):
            node.destroy_node()
