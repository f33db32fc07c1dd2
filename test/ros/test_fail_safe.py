"""masking_node's fail-safe over real topics: frames in which nothing passes the threshold are visible (counted,
a throttled WARN log, a WARN status on /diagnostics) and get what ``fail_safe`` chooses: keep, hold_last, drop."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter
from support.ros import wait_for

from ivm_ros.ros.conversions import image_to_array

BRIGHTNESS = "support.predictors:BrightnessCenterPredictorForTest"
BRIGHT, DARK = np.full((48, 64, 3), 240, np.uint8), np.full((48, 64, 3), 20, np.uint8)


def _send_until(probe, node, image, counter: str, n: int) -> bool:
    return wait_for(lambda: (probe.send(image), node.counters.get(counter) >= n)[1], 10, 0.02)


def _statuses(probe):
    return [s for msg in list(probe.diagnostics) for s in msg.status if s.name.startswith("/masking_node:")]


def test_fail_safe_frames_above_the_warn_fraction_are_a_warn_status_and_a_log_line(rig):
    node, probe = rig(model=BRIGHTNESS, threshold=0.5, fail_safe_warn_fraction=0.3)
    probe.listen_diagnostics()
    probe.instruct("lift the block")
    assert _send_until(probe, node, BRIGHT, "frames_out", 3)
    assert _send_until(probe, node, DARK, "fail_safe", 5)
    assert node.counters.get("fail_safe_kept") == node.counters.get("fail_safe") >= 5
    assert node.stats()["fail_safe_fraction"] > 0.3
    unmasked = image_to_array(probe.received["masked_image"][-1])[0]
    np.testing.assert_array_equal(unmasked, DARK)  # keep: the whole frame

    def warned() -> bool:
        found = _statuses(probe)
        return bool(found) and found[-1].level == DiagnosticStatus.WARN and "published UNMASKED" in found[-1].message

    assert wait_for(warned, 5), [s.message for s in _statuses(probe)[-3:]]


def test_fail_safe_drop_publishes_nothing_and_hold_last_reuses_the_mask(rig):
    node, probe = rig(model=BRIGHTNESS, threshold=0.5, fail_safe="drop")
    probe.instruct("lift the block")
    assert _send_until(probe, node, BRIGHT, "frames_out", 2)
    good = image_to_array(probe.received["masked_image"][-1])[0]
    out_before = node.counters.get("frames_out")
    assert _send_until(probe, node, DARK, "fail_safe_dropped", 5)
    assert node.counters.get("frames_out") == out_before

    assert node.set_parameters([Parameter("fail_safe", value="hold_last"), Parameter("fail_safe_hold", value=3)])[0]
    assert _send_until(probe, node, BRIGHT, "frames_out", out_before + 2)
    held_before = node.counters.get("fail_safe_held")
    assert _send_until(probe, node, DARK, "fail_safe_held", held_before + 3)
    outputs = [image_to_array(m)[0] for m in list(probe.received["masked_image"])]
    held = [a for a in outputs if (a[24, 32] == DARK[24, 32]).all() and (a[0, 0] == 255).all()]
    assert len(held) >= 3, "no dark frame got the bright frame's mask"  # centre kept, background filled
    assert good.shape == held[0].shape and (good[0, 0] == 255).all()
    assert _send_until(probe, node, DARK, "fail_safe_kept", 1)  # after 3 held frames: the whole frame
    assert not node.set_parameters([Parameter("fail_safe", value="explode")])[0].successful
