"""``ivm-ros sim-data gripper-masks``: the gripper camera's ground-truth masks re-rendered from recorded states."""

from __future__ import annotations

import json

import numpy as np
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.expert import Expert
from ivm_ros_sim.calvin.masks import mask_from_segmentation, relevant_parts
from ivm_ros_sim.data import engine
from ivm_ros_sim.data.chain_demos import generate_chain_demos
from ivm_ros_sim.data.gripper_masks import add_gripper_masks, episode_masks

from ivm_ros.policies.embedded.data import load_demos


def test_masks_from_recorded_states_are_the_masks_seen_live():
    """An expert episode rendered with segmentation as it runs: the masks re-rendered from its recorded states are
    the live ones, and so are the frames."""
    env = CalvinSceneEnv(static_size=48, gripper_size=32, segmentation=True)
    try:
        obs, _ = env.reset(seed=1, task="lift_red_block_table")
        start_robot, start_scene = obs["robot_obs"], obs["scene_obs"]
        env.reset_to_state(start_robot, start_scene, physics_steps=0)
        obs = env.observe()
        env.begin_subtask("lift_red_block_table")
        parts = relevant_parts(env.scene, "lift_red_block_table", env.start_state)
        rec: dict[str, list[np.ndarray]] = {"robot": [], "scene": [], "rgb": [], "mask": [], "table": []}
        for a in Expert(env).plan("lift_red_block_table"):
            rec["robot"].append(obs["robot_obs"])
            rec["scene"].append(obs["scene_obs"])
            rec["rgb"].append(obs["rgb_gripper"])
            rec["mask"].append(mask_from_segmentation(obs["seg_gripper"], parts))
            rec["table"].append(mask_from_segmentation(obs["seg_gripper"], [(env.scene.table, -1)]))
            obs, _, done, _, _ = env.step(a)
            if done:
                break
        assert env.succeeded
        masks, mad = episode_masks(env, "lift_red_block_table", np.stack(rec["robot"]), np.stack(rec["scene"]),
                                   np.stack(rec["rgb"]))
    finally:
        env.close()
    live = np.stack(rec["mask"])
    assert masks["mask_gripper"].shape == live.shape == (len(rec["rgb"]), 32, 32)
    assert live[-1].any()  # the block fills the wrist view at the grasp
    assert (masks["mask_gripper"] == live).mean() > 0.995
    assert (masks["table_gripper"] == np.stack(rec["table"])).mean() > 0.995
    assert not (masks["mask_gripper"] & masks["table_gripper"]).any()  # the block is not the table
    assert mad < 2.0  # grey levels: the recorded states reproduce the views


def test_gripper_masks_command_adds_them_to_a_chain_folder_and_training_reads_them(tmp_path, capsys):
    out = tmp_path / "chains"
    index = generate_chain_demos(out, 1, seed=3, length=1, static_size=48, gripper_size=24, progress=False)
    assert engine.main(["gripper-masks", "--demos", str(out)]) == 0
    assert "gripper masks in 1 episodes" in capsys.readouterr().out
    entry = json.loads((out / "index.json").read_text())["episodes"][0]
    with np.load(out / entry["file"], allow_pickle=False) as z:
        assert z["mask_gripper"].shape == z["table_gripper"].shape == (len(z["actions"]), 24, 24)
        assert z["mask_gripper"].dtype == bool and z["rgb_static"].shape[1:] == (48, 48, 3)  # the rest kept
    assert entry["gripper_masks"]["frames"] == index["episodes"][0]["steps"] and entry["gripper_masks"]["rgb_mad"] < 2
    before = (out / entry["file"]).stat().st_mtime_ns
    summary = add_gripper_masks(out, progress=False)  # done already: skipped
    assert (out / entry["file"]).stat().st_mtime_ns == before and summary["episodes"] == 1
    demos = load_demos(out, 32, 16, progress=False, stored_gripper_masks=True)
    assert demos.gripper_prob.shape == (len(demos), 16, 16) and demos.gripper_prob.dtype == np.uint8
