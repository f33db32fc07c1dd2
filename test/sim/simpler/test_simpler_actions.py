"""The policy/twist -> SimplerEnv action conversions, checked exactly against hand-built rotations."""

from __future__ import annotations

import numpy as np
import pytest
from ivm_ros_sim.simpler import actions as A


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _rodrigues(rotvec: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(rotvec)
    if angle == 0:
        return np.eye(3)
    k = rotvec / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def test_zero_and_single_axis_rotations_map_to_the_axis_times_the_angle():
    np.testing.assert_array_equal(A.rpy_to_axangle(0, 0, 0), np.zeros(3))
    for i in range(3):
        rpy = np.zeros(3)
        rpy[i] = -0.3
        expected = np.zeros(3)
        expected[i] = -0.3
        np.testing.assert_allclose(A.rpy_to_axangle(*rpy), expected, atol=1e-12)


@pytest.mark.parametrize("rpy", [(0.1, -0.2, 0.3), (-0.05, 0.02, 0.01), (1.0, 0.5, -0.7)])
def test_euler_deltas_are_static_xyz_and_the_axis_angle_is_the_same_rotation(rpy):
    expected = _rz(rpy[2]) @ _ry(rpy[1]) @ _rx(rpy[0])  # static x, then y, then z (transforms3d 'sxyz')
    rotvec = A.rpy_to_axangle(*rpy)
    np.testing.assert_allclose(_rodrigues(rotvec), expected, atol=1e-12)
    np.testing.assert_allclose(A.rotvec_to_rpy(rotvec), rpy, atol=1e-12)


def test_widowx_gripper_is_absolute_plus_one_open_minus_one_closed():
    g = A.GripperMap(A.WIDOWX)
    assert [g(v) for v in (1.0, 0.3, 0.0, -1.0)] == [1.0, 1.0, -1.0, -1.0]  # > 0 open
    octo = A.GripperMap(A.WIDOWX, threshold=0.5)  # Octo's raw [0, 1], 1 open
    assert [octo(v) for v in (1.0, 0.51, 0.5, 0.0)] == [1.0, 1.0, -1.0, -1.0]
    with pytest.raises(ValueError):
        A.GripperMap("panda")


def test_google_robot_gripper_is_relative_and_sticky_for_15_steps():
    g = A.GripperMap(A.GOOGLE_ROBOT)
    out = [g(v) for v in [1, 1, -1] + [-1] * 16]
    assert out[:2] == [0.0, 0.0]  # first step 0, then no change
    assert out[2:2 + A.STICKY_REPEATS] == [1.0] * A.STICKY_REPEATS  # closing: +1, held 15 steps
    assert out[2 + A.STICKY_REPEATS:] == [0.0, 0.0]
    assert g(1) == -1.0  # opening: -1
    g.reset()
    assert g(-1) == 0.0


def test_policy_action_to_env_action():
    a = np.array([0.01, -0.02, 0.03, 0.1, 0.0, 0.0, 1.0])
    env = A.policy_to_env(a, A.GripperMap())
    assert env.dtype == np.float64 and env.shape == (7,)
    np.testing.assert_array_equal(env[:3], a[:3])  # metres, unchanged
    np.testing.assert_allclose(env[3:6], [0.1, 0, 0], atol=1e-12)
    assert env[6] == 1.0
    with pytest.raises(ValueError):
        A.policy_to_env(np.zeros(6), A.GripperMap())


def test_twist_over_one_period_reaches_the_env_as_velocity_times_dt():
    lin, ang, dt = np.array([0.05, 0.0, -0.1]), np.array([0.3, -0.2, 0.5]), 0.2
    policy = A.twist_to_policy(lin, ang, -1.0, dt)
    np.testing.assert_allclose(policy[:3], lin * dt, atol=1e-15)
    assert policy[6] == -1.0
    env = A.policy_to_env(policy, A.GripperMap())
    np.testing.assert_allclose(env[3:6], ang * dt, atol=1e-12)
    assert env[6] == -1.0
    np.testing.assert_array_equal(A.twist_to_policy(np.zeros(3), np.zeros(3), 1.0, dt), [0, 0, 0, 0, 0, 0, 1])
