"""Physics fidelity: our controller, gripper and mechanisms against the OFFICIAL calvin_env (797142c).

fidelity_data/physics.json was recorded in the official env by tools/calvin_official/record_physics.py (provenance
in fidelity_data/physics.md): fixed 30-step relative action sequences from official chain start states, and
mechanism checks (switch / button / door / drawer joints set or pushed, then zero motion). Each case is replayed
here from its recorded start state and compared step by step:

* sequences: tcp position within 2 mm and gripper width within 1 mm at every step (free motion is within
  0.01 mm; ``press_button``, the one with contacts, within 1 mm), the lights equal at every step;
* mechanisms: the bulb and LED equal at every step, the table joints within 1 mm.

Our start: ``reset_to_state``, which runs one physics step as the official ``PlayTableSimEnv.reset`` does
after setting the state (without updating the lights).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pybullet as p
import pytest
from ivm_ros_sim.calvin.env import CalvinSceneEnv

DATA = json.loads((Path(__file__).parent / "fidelity_data" / "physics.json").read_text())
TCP_TOL, GRIP_TOL, JOINT_TOL = 0.002, 0.001, 0.001  # m


@pytest.fixture(scope="module")
def env():
    e = CalvinSceneEnv(render=False)
    yield e
    e.close()


def official_reset(env: CalvinSceneEnv, start: dict) -> np.ndarray:
    """Resets to a recorded start as the official env does; returns the observation dict."""
    return env.reset_to_state(np.array(start["robot_obs"]), np.array(start["scene_obs"]))[0]


def replay_sequence(env: CalvinSceneEnv, rec: dict) -> tuple[np.ndarray, np.ndarray]:
    """Our robot_obs (31, 15) and scene_obs (31, 24) for a recorded sequence (reset row + one per action)."""
    obs = official_reset(env, rec["start"])
    robot, scene = [obs["robot_obs"]], [obs["scene_obs"]]
    for a in rec["actions"]:
        obs = env.step(np.array(a))[0]
        robot.append(obs["robot_obs"])
        scene.append(obs["scene_obs"])
    return np.array(robot), np.array(scene)


def replay_mechanism(env: CalvinSceneEnv, rec: dict) -> np.ndarray:
    """Our scene_obs[:6] rows (table joints m, lights 0/1) for a recorded mechanism case."""
    rows = [official_reset(env, rec["start"])["scene_obs"][:6]]
    still = np.array([0, 0, 0, 0, 0, 0, 1.0])
    for _ in range(rec["warmup"]):
        rows.append(env.step(still)[0]["scene_obs"][:6])
    if rec["poke"] is not None:
        joint, pos, vel = rec["poke"]
        p.resetJointState(env.scene.table, env.scene.table_joint[joint], pos, vel, physicsClientId=env.client)
    for _ in range(rec["steps"]):
        rows.append(env.step(still)[0]["scene_obs"][:6])
    return np.array(rows)


def test_recording_covers_the_targets():
    seq, mech = DATA["sequences"], DATA["mechanisms"]
    assert DATA["meta"]["calvin_env"].startswith("797142c")
    assert {"plus_x", "plus_z", "minus_y", "diagonal_down", "roll", "yaw", "mixed", "gripper_close_open",
            "press_button"} <= set(seq)
    assert all(len(r["actions"]) == 30 and len(r["robot_obs"]) == 31 for r in seq.values())
    assert any(k.startswith("switch_") for k in mech) and any(k.startswith("button_") for k in mech)
    assert any(k.startswith("drawer_") for k in mech) and any(k.startswith("slide_") for k in mech)


@pytest.mark.parametrize("name", sorted(DATA["sequences"]))
def test_sequence_tracks_official(env, name):
    rec = DATA["sequences"][name]
    robot, scene = replay_sequence(env, rec)
    ref_robot, ref_scene = np.array(rec["robot_obs"]), np.array(rec["scene_obs"])
    tcp_gap = np.linalg.norm(robot[:, :3] - ref_robot[:, :3], axis=1)
    grip_gap = np.abs(robot[:, 6] - ref_robot[:, 6])
    assert tcp_gap.max() <= TCP_TOL, f"{name}: tcp {tcp_gap.max() * 1000:.2f} mm at step {tcp_gap.argmax()}"
    assert grip_gap.max() <= GRIP_TOL, f"{name}: gripper width {grip_gap.max() * 1000:.2f} mm"
    np.testing.assert_array_equal(robot[:, 14], ref_robot[:, 14])
    np.testing.assert_array_equal(scene[:, 4:6], ref_scene[:, 4:6], err_msg=f"{name}: lights")
    assert np.abs(scene[:, :4] - ref_scene[:, :4]).max() <= JOINT_TOL


def test_free_motion_is_exact(env):
    """Without contacts the controller is the official one to numerical noise (not just within the target)."""
    for name in ("plus_x", "plus_z", "minus_y", "roll", "pitch", "yaw", "mixed", "gripper_close_open"):
        rec = DATA["sequences"][name]
        assert not any(rec["robot_contacts"]), name
        robot, _ = replay_sequence(env, rec)
        ref = np.array(rec["robot_obs"])
        assert np.abs(robot[:, :7] - ref[:, :7]).max() < 1e-4, name  # m / rad
        assert np.abs(robot[:, 7:14] - ref[:, 7:14]).max() < 1e-3, name  # rad


@pytest.mark.parametrize("name", sorted(DATA["mechanisms"]))
def test_mechanism_matches_official(env, name):
    rec = DATA["mechanisms"][name]
    rows, ref = replay_mechanism(env, rec), np.array(rec["rows"])
    np.testing.assert_array_equal(rows[:, 4:6], ref[:, 4:6], err_msg=f"{name}: lightbulb / LED per step")
    gap = np.abs(rows[:, :4] - ref[:, :4]).max(axis=0)
    assert gap.max() <= JOINT_TOL, f"{name}: slider/drawer/button/switch gap {np.round(gap * 1000, 2)} mm"
