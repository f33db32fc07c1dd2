"""IvmCalvinModel as the official CALVIN evaluation drives it (evaluate_policy.py's rollout with the raw
calvin_env): official observation dicts, one reset per subtask, and actions the official robot accepts."""

from __future__ import annotations

import numpy as np
import pytest
from support.policies import FixedActionConfig, FixedActionPolicyForTest, PixelPolicyForTest
from support.predictors import ConstantPredictorForTest

from ivm_ros.calvin_agent import IvmCalvinModel, calvin_action
from ivm_ros.pipeline import MaskingPipeline


def _official_obs(red: int = 100) -> dict:
    """What calvin_env's get_obs() returns (PlayTableSimEnv, cameras static_and_gripper)."""
    return {"rgb_obs": {"rgb_static": np.full((200, 200, 3), red, np.uint8),
                        "rgb_gripper": np.zeros((84, 84, 3), np.uint8)},
            "depth_obs": {"depth_static": np.zeros((200, 200), np.float32),
                          "depth_gripper": np.zeros((84, 84), np.float32)},
            "robot_obs": np.linspace(-1, 1, 15), "scene_obs": np.zeros(24)}


def test_actions_are_what_the_official_relative_action_space_takes():
    """The official robot scales the action with no clip and asserts ``gripper_action in (-1, 1)``."""
    a = calvin_action(np.array([1.5, -3.0, 0.2, 0.0, 0.9, -1.2, 0.3]))
    assert a.dtype == np.float64 and a.shape == (7,)
    np.testing.assert_array_equal(a, [1.0, -1.0, 0.2, 0.0, 0.9, -1.0, 1.0])
    assert calvin_action(np.zeros(7))[6] == -1.0  # 0 closes, as in CALVIN's data
    with pytest.raises(ValueError, match="non-finite"):
        calvin_action(np.array([0, 0, np.nan, 0, 0, 0, 1.0]))


def test_model_clips_a_policy_running_past_the_range():
    policy = FixedActionPolicyForTest(FixedActionConfig(action=(1.5, -3.0, 0.2, 0.0, 0.0, 0.0, -0.4)))
    model = IvmCalvinModel(policy, None)
    model.reset()
    a = model.step(_official_obs(), "open the drawer")
    np.testing.assert_allclose(a, [1.0, -1.0, 0.2, 0.0, 0.0, 0.0, -1.0], atol=1e-6)
    assert int(a[6]) in (-1, 1) and len(a) == 7


def test_every_subtask_resets_the_policy_with_its_sentence():
    """evaluate_policy's rollout calls model.reset() before each subtask; a repeated sentence (a new chain
    starting with the task the last one failed on) still starts the policy afresh."""
    PixelPolicyForTest.resets.clear()
    model = IvmCalvinModel(PixelPolicyForTest(), MaskingPipeline(ConstantPredictorForTest(1.0)))
    for goal in ("open the drawer", "open the drawer", "push the button"):
        model.reset()
        for _ in range(3):
            a = model.step(_official_obs(51), goal)
            assert a[6] == 1.0 and a[0] == pytest.approx(0.2)
    assert PixelPolicyForTest.resets == ["open the drawer", "open the drawer", "push the button"]
    obs = PixelPolicyForTest.observations[-1]
    assert obs.image_primary.shape == (200, 200, 3) and obs.image_primary.dtype == np.uint8
    assert obs.image_wrist.shape == (84, 84, 3)
    assert obs.proprio.dtype == np.float32 and obs.proprio.shape == (15,)


class WristMaskedPolicyForTest(PixelPolicyForTest):
    """PixelPolicyForTest that says it learnt on masked wrist views (what the test is about is the wrist's masking)."""

    def describe(self) -> dict:
        return {"policy": "pixel", "wrist_masking": "groundtruth"}


def test_a_policy_that_learnt_on_masked_wrist_views_gets_them_or_is_refused():
    from ivm_ros.masking import MaskingConfig

    with pytest.raises(ValueError, match="wrist_pipeline"):
        IvmCalvinModel(WristMaskedPolicyForTest(), MaskingPipeline(ConstantPredictorForTest(1.0)))
    with pytest.raises(ValueError, match="masking is off"):
        IvmCalvinModel(PixelPolicyForTest(), None, wrist_pipeline=MaskingPipeline(ConstantPredictorForTest(1.0)))
    nothing_named = MaskingPipeline(ConstantPredictorForTest(0.0), MaskingConfig(fail_safe="off"))
    model = IvmCalvinModel(WristMaskedPolicyForTest(), MaskingPipeline(ConstantPredictorForTest(1.0)),
                           wrist_pipeline=nothing_named)
    model.reset()
    model.step(_official_obs(51), "open the drawer")
    obs = PixelPolicyForTest.observations[-1]
    assert (obs.image_wrist == 255).all() and obs.image_wrist.shape == (84, 84, 3)  # blank: nothing named in view
    assert (obs.image_primary == 51).all()  # the static camera: its own pipeline (everything relevant)
    model.close()


def test_non_finite_policy_output_is_refused_not_sent():
    model = IvmCalvinModel(PixelPolicyForTest(), None)
    model.reset()
    with pytest.raises(ValueError, match="non-finite"):
        model.step(_official_obs(), "nan please")
