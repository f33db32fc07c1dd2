"""masking_node with predictor_rate: masks at camera rate over real topics (rclpy in-process)."""

from __future__ import annotations

import numpy as np
from rclpy.parameter import Parameter
from support.ros import Probe, wait_for

from ivm_ros.ros.conversions import image_to_array
from ivm_ros.ros.masking_node import MaskingNode

H, W = 48, 64
PERIOD_NS = 33_333_333  # a 30 Hz camera


def _frame() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _instruct(node: MaskingNode, probe: Probe, text: str) -> None:
    probe.instruct(text)
    assert wait_for(lambda: node.stats()["instruction"] == text, 10)


def _mask_of(probe: Probe, img: np.ndarray, stamp_ns: int) -> np.ndarray:
    """Publishes ``img`` stamped ``stamp_ns`` (again every 0.2 s, should a best-effort frame be lost) until the
    mask of this very frame arrives; returns it (H, W) uint8."""

    def mine() -> list:
        return [m for m in probe.received["mask"]
                if m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec == stamp_ns]

    assert wait_for(lambda: (probe.send(img, stamp_ns=stamp_ns), bool(mine()))[1], 10, 0.2), f"no mask for {stamp_ns}"
    return image_to_array(mine()[-1])[0][..., 0]


def _diag(probe: Probe, key: str, at_least: int) -> bool:
    for array in probe.diagnostics:
        for status in array.status:
            values = {kv.key: kv.value for kv in status.values}
            if int(values.get(key, "0") or 0) >= at_least:
                return True
    return False


def test_predictor_rate_holds_or_carries_the_mask_and_counts_each_kind(rig):
    node, probe = rig(predictor_rate=1.0, propagation="hold")
    probe.listen_diagnostics()
    _instruct(node, probe, "the centre")
    img, stamp = _frame(), 5_000_000_000
    centre = np.zeros((H, W), np.uint8)
    centre[H // 4:3 * H // 4, W // 4:3 * W // 4] = 255
    for k in range(8):  # 8 frames of a 30 Hz camera: at 1 Hz the first is predicted, the others hold its mask
        np.testing.assert_array_equal(_mask_of(probe, img, stamp + k * PERIOD_NS), centre)
    stats = node.stats()
    assert stats.get("mask_predicted") == 1 and stats.get("mask_held", 0) >= 7, stats
    assert wait_for(lambda: _diag(probe, "mask_held", 7), 5), "the counters are not on /diagnostics"

    _instruct(node, probe, "something else")  # the old mask names another object: predict at once
    _mask_of(probe, img, stamp + 8 * PERIOD_NS)
    assert node.stats()["mask_predicted"] == 2

    node.set_parameters([Parameter("propagation", value="flow")])  # new settings: predict, then carry by flow
    for k in (9, 10, 11):
        np.testing.assert_array_equal(_mask_of(probe, img, stamp + k * PERIOD_NS), centre)  # static scene
    stats = node.stats()
    assert stats["mask_predicted"] == 3 and stats.get("mask_propagated", 0) >= 2, stats

    _mask_of(probe, img, stamp + 11 * PERIOD_NS + 1_000_000_000)  # one second later: due by rate
    assert node.stats()["mask_predicted"] == 4


def test_predictor_rate_zero_predicts_every_frame(rig):
    node, probe = rig()  # the default: predictor_rate 0
    _instruct(node, probe, "the centre")
    for k in range(3):
        _mask_of(probe, _frame(), 7_000_000_000 + k * PERIOD_NS)
    stats = node.stats()
    assert stats.get("mask_predicted", 0) >= 3 and "mask_held" not in stats and "mask_propagated" not in stats


def test_propagation_parameters_are_described_and_checked(rig):
    node, _ = rig()
    for name in ("predictor_rate", "predictor_every", "propagation", "propagation_fallback",
                 "propagation_min_confidence"):
        assert node.describe_parameter(name).description, name
    refused = node.set_parameters([Parameter("propagation", value="optical"),
                                   Parameter("propagation_fallback", value="guess"),
                                   Parameter("predictor_rate", value=-1.0)])
    assert not any(r.successful for r in refused)
    assert "flow" in refused[0].reason and "repredict" in refused[1].reason
    assert node.set_parameters([Parameter("propagation_fallback", value="whole_frame")])[0].successful
    assert node.pipeline.tracker.settings.fallback == "whole_frame"
