"""The shipped lite checkpoint on fresh simulator scenes (seeds outside its training data): it must find what the
CALVIN evaluation sentence refers to, clean and under large distraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.masks import gt_mask

from ivm_ros.models.lite.checkpoint import SHIPPED
from ivm_ros.models.lite.evaluate import iou

pytestmark = pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped lite checkpoint")
TASKS = ("open_drawer", "lift_red_block_table", "move_slider_left", "turn_on_led", "push_blue_block_left",
         "close_drawer", "lift_pink_block_slider", "turn_off_lightbulb", "rotate_blue_block_right", "stack_block")


@pytest.fixture(scope="module")
def predictor():
    from ivm_ros.models.registry import load_predictor

    p = load_predictor("lite")
    yield p
    p.close()


@pytest.mark.parametrize("level", ["none", "large"])
def test_lite_masks_the_instructed_object(predictor, level):
    env = CalvinSceneEnv(render=True, render_gripper=False)
    try:
        frames, truths, texts = [], [], []
        for i, task in enumerate(TASKS):
            obs, info = env.reset(seed=900_000 + i, task=task, distraction=level, options={"instruction_split": "eval"})
            frames.append(obs["rgb_static"])
            truths.append(gt_mask(env))
            texts.append(info["instruction"])
    finally:
        env.close()
    probs = predictor.predict(torch.from_numpy(np.stack(frames)), texts).numpy()
    scores = iou(probs > 0.5, np.stack(truths))
    # held-out mIoU is ~0.82 on 400 frames per level; single frames vary (an LED under large distraction can
    # be missed entirely), so ten scenes are held to a mean well below that and half of them to a usable mask
    # (keeping everything scores ~0.03)
    assert scores.mean() >= 0.6, dict(zip(TASKS, scores.round(2)))
    assert (scores >= 0.5).sum() >= 5, dict(zip(TASKS, scores.round(2)))
