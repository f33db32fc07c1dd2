"""Shared fixtures for the simulator tests: small images keep the suite fast on 2 cores."""

from __future__ import annotations

import pytest

pytest.importorskip("pybullet")


@pytest.fixture(scope="module")
def env():
    from ivm_ros_sim.calvin.env import CalvinSceneEnv

    e = CalvinSceneEnv(static_size=64, gripper_size=32)
    yield e
    e.close()


@pytest.fixture(scope="module")
def fast_env():
    """No rendering: for expert rollouts."""
    from ivm_ros_sim.calvin.env import CalvinSceneEnv

    e = CalvinSceneEnv(static_size=64, gripper_size=32, render=False)
    yield e
    e.close()
