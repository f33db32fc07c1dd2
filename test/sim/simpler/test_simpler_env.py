"""SimplerTaskEnv and SimplerEpisodes on SimplerEnvDouble (SimplerEnv itself is never installed in CI)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from ivm_ros_sim.simpler import double as D
from ivm_ros_sim.simpler.env import INSTALL, SimplerEnvMissing, SimplerTaskEnv, camera_roles, make_simpler
from ivm_ros_sim.simpler.episodes import SimplerEpisodes, parse_json_object


def _env(task: str = "widowx_carrot_on_plate", **variant) -> SimplerTaskEnv:
    return SimplerTaskEnv(task, variant, make=D.SimplerEnvDouble.make)


def test_reset_gives_both_cameras_their_intrinsics_and_the_instruction():
    env = _env()
    frame = env.reset(seed=3, episode_id=5)
    assert frame.images["main"].shape == (48, 64, 3) and frame.images["main"].dtype == np.uint8
    assert frame.images["base"].shape == (32, 32, 3)
    assert frame.segmentation["main"].shape == (48, 64) and frame.segmentation["main"].dtype == np.uint32
    assert env.instruction == "put carrot on plate" and env.episode_id == 5 and env.control_hz == 5.0
    info = env.camera_info()
    assert (info["main"]["width"], info["main"]["height"]) == (64, 48)
    assert info["main"]["k"].shape == (3, 3) and info["main"]["k"][2, 2] == 1.0
    assert env.actors() == {"source": (D.SOURCE_ID, "carrot"), "target": (D.TARGET_ID, "plate")}
    assert frame.steps == 0 and not frame.success


def test_episode_id_comes_from_the_seed_when_not_given_and_options_pass_through():
    env = _env()
    env.reset(seed=11, options={"robot_init_options": {"init_xy": [0.1, 0.0]}})
    first = env.episode_id
    env.reset(seed=11)
    assert env.episode_id == first
    _, info = env.env.reset(seed=0, options={"robot_init_options": {"x": 1}})
    assert info["reset_options"] == {"robot_init_options": {"x": 1}}


def test_step_converts_policy_actions_and_reports_success_and_the_time_limit():
    env = _env()
    env.reset(seed=0, episode_id=0)
    frame = env.step(np.array([0.03, 0.0, 0.0, 0.0, 0.0, 0.2, -1.0]))
    np.testing.assert_allclose(env.env.actions[-1], [0.03, 0, 0, 0, 0, 0.2, -1.0], atol=1e-12)
    assert frame.steps == 1 and not frame.success and env.gripper_action == -1.0
    frame = env.step(np.array([0.03, 0, 0, 0, 0, 0, 1.0]))
    assert frame.success and env.env.actions[-1][6] == 1.0
    for _ in range(58):
        frame = env.step(np.zeros(7))
    assert frame.truncated and frame.steps == 60


def test_google_robot_task_uses_the_overhead_camera_and_the_relative_gripper():
    env = _env("google_robot_pick_coke_can")
    env.reset(seed=0)
    assert env.cameras["main"] == "overhead_camera" and env.control_hz == 3.0 and env.robot == "google_robot"
    env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    assert [a[6] for a in env.env.actions] == [0.0, 1.0]
    assert env.actors() == {"source": (D.SOURCE_ID, "coke_can")}


def test_camera_roles():
    assert camera_roles({"base_camera": 0, "3rd_view_camera": 0}) == {"main": "3rd_view_camera", "base": "base_camera"}
    assert camera_roles({"other": 0}) == {"main": "other"}
    with pytest.raises(ValueError):
        camera_roles({"base_camera": 0})


def test_missing_simpler_env_says_how_to_install_it(monkeypatch):
    for name in ("simpler_env", "mani_skill2_real2sim", "mani_skill2_real2sim.envs"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ModuleNotFoundError
    with pytest.raises(SimplerEnvMissing) as err:
        make_simpler("widowx_carrot_on_plate")
    assert INSTALL in str(err.value) and "pip install -e --no-deps" in str(err.value)
    with pytest.raises(SimplerEnvMissing):
        SimplerEpisodes().start("widowx_carrot_on_plate", 0, 1, -1, "", "")


def test_episodes_seed_sequence_variant_remake_and_monotonic_stamps():
    eps = SimplerEpisodes(D.SimplerEnvDouble.make)
    frame, error = eps.start("widowx_carrot_on_plate", 7, 2, -1, "", "")
    assert frame is not None and not error and eps.current.seed == 7
    first_env, stamp1 = eps.env, eps.stamp()
    eps.start("widowx_carrot_on_plate", 7, 2, 4, "", "")
    assert eps.current.seed == 9 and eps.current.episode_id == 4 and eps.env is first_env
    assert eps.stamp() > stamp1 and eps.stamp() == (0, 400_000_000)  # one 5 Hz period per reset
    eps.start("widowx_carrot_on_plate", 7, 2, -1, '{"size": [24, 32]}', "")
    assert eps.env is not first_env and first_env.env.closed and eps.env.sizes["main"] == (24, 32)
    assert eps.current.variant == {"size": [24, 32]}
    frame, error = eps.start("widowx_carrot_on_plate", 7, 2, -1, "[1]", "")
    assert frame is None and "variant must be a JSON object" in error and eps.current is None
    frame, error = eps.start("no_such_task", 7, 2, -1, "", "")
    assert frame is None and "no_such_task" in error
    eps.close()


def test_parse_json_object():
    assert parse_json_object(" ", "x") == {}
    assert parse_json_object('{"a": 1}', "x") == {"a": 1}
    with pytest.raises(ValueError, match="x must be a JSON object"):
        parse_json_object("{", "x")
