"""The environment: CALVIN layout of observations, determinism under a seed, clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.expert import Expert


def _run(env: CalvinSceneEnv, seed: int, task: str, level: str, steps: int = 12) -> list[dict[str, np.ndarray]]:
    obs, _ = env.reset(seed=seed, task=task, distraction=level)
    out = [obs]
    plan = Expert(env).plan(task)
    for _ in range(steps):
        obs, *_ = env.step(next(plan))
        out.append(obs)
    return out


def test_observation_layout(env):
    obs, info = env.reset(seed=0, task="open_drawer")
    assert obs["rgb_static"].shape == (64, 64, 3) and obs["rgb_static"].dtype == np.uint8
    assert obs["rgb_gripper"].shape == (32, 32, 3) and obs["rgb_gripper"].dtype == np.uint8
    assert obs["robot_obs"].shape == (15,) and obs["scene_obs"].shape == (24,)
    assert obs["rgb_static"].std() > 10  # a real picture, not a blank frame
    assert env.observation_space.contains({k: obs[k] for k in env.observation_space.spaces})
    assert info["instruction"] == "pull the handle to open the drawer" and info["family"] == "drawer"
    assert obs["scene_obs"][1] < 0.05  # open_drawer starts with the drawer closed
    k = np.array(env.camera_info()["static"]["k"])
    assert k.shape == (3, 3) and k[0, 2] == 32 and k[0, 0] == pytest.approx(32 / np.tan(np.deg2rad(5)))


def test_same_seed_same_episode(env):
    a = _run(env, 7, "lift_red_block_table", "large")
    other = CalvinSceneEnv(static_size=64, gripper_size=32)  # a fresh client must agree too
    try:
        b = _run(other, 7, "lift_red_block_table", "large")
    finally:
        other.close()
    c = _run(env, 7, "lift_red_block_table", "large")  # and the same env after other episodes
    for x, y, z in zip(a, b, c):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)
            np.testing.assert_array_equal(x[k], z[k], err_msg=k)


def test_different_seed_different_scene(env):
    s1 = env.reset(seed=1, task="push_red_block_left")[0]["scene_obs"]
    s2 = env.reset(seed=2, task="push_red_block_left")[0]["scene_obs"]
    assert not np.allclose(s1[6:], s2[6:])


def test_action_moves_tcp(env):
    env.reset(seed=0, task="turn_on_led")
    z0 = env.scene.tcp_pose()[0][2]
    for _ in range(5):
        env.step(np.array([0, 0, 1.0, 0, 0, 0, 1]))
    assert env.scene.tcp_pose()[0][2] == pytest.approx(z0 + 0.1, abs=0.02)  # 5 steps x 2 cm


@pytest.mark.parametrize("action", [np.zeros(6), np.zeros((1, 7)), np.array([0, 0, np.nan, 0, 0, 0, 1]),
                                    np.array([np.inf, 0, 0, 0, 0, 0, 1])])
def test_bad_action_raises(env, action):
    env.reset(seed=0, task="open_drawer")
    before = env.scene.scene_obs()
    with pytest.raises(ValueError):
        env.step(action)
    np.testing.assert_array_equal(before, env.scene.scene_obs())


def test_bad_task_and_level_raise(env):
    with pytest.raises(ValueError, match="unknown task"):
        env.reset(seed=0, task="make_coffee")
    with pytest.raises(ValueError, match="distraction level"):
        env.reset(seed=0, task="open_drawer", distraction="huge")


def test_step_before_reset_raises():
    e = CalvinSceneEnv(static_size=32, gripper_size=32)
    try:
        with pytest.raises(RuntimeError):
            e.step(np.zeros(7))
    finally:
        e.close()


def test_missing_assets_named(monkeypatch, tmp_path):
    from ivm_ros_sim.calvin.scene import shared_dir

    monkeypatch.setenv("IVM_ROS_SHARED", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="IVM_ROS_SHARED"):
        shared_dir()


def test_twist_to_action_and_clock(env):
    from ivm_ros_sim.calvin.env import twist_to_action

    a = twist_to_action([0.3, 0, -0.6], [0, 0, 0.75], gripper=0.0)
    np.testing.assert_allclose(a, [0.5, 0, -1.0, 0, 0, 0.5, -1.0])  # 0.3 m/s * 1/30 s = 1 cm = half a step
    with pytest.raises(ValueError):
        twist_to_action([0, 0], [0, 0, 0], 1.0)
    env.reset(seed=0, task="open_drawer")
    t0 = env.sim_time
    env.step(a)
    env.reset(seed=1, task="open_drawer")
    assert env.sim_time == pytest.approx(t0 + 1 / 30)


def _chain(i: int) -> dict:
    import json

    from ivm_ros_sim.calvin.scene import shared_dir

    with open(shared_dir() / "eval/eval_sequences.jsonl") as f:
        return [json.loads(line) for _, line in zip(range(i + 1), f)][i]


def test_reset_to_state_sets_the_official_start(env):
    c = _chain(0)
    obs, info = env.reset_to_state(c["robot_obs"], c["scene_obs"])
    assert info["task"] is None
    np.testing.assert_allclose(obs["scene_obs"], c["scene_obs"], atol=5e-3)  # after the reset's physics step
    np.testing.assert_allclose(obs["robot_obs"][7:14], c["robot_obs"][7:14], atol=1e-3)
    np.testing.assert_allclose(obs["robot_obs"][:6], c["robot_obs"][:6], atol=1e-3)  # tcp from the joints
    assert obs["robot_obs"][14] == 1.0 and abs(obs["robot_obs"][6] - c["robot_obs"][6]) < 1e-3
    exact, _ = env.reset_to_state(c["robot_obs"], c["scene_obs"], physics_steps=0)
    np.testing.assert_allclose(exact["scene_obs"], c["scene_obs"], atol=1e-9)
    np.testing.assert_allclose(exact["robot_obs"][7:14], c["robot_obs"][7:14], atol=1e-9)
    env.step(np.zeros(7))  # stepping without a task is allowed and scores nothing
    assert not env.succeeded
    with pytest.raises(ValueError, match="robot_obs must be 15"):
        env.reset_to_state(c["robot_obs"][:14], c["scene_obs"])
    with pytest.raises(ValueError, match="scene_obs must be 24"):
        env.reset_to_state(c["robot_obs"], [float("nan")] * 24)


def test_begin_subtask_scores_from_the_subtask_start(fast_env):
    """Chain 1 starts with the LED on: turn_off_led succeeds from there; turn_on_led, begun after it, is
    scored from the LED-off state, so pressing again succeeds too."""
    c = _chain(1)
    fast_env.reset_to_state(c["robot_obs"], c["scene_obs"])
    for task in ("turn_off_led", "turn_on_led"):
        info = fast_env.begin_subtask(task)
        assert info["instruction"] == T.eval_sentences()[task] and info["steps"] == 0
        for a in Expert(fast_env).plan(task):
            if fast_env.step(a)[2]:
                break
        assert fast_env.succeeded, task
    with pytest.raises(ValueError, match="unknown task"):
        fast_env.begin_subtask("fly")


def test_reset_to_state_does_not_depend_on_what_ran_before(fast_env):
    """PyBullet keeps contact caches across restoreState; a reset drops them, so a chain's first physics step is the
    same in a fresh env and in one that just ran another chain (chain 246 then 248 once differed by a step)."""
    from ivm_ros_sim.calvin.chains import load_chains
    from ivm_ros_sim.eval.protocol import ExpertAgent, run_chain

    before, target = load_chains(1, start=246)[0], load_chains(1, start=248)[0]
    run_chain(fast_env, ExpertAgent(fast_env), before)
    used = fast_env.reset_to_state(target.robot_obs, target.scene_obs)[0]
    fresh_env = CalvinSceneEnv(static_size=64, gripper_size=32, render=False)
    try:
        fresh = fresh_env.reset_to_state(target.robot_obs, target.scene_obs)[0]
    finally:
        fresh_env.close()
    np.testing.assert_array_equal(used["scene_obs"], fresh["scene_obs"])
    np.testing.assert_array_equal(used["robot_obs"], fresh["robot_obs"])
