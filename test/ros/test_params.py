"""Parameter tables: declared with their descriptors, choices enforced on every set and at start; and the policy
node's import promise (it does not itself import torch, OpenCV or transformers)."""

from __future__ import annotations

import subprocess
import sys

from rclpy.node import Node
from rclpy.parameter import Parameter

from ivm_ros.ros.params import Param, declare_table, invalid_parameters

TABLE = (
    Param("mode", "hold", "what to do", choices=("hold", "silent")),
    Param("rate", 30.0, "Hz", lo=0.1, hi=100.0, read_only=True),
    Param("scale", [0.02, 0.05], "per unit"),
)


def test_table_declares_types_ranges_and_choices(ros_context):
    node = Node("params_table_test", context=ros_context)
    try:
        declare_table(node, TABLE)
        assert node.get_parameter("mode").value == "hold"
        assert node.get_parameter("scale").value == [0.02, 0.05]
        desc = node.describe_parameter("rate")
        assert desc.read_only and desc.floating_point_range[0].to_value == 100.0
        assert "one of: hold, silent" in node.describe_parameter("mode").additional_constraints
        assert invalid_parameters(node) == []
    finally:
        node.destroy_node()


def test_choices_are_enforced_on_set(ros_context):
    node = Node("params_choices_test", context=ros_context)
    try:
        declare_table(node, TABLE)
        result = node.set_parameters([Parameter("mode", value="explode")])[0]
        assert not result.successful and "mode must be one of ['hold', 'silent']" in result.reason
        assert node.get_parameter("mode").value == "hold"
        assert node.set_parameters([Parameter("mode", value="silent")])[0].successful
    finally:
        node.destroy_node()


def test_a_start_value_outside_the_choices_is_listed_until_fixed(ros_context):
    node = Node("params_start_test", context=ros_context, parameter_overrides=[Parameter("mode", value="bogus")])
    try:
        declare_table(node, TABLE)
        assert invalid_parameters(node) == ["mode must be one of ['hold', 'silent'], got 'bogus'"]
        assert node.set_parameters([Parameter("mode", value="hold")])[0].successful
        assert invalid_parameters(node) == []
    finally:
        node.destroy_node()


def test_policy_node_with_a_bad_watchdog_action_refuses_to_configure(ros_context):
    from lifecycle_msgs.msg import State

    from ivm_ros.ros.policy_node import PolicyNode

    node = PolicyNode(context=ros_context, parameter_overrides=[
        Parameter("watchdog_action", value="explode"), Parameter("autostart", value=False),
        Parameter("policy", value="support.policies:PixelPolicyForTest")])
    try:
        node.trigger_configure()
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        assert "watchdog_action must be one of ['hold', 'silent']" in node._last_error
        assert node.set_parameters([Parameter("watchdog_action", value="silent")])[0].successful
        node.trigger_configure()
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_INACTIVE
    finally:
        node.on_shutdown(None)
        node.destroy_node()


def test_policy_node_itself_imports_no_torch_opencv_or_transformers():
    code = ("import sys; import ivm_ros.ros.policy_node; "
            "print(sorted(m for m in ('torch', 'cv2', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_refused_set_never_reaches_the_control_core_and_an_accepted_one_does(ros_context):
    from ivm_ros.ros.policy_node import PolicyNode

    node = PolicyNode(context=ros_context, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("policy", value="support.policies:PixelPolicyForTest")])
    try:
        refused = node.set_parameters([Parameter("watchdog_action", value="explode")])[0]
        assert not refused.successful and node.control.settings.watchdog_action == "hold"
        both = node.set_parameters_atomically([Parameter("observation_timeout", value=2.0),
                                              Parameter("on_disable", value="sideways")])
        assert not both.successful and node.control.settings.observation_timeout == 0.5  # all or nothing
        assert node.set_parameters([Parameter("watchdog_action", value="silent")])[0].successful
        assert node.control.settings.watchdog_action == "silent"
    finally:
        node.destroy_node()
