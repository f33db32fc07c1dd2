"""Ground-truth masks on known scenes: the right object, checked against geometry, never robot or distractors."""

from __future__ import annotations

import numpy as np
import pybullet as p
import pytest
from ivm_ros_sim.calvin.masks import gt_mask, mask_from_segmentation, relevant_parts
from ivm_ros_sim.calvin.scene import decode_segmentation


def project(env, point) -> tuple[int, int]:
    """Pixel (row, col) of a world point in the static camera."""
    spec = env.scene.cameras["static"]
    view = np.array(env.scene.view_matrix("static")).reshape(4, 4).T
    proj = np.array(spec.projection()).reshape(4, 4).T
    clip = proj @ view @ np.append(point, 1.0)
    ndc = clip[:3] / clip[3]
    return int((1 - ndc[1]) / 2 * spec.height), int((ndc[0] + 1) / 2 * spec.width)


def near(mask: np.ndarray, rc: tuple[int, int], r: int = 2) -> bool:
    return bool(mask[max(0, rc[0] - r): rc[0] + r + 1, max(0, rc[1] - r): rc[1] + r + 1].any())


@pytest.mark.parametrize("color", ["red", "blue", "pink"])
def test_block_mask_is_that_block(env, color):
    env.reset(seed=3, task=f"lift_{color}_block_table")
    mask = gt_mask(env)
    assert 5 < mask.sum() < 0.05 * mask.size
    pos, _ = env.scene.block_pose(f"block_{color}")
    assert near(mask, project(env, pos))
    for other in {"red", "blue", "pink"} - {color}:  # other blocks' centres are not in the mask
        assert not mask[project(env, env.scene.block_pose(f"block_{other}")[0])]
    _, seg = env.scene.render("static", segmentation=True)
    body, _ = decode_segmentation(seg)
    assert (body[mask] == env.scene.blocks[f"block_{color}"]).all()


def test_drawer_mask_covers_handle(env):
    env.reset(seed=0, task="open_drawer")
    mask = gt_mask(env)
    q = env.scene.joint_positions()["base__drawer"]
    handle = np.array([0.18, -0.262 - q, 0.36])  # front of the handle bar (see expert)
    assert near(mask, project(env, handle))
    assert not mask[project(env, env.scene.block_pose("block_red")[0])]


def test_light_masks_have_two_parts(env):
    for task, links in (("turn_on_lightbulb", ("switch_link", "light_link")),
                        ("turn_off_led", ("button_link", "led_link"))):
        env.reset(seed=1, task=task)
        _, seg = env.scene.render("static", segmentation=True)
        body, link = decode_segmentation(seg)
        mask = mask_from_segmentation(seg, relevant_parts(env.scene, task, env.start_state))
        for name in links:
            part = (body == env.scene.table) & (link == env.scene.table_link[name])
            assert part.any() and (mask & part).sum() == part.sum(), (task, name)
        assert not (mask & (body == env.scene.table) & (link == -1)).any()  # not the table body


def test_robot_and_distractors_never_masked(env):
    for seed in range(3):
        env.reset(seed=seed, task="lift_red_block_table", distraction="large")
        _, seg = env.scene.render("static", segmentation=True)
        body, _ = decode_segmentation(seg)
        mask = gt_mask(env)
        assert np.isin(body, env.distractor_bodies).any()  # distractors are in view
        assert not (mask & np.isin(body, env.distractor_bodies + [env.scene.robot])).any()


@pytest.mark.parametrize("task", ["open_drawer", "push_pink_block_left", "lift_blue_block_drawer", "move_slider_right"])
def test_distractors_do_not_move_task_objects(env, task):
    for seed in range(4):
        clean = env.reset(seed=seed, task=task, distraction="none")[0]["scene_obs"]
        busy = env.reset(seed=seed, task=task, distraction="large")[0]["scene_obs"]
        np.testing.assert_allclose(clean, busy, atol=2e-3, err_msg=f"seed {seed}")
    for b in env.distractor_bodies:
        assert p.getBasePositionAndOrientation(b, physicsClientId=env.client)[0][2] > -0.01
