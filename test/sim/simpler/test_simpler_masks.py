"""Ground-truth instruction masks from the segmentation, on SimplerEnvDouble's segmentation."""

from __future__ import annotations

import numpy as np
import pytest
from ivm_ros_sim.simpler import double as D
from ivm_ros_sim.simpler.env import Frame, SimplerTaskEnv
from ivm_ros_sim.simpler.masks import gt_mask, mask_from_segmentation, relevant_ids


def _env(task: str = "widowx_carrot_on_plate") -> SimplerTaskEnv:
    return SimplerTaskEnv(task, make=D.SimplerEnvDouble.make)


def test_mask_covers_exactly_the_source_and_target_actors():
    env = _env()
    frame = env.reset(seed=0, episode_id=6)
    seg = frame.segmentation["main"]
    mask = gt_mask(env, frame)
    assert mask.shape == (48, 64) and mask.dtype == bool
    np.testing.assert_array_equal(mask, (seg == D.SOURCE_ID) | (seg == D.TARGET_ID))
    assert (seg == D.SOURCE_ID).any() and (seg == D.TARGET_ID).any() and not mask[seg == D.TABLE_ID].any()
    np.testing.assert_array_equal(gt_mask(env, frame, roles=("source",)), seg == D.SOURCE_ID)
    base = gt_mask(env, frame, camera="base")
    assert base.shape == (32, 32) and base.any()


def test_mask_follows_the_episode_placement_and_grasp_tasks_have_only_the_source():
    env = _env()
    a = gt_mask(env, env.reset(seed=0, episode_id=0))
    b = gt_mask(env, env.reset(seed=0, episode_id=5))
    assert a.sum() == b.sum() and not np.array_equal(a, b)
    google = _env("google_robot_pick_coke_can")
    frame = google.reset(seed=0)
    np.testing.assert_array_equal(gt_mask(google, frame), frame.segmentation["main"] == D.SOURCE_ID)


def test_raw_four_channel_segmentation_and_missing_segmentation():
    raw = np.zeros((4, 4, 4), np.uint32)
    raw[1, 2, 1] = 16
    raw[1, 1, 0] = 16  # mesh-level ids are not actor ids
    assert mask_from_segmentation(raw, [16]).sum() == 1 and mask_from_segmentation(raw, [16])[1, 2]
    assert not mask_from_segmentation(raw[..., 1], []).any()
    assert relevant_ids({"source": (16, "carrot"), "target": (17, "plate")}) == (16, 17)
    assert relevant_ids({"source": (16, "can")}) == (16,)
    env = _env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="add_segmentation"):
        gt_mask(env, Frame(images={"main": np.zeros((2, 2, 3), np.uint8)}, segmentation={}))
