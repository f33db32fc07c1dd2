"""Camera frames of a CALVIN expert episode (scene D, both cameras), rendered up front so that a tool replaying
them measures the ROS nodes and not PyBullet. Used by tools/live_view_shot.py and tools/multi_camera_bench.py;
needs the `sim` extra and ../shared/calvin."""

from __future__ import annotations

import itertools

import numpy as np


def calvin_frames(task: str = "lift_red_block_table", frames: int = 60, static_size: int = 200,
                  gripper_size: int = 84, seed: int = 0) -> tuple[str, list[np.ndarray], list[np.ndarray]]:
    """(instruction, static camera frames, gripper camera frames) of the expert solving ``task``: ``frames`` of
    each (the episode's last frame repeats if it ends sooner), RGB uint8."""
    from ivm_ros_sim.calvin.env import CalvinSceneEnv
    from ivm_ros_sim.calvin.expert import Expert

    env = CalvinSceneEnv(static_size=static_size, gripper_size=gripper_size)
    try:
        obs, _ = env.reset(seed=seed, task=task)
        static, gripper = [obs["rgb_static"].copy()], [obs["rgb_gripper"].copy()]
        for action in itertools.islice(Expert(env).plan(task), frames - 1):
            obs, *_ = env.step(action)
            static.append(obs["rgb_static"].copy())
            gripper.append(obs["rgb_gripper"].copy())
        while len(static) < frames:
            static.append(static[-1])
            gripper.append(gripper[-1])
        return env.instruction, static, gripper
    finally:
        env.close()
