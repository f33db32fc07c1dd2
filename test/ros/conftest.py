"""Fixtures for the node tests: a masking_node or a policy_node with a test double, and a probe wired to it."""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from support.policies import PixelPolicyForTest
from support.ros import PolicyProbe, Probe, Spinner, wait_for

from ivm_ros.ros.masking_node import MaskingNode
from ivm_ros.ros.policy_node import PolicyNode

PIXEL = "support.policies:PixelPolicyForTest"
CENTER = "support.predictors:CenterPredictorForTest"


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


@pytest.fixture
def rig(ros_context):
    """masking_node (centre predictor double, no dilation/feathering so outputs are exact) + probe."""
    made = []

    def make(listen=("masked_image", "mask"), probe_qos: QoSProfile | None = None, **params):
        """``params``: the node's parameters; ``listen``: the outputs the probe subscribes to; ``probe_qos``: the
        QoS of the probe's image publisher (default sensor data)."""
        defaults = {"model": CENTER, "dilate_ratio": 0.0, "feather_ratio": 0.0, "diagnostics_period": 0.2}
        defaults.update(params)
        overrides = [Parameter(k, value=v) for k, v in defaults.items()]
        node = MaskingNode(context=ros_context, parameter_overrides=overrides)
        probe = Probe(ros_context, image_qos=probe_qos)
        probe.listen(*listen)
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
