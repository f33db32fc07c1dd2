"""MaskingPipeline with the release's fail-safe: chosen by ``fail_safe="release"`` or a masking config's
``release_compat``; such frames are labelled ``released`` and get the release's float32 arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from support.predictors import ConstantPredictorForTest

from ivm_ros.masking import MaskingConfig
from ivm_ros.pipeline import FailSafeSettings, MaskingPipeline

FRAME = np.full((40, 60, 3), 90, np.uint8)


@pytest.mark.parametrize("value, white", [(1e-12, True), (1e-3, False)])
def test_release_fail_safe_in_the_pipeline(value, white):
    """1e-12 + 0.5 rounds to 0.5 in float32 (absorbed: all background); 1e-3 survives (whole frame kept)."""
    for config, settings in (
        (MaskingConfig(threshold=0.5), FailSafeSettings("release")),
        (MaskingConfig(threshold=0.5, release_compat=True), FailSafeSettings("keep")),
        (MaskingConfig(threshold=0.5, release_compat=True), FailSafeSettings("hold_last")),
    ):
        pipeline = MaskingPipeline(ConstantPredictorForTest(value), config, settings)
        result = pipeline.run(FRAME, "rgb8", "pick up the cup")
        assert result.fail_safe and result.fail_safe_action == "released"
        assert (result.masked == 255).all() if white else np.array_equal(result.masked, FRAME)
        assert "release's fail-safe" in pipeline.fail_safe_warning(0.5)
    keep = MaskingPipeline(ConstantPredictorForTest(value), MaskingConfig(threshold=0.5)).run(FRAME, "rgb8", "x")
    assert keep.fail_safe_action == "kept" and np.array_equal(keep.masked, FRAME)
