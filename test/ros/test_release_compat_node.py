"""masking_node's release settings over real topics: ``release_compat`` (start-time) gives the release's
fail-safe and crop; ``crop_mode`` and ``fail_safe: release`` are parameters with enforced choices."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter
from support.ros import wait_for

from ivm_ros.ros.conversions import image_to_array

BRIGHTNESS = "support.predictors:BrightnessCenterPredictorForTest"
DARK = np.full((48, 64, 3), 20, np.uint8)  # centre probability 20/255 < 0.5: nothing passes; outside exactly 0


def _send_until(probe, node, image, counter: str, n: int) -> bool:
    return wait_for(lambda: (probe.send(image), node.counters.get(counter) >= n)[1], 10, 0.02)


def test_release_compat_gives_the_release_fail_safe_and_crop(rig):
    node, probe = rig(model=BRIGHTNESS, threshold=0.5, crop=True, release_compat=True)
    assert (node.pipeline.config.fail_safe, node.pipeline.config.crop_mode) == ("release", "release")
    probe.instruct("lift the block")
    assert _send_until(probe, node, DARK, "fail_safe_released", 2)
    # 0 + 0.5 is not > 0.5 (dropped) while 0.078 + 0.5 is: the release keeps the centre, crops to it, no resize
    out = image_to_array(probe.received["masked_image"][-1])[0]
    assert out.shape == (24, 32, 3) and (out == 20).all()
    assert not node.set_parameters([Parameter("release_compat", value=False)])[0].successful  # read-only


def test_fail_safe_release_and_crop_mode_parameters(rig):
    node, probe = rig(model=BRIGHTNESS, threshold=0.5, fail_safe="release")
    probe.instruct("lift the block")
    assert _send_until(probe, node, DARK, "fail_safe_released", 2)
    out = image_to_array(probe.received["masked_image"][-1])[0]
    assert out.shape == DARK.shape and (out[24, 32] == 20).all() and (out[0, 0] == 255).all()
    assert "one of: box, release" in node.describe_parameter("crop_mode").additional_constraints
    assert not node.set_parameters([Parameter("crop_mode", value="tight")])[0].successful
    assert node.set_parameters([Parameter("crop_mode", value="release")])[0].successful
    assert node.pipeline.config.crop_mode == "release"


def test_release_compat_reaches_the_ivm_predictor(rig, tmp_path):
    pytest.importorskip("peft")
    from ivm_ros.models.ivm.tiny import build_tiny_sources

    paths = build_tiny_sources(tmp_path)
    settings = {"sam_checkpoint": str(paths["sam"]), "llava_path": str(paths["llava"]),
                "ivm_checkpoint": str(paths["ivm"]), "arch": "tiny", "device": "cpu"}
    node, _probe = rig(model="ivm", release_compat=True, **{f"model_config.{k}": v for k, v in settings.items()})
    info = node.pipeline.predictor.describe()
    assert (info["precision"], info["llava_dtype"], info["lora_merged"]) == ("release", "float16", False)
    assert node.get_parameter("model_config.release_compat").value is False  # the node's switch, passed on
