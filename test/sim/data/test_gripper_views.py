"""``ivm-ros sim-data gripper-views``: the gripper camera re-rendered at the recorded states under another table
texture and light, paired with the recorded frames."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.data import engine
from ivm_ros_sim.data.chain_demos import generate_chain_demos
from ivm_ros_sim.data.gripper_masks import add_gripper_masks
from ivm_ros_sim.data.gripper_views import add_gripper_views, appearance_level, episode_views

from ivm_ros.policies.embedded.data import load_demos


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    """One recorded chain subtask (48 px static, 24 px gripper camera) with its gripper masks."""
    out = tmp_path_factory.mktemp("views") / "chains"
    generate_chain_demos(out, 1, seed=3, length=1, static_size=48, gripper_size=24, progress=False)
    add_gripper_masks(out, progress=False)
    return out


def test_texture_changes_only_the_tables_pixels_of_the_same_states(chains):
    """Under ``texture`` (the scene's light kept) the re-rendered frames differ from the recorded ones on the table's
    pixels and hardly anywhere else: the states, and so the gripper, blocks and handles, are where they were."""
    entry = json.loads((chains / "index.json").read_text())["episodes"][0]
    with np.load(chains / entry["file"], allow_pickle=False) as z:
        robot, scene_obs, recorded, table = z["robot_obs"], z["scene_obs"], z["rgb_gripper"], z["table_gripper"]
    env = CalvinSceneEnv(48, 24)
    try:
        views = [episode_views(env, robot, scene_obs, "texture", seed)["gripper"] for seed in (0, 1, 2, 0)]
        plain = episode_views(env, robot, scene_obs, "lighting", 5)["gripper"]  # the scene's texture is back after each
    finally:
        env.close()
    assert views[0].shape == recorded.shape and views[0].dtype == np.uint8
    assert (views[0] == views[3]).all()  # the seed draws it
    changed = [np.abs(v.astype(np.int16) - recorded).max(-1) > 12 for v in views[:3]]
    assert max(c[table].mean() for c in changed) > 0.5  # some other texture in most of the table's pixels
    assert all(c[~table].mean() < 0.05 for c in changed)  # the rest as recorded (edges blur into the table)
    assert np.abs(plain.astype(np.int16) - recorded).mean() > 3  # lighting changes every pixel's shade


def test_command_adds_views_once_and_training_reads_them(chains, tmp_path, capsys):
    folder = tmp_path / "chains"
    shutil.copytree(chains, folder)
    assert engine.main(["gripper-views", "--demos", str(folder), "--seed", "7"]) == 0
    assert "gripper views (appearance) in 1 episodes" in capsys.readouterr().out
    index = json.loads((folder / "index.json").read_text())
    entry = index["episodes"][0]
    with np.load(folder / entry["file"], allow_pickle=False) as z:
        assert z["rgb_gripper_varied"].shape == z["rgb_gripper"].shape
        assert "mask_gripper" in z.files and z["rgb_static"].shape[1:] == (48, 48, 3)  # the rest kept
    assert entry["gripper_views"]["seed"] == 7 and entry["gripper_views"]["level"] == "appearance"
    assert entry["gripper_views"]["rgb_mad"] > 3 and index["gripper_views"]["episodes"] == 1
    before = (folder / entry["file"]).stat().st_mtime_ns
    add_gripper_views(folder, progress=False)  # done already: skipped
    assert (folder / entry["file"]).stat().st_mtime_ns == before
    demos = load_demos(folder, 32, 16, progress=False, stored_gripper_views=True)
    assert demos.gripper_varied.shape == demos.gripper.shape == (len(demos), 16, 16, 3)
    with pytest.raises(ValueError, match="gripper-views"):
        load_demos(chains, 32, 16, progress=False, stored_gripper_views=True)  # the folder without them


def test_static_views_are_rendered_under_the_same_draw_and_train_a_paired_policy(chains, tmp_path, capsys):
    """``--static``: the static camera of the same states under the episode's draw joins the file; sim-train-policy
    ``--static-views`` masks them by their own lite probabilities (cached apart, ``--precompute-probs`` fills both)
    and records the flag in the checkpoint and its recipe."""
    from ivm_ros_sim.train import policy

    from ivm_ros.policies.embedded import checkpoint

    folder = tmp_path / "chains"
    shutil.copytree(chains, folder)
    assert engine.main(["gripper-views", "--demos", str(folder), "--level", "texture"]) == 0  # the wrist's first
    entry = json.loads((folder / "index.json").read_text())["episodes"][0]
    with np.load(folder / entry["file"], allow_pickle=False) as z:
        wrist = z["rgb_gripper_varied"]
    assert engine.main(["gripper-views", "--demos", str(folder), "--level", "texture", "--static"]) == 0
    assert "static views (level pose) by" in capsys.readouterr().out
    entry = json.loads((folder / "index.json").read_text())["episodes"][0]
    with np.load(folder / entry["file"], allow_pickle=False) as z:
        recorded, varied = z["rgb_static"], z["rgb_static_varied"]
        assert (z["rgb_gripper_varied"] == wrist).all()  # re-rendered alike (the same draw), replaced once
    assert varied.shape == recorded.shape and varied.dtype == np.uint8
    assert entry["gripper_views"]["static_rgb_mad"] > 3  # another table in the static camera too
    base = ["--demos", str(folder), "--policies", "masked", "--steps", "1", "--arch", "static_size=32",
            "--arch", "widths=[8,16]", "--arch", "hidden=32", "--drop-gripper-action"]
    assert policy.main([*base, "--precompute-probs", "0/1", "--static-views"]) == 0
    assert "shard 0/1: 1 episodes computed" in capsys.readouterr().out
    assert len(list(folder.glob("probs_*_varied/*.npz"))) == 1 and len(list(folder.glob("probs_*/*.npz"))) == 2
    assert policy.main([*base, "--out", str(tmp_path / "run"), "--wrist-views", "0.5", "--wrist-consistency", "1",
                        "--static-views"]) == 0
    _, _, _, info = checkpoint.load(tmp_path / "run" / "policy_masked.msgpack")
    assert info["augment"]["static_views"] is True and info["augment"]["wrist_consistency"] == 1
    assert policy.main([*base, "--out", str(tmp_path / "bad"), "--static-views"]) == 2  # no wrist views to pair with
    assert "needs wrist_views" in capsys.readouterr().err
    assert policy.main(["--demos", str(chains), *base[2:], "--out", str(tmp_path / "none"), "--wrist-views", "0.5",
                        "--static-views"]) == 2  # a folder without them
    assert "has no rgb_gripper_varied: add it with `ivm-ros sim-data gripper-views" in capsys.readouterr().err


def test_static_pose_recorded_undoes_only_the_jitter_and_renders_stale_views_again(chains, tmp_path, capsys):
    """``--static-pose recorded``: under ``appearance`` the static camera renders from the scene's own pose (the
    level's jitter undone) while texture and light are drawn as with the jitter, so the wrist views are the same;
    a folder whose static views have the other pose is rendered again, then skipped."""
    entry = json.loads((chains / "index.json").read_text())["episodes"][0]
    with np.load(chains / entry["file"], allow_pickle=False) as z:
        robot, scene_obs = z["robot_obs"][:3], z["scene_obs"][:3]
    env = CalvinSceneEnv(48, 24)
    try:
        yaml_pose, render = env.scene.cameras["static"], env.scene.render
        poses: list = []

        def render_noting_the_static_pose(camera, *a, **k):  # a spy on the real renderer: which pose rendered
            if camera == "static":
                poses.append(env.scene.cameras["static"])
            return render(camera, *a, **k)

        env.scene.render = render_noting_the_static_pose
        level = episode_views(env, robot, scene_obs, "appearance", 4, ("gripper", "static"))
        at_level = poses[:]
        poses.clear()
        recorded = episode_views(env, robot, scene_obs, "appearance", 4, ("gripper", "static"), "recorded")
    finally:
        env.close()
    n = len(robot)  # the frames' renders (the reset renders its own observation first)
    assert all(p == yaml_pose for p in poses[-n:]) and all(p != yaml_pose for p in at_level[-n:])
    assert (recorded["gripper"] == level["gripper"]).all()  # the same texture and light
    assert not (recorded["static"] == level["static"]).all()
    folder = tmp_path / "chains"
    shutil.copytree(chains, folder)
    assert engine.main(["gripper-views", "--demos", str(folder), "--static"]) == 0
    assert "static views (level pose)" in capsys.readouterr().out
    with np.load(folder / entry["file"], allow_pickle=False) as z:
        jittered = z["rgb_static_varied"]
    assert engine.main(["gripper-views", "--demos", str(folder), "--static", "--static-pose", "recorded"]) == 0
    assert "static views (recorded pose)" in capsys.readouterr().out
    entry = json.loads((folder / "index.json").read_text())["episodes"][0]
    assert entry["gripper_views"]["static_pose"] == "recorded"
    with np.load(folder / entry["file"], allow_pickle=False) as z:
        assert not (z["rgb_static_varied"] == jittered).all()  # rendered again, at the recorded pose
    before = (folder / entry["file"]).stat().st_mtime_ns
    add_gripper_views(folder, static=True, static_pose="recorded", progress=False)
    assert (folder / entry["file"]).stat().st_mtime_ns == before  # now current: skipped
    with pytest.raises(SystemExit):  # a pose without static views to place
        engine.main(["gripper-views", "--demos", str(folder), "--static-pose", "recorded"])
    assert "needs static views (--static)" in capsys.readouterr().err


def test_levels_that_add_objects_or_change_no_appearance_are_refused(tmp_path):
    assert appearance_level("lighting") == "lighting"
    for level in ("paper-large", "clutter", "none", "camera_jitter"):
        with pytest.raises(ValueError, match="changes only the table texture or the light"):
            appearance_level(level)
    with pytest.raises(SystemExit):  # a folder without its index: a usage error, not a traceback
        engine.main(["gripper-views", "--demos", str(tmp_path)])
