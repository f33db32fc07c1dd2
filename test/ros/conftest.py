"""Fixtures for the node tests: a policy_node with a test-double policy and a probe wired to it."""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter
from support.policies import PixelPolicyForTest
from support.ros import PolicyProbe, Spinner, wait_for

from ivm_ros.ros.policy_node import PolicyNode

PIXEL = "support.policies:PixelPolicyForTest"


@pytest.fixture
def policy_rig(ros_context):
    """``make(**params)`` -> (policy_node with the pixel policy double, a PolicyProbe), spinning; shut down
    afterwards."""
    made = []

    def make(**params):
        PixelPolicyForTest.resets.clear()
        PixelPolicyForTest.calls.clear()
        PixelPolicyForTest.observations.clear()
        defaults = {"policy": PIXEL, "diagnostics_period": 0.2, "control_rate": 20.0}
        defaults.update(params)
        node = PolicyNode(context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in defaults.items()])
        probe = PolicyProbe(ros_context, image_qos=defaults.get("image_qos", "sensor_data"))
        spinner = Spinner(ros_context, node, probe)
        made.append((node, probe, spinner))
        assert wait_for(lambda: node._state_machine.current_state[1] == "active", 10)
        return node, probe

    yield make
    for node, probe, spinner in made:
        spinner.close()
        node.on_shutdown(None)
        node.destroy_node()
        probe.destroy_node()
