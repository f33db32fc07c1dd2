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


class _Rigs:
    """Node + probe pairs spinning together; :meth:`close` shuts every pair down (the fixtures' teardown)."""

    def __init__(self, context) -> None:
        self.context, self.made = context, []

    def start(self, node, probe):
        spinner = Spinner(self.context, node, probe)
        self.made.append((node, probe, spinner))
        assert wait_for(lambda: node._state_machine.current_state[1] == "active", 10)
        return node, probe

    def close(self) -> None:
        for node, probe, spinner in self.made:
            spinner.close()
            node.on_shutdown(None)
            node.destroy_node()
            probe.destroy_node()


def _overrides(defaults: dict, params: dict) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in {**defaults, **params}.items()]


@pytest.fixture
def policy_rig(ros_context):
    """``make(**params)`` -> (policy_node with the pixel policy double, a PolicyProbe), spinning; shut down
    afterwards."""
    rigs = _Rigs(ros_context)

    def make(**params):
        PixelPolicyForTest.resets.clear()
        PixelPolicyForTest.calls.clear()
        PixelPolicyForTest.observations.clear()
        defaults = {"policy": PIXEL, "diagnostics_period": 0.2, "control_rate": 20.0}
        node = PolicyNode(context=ros_context, parameter_overrides=_overrides(defaults, params))
        return rigs.start(node, PolicyProbe(ros_context, image_qos=params.get("image_qos", "sensor_data")))

    yield make
    rigs.close()


@pytest.fixture
def rig(ros_context):
    """masking_node (centre predictor double, no dilation/feathering so outputs are exact) + probe."""
    rigs = _Rigs(ros_context)

    def make(listen=("masked_image", "mask"), probe_qos: QoSProfile | None = None, **params):
        """``params``: the node's parameters; ``listen``: the outputs the probe subscribes to; ``probe_qos``: the
        QoS of the probe's image publisher (default sensor data)."""
        defaults = {"model": CENTER, "dilate_ratio": 0.0, "feather_ratio": 0.0, "diagnostics_period": 0.2}
        node = MaskingNode(context=ros_context, parameter_overrides=_overrides(defaults, params))
        probe = Probe(ros_context, image_qos=probe_qos)
        probe.listen(*listen)
        return rigs.start(node, probe)

    yield make
    rigs.close()
