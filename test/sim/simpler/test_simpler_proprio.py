"""The WidowX proprio vector: base-frame TCP pose from SimplerEnv's world poses (values seen in the real env), the
reference orientation, the gripper entries, and Frame.proprio on SimplerEnvDouble."""

from __future__ import annotations

import numpy as np
import pytest
from ivm_ros_sim.simpler import double as D
from ivm_ros_sim.simpler.env import SimplerTaskEnv
from ivm_ros_sim.simpler.proprio import PROPRIO_DIM, pose_matrix, widowx_proprio
from transforms3d.euler import euler2mat
from transforms3d.quaternions import mat2quat

from ivm_ros.policies.embedded.robots import ROBOTS, WIDOWX_PROPRIO

# seen in SimplerEnv's widowx_carrot_on_plate at reset: obs["agent"]["base_pose"], obs["extra"]["tcp_pose"], qpos
BASE = np.array([0.147, 0.028, 0.87, 0.0, 0.0, 0.0, 1.0])
TCP = np.array([-0.14506936, 0.03409147, 1.005321, 0.00808385, -0.72686553, 0.00525695, 0.6867122])
QPOS = np.array([-0.018, 0.040, 0.222, -0.005, 1.365, 0.002, 0.037, 0.037])


def test_the_real_home_pose_reads_the_controller_target_and_a_near_zero_orientation():
    p = widowx_proprio(BASE, TCP, QPOS, 1.0)
    assert p.shape == (PROPRIO_DIM,) == (len(WIDOWX_PROPRIO),) == (ROBOTS["widowx"].obs_dim,) and p.dtype == np.float32
    # the arm controller's target at reset, base frame: (0.292, -0.006, 0.135)
    np.testing.assert_allclose(p[:3], [0.29207, -0.00609, 0.13532], atol=2e-4)
    assert np.all(np.abs(p[3:6]) < 0.1)  # gripper pointing down: near R_REF, far from any Euler singularity
    assert p[6] == pytest.approx(0.074) and p[7] == 1.0


def test_a_yaw_about_base_z_shows_as_tcp_yaw_alone_and_the_command_is_clipped():
    tcp_in_base = np.linalg.inv(pose_matrix(BASE)) @ pose_matrix(TCP)
    turned = np.eye(4)
    turned[:3, :3] = euler2mat(0, 0, 0.3) @ tcp_in_base[:3, :3]
    turned[:3, 3] = tcp_in_base[:3, 3]
    world = pose_matrix(BASE) @ turned
    p0 = widowx_proprio(BASE, TCP, QPOS, -3.0)
    p1 = widowx_proprio(BASE, np.concatenate([world[:3, 3], mat2quat(world[:3, :3])]), QPOS, -3.0)
    np.testing.assert_allclose(p1[:3], p0[:3], atol=1e-6)
    assert p1[5] - p0[5] == pytest.approx(0.3, abs=1e-4)
    np.testing.assert_allclose(p1[3:5], p0[3:5], atol=1e-4)
    assert p0[7] == -1.0


def test_double_frames_carry_proprio_that_follows_the_arm_and_the_gripper_command():
    env = SimplerTaskEnv("widowx_carrot_on_plate", make=D.SimplerEnvDouble.make)
    first = env.reset(0, 3)
    assert first.proprio is not None and first.proprio.shape == (8,) and first.proprio[7] == 1.0
    np.testing.assert_allclose(first.proprio[:3], D.HOME_TCP, atol=1e-6)
    frame = env.step(np.array([0.02, 0, 0, 0, 0, 0, -1.0]))
    assert frame.proprio[0] == pytest.approx(D.HOME_TCP[0] + 0.02) and frame.proprio[7] == -1.0
    np.testing.assert_allclose(frame.proprio[3:6], 0.0, atol=1e-6)
    google = SimplerTaskEnv("google_robot_pick_coke_can", make=D.SimplerEnvDouble.make)
    assert google.reset(0, 0).proprio is None  # the WidowX vector only
