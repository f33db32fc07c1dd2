"""The WidowX proprio vector (8,) from a SimplerEnv observation (ROS-free, no SAPIEN import).

The layout and units are defined once, in :data:`ivm_ros.policies.embedded.robots.WIDOWX_PROPRIO`: tcp xyz (m)
and tcp roll / pitch / yaw (rad) in the robot base frame, the orientation relative to :data:`R_REF` (gripper
pointing straight down), the gripper opening (m) and the last policy gripper value (+1 open / -1 closed).

Read from ManiSkill2_real2sim's ``obs_mode="rgbd"`` observation: ``obs["agent"]["base_pose"]`` (7,) and
``obs["extra"]["tcp_pose"]`` (7,), each xyz (m, world) + wxyz quaternion, and ``obs["agent"]["qpos"]`` (8,) (six
arm joints in rad, then the two finger joints in m). Where ``tcp_pose`` is missing, ``env.unwrapped.tcp.pose``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from transforms3d.euler import mat2euler
from transforms3d.quaternions import quat2mat

from ivm_ros.policies.embedded.robots import WIDOWX_PROPRIO

#: the reference orientation (3, 3) in the base frame: 90 deg about base y (the TCP's x axis, its approach
#: direction, pointing down; its z axis forward), near the WidowX's home pose in SimplerEnv's Bridge tasks
R_REF = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
PROPRIO_DIM = len(WIDOWX_PROPRIO)


def pose_matrix(pose7: np.ndarray) -> np.ndarray:
    """xyz (m) + wxyz quaternion (7,) -> (4, 4) float64 homogeneous transform."""
    p = np.asarray(pose7, np.float64).reshape(7)
    t = np.eye(4)
    t[:3, :3] = quat2mat(p[3:])
    t[:3, 3] = p[:3]
    return t


def widowx_proprio(base_pose: np.ndarray, tcp_pose: np.ndarray, qpos: np.ndarray, gripper_command: float
                   ) -> np.ndarray:
    """The WidowX proprio (8,) float32 (module docstring) from the base and TCP world poses (7,) each, the joint
    positions ``qpos`` (8,) and the last policy gripper value."""
    tcp = np.linalg.inv(pose_matrix(base_pose)) @ pose_matrix(tcp_pose)
    rpy = mat2euler(tcp[:3, :3] @ R_REF.T, "sxyz")
    q = np.asarray(qpos, np.float64).reshape(-1)
    opening = float(q[-2] + q[-1])
    return np.array([*tcp[:3, 3], *rpy, opening, float(np.clip(gripper_command, -1.0, 1.0))], np.float32)


def proprio_from_obs(obs: dict[str, Any], unwrapped: Any, gripper_command: float) -> np.ndarray | None:
    """:func:`widowx_proprio` of a SimplerEnv observation (module docstring); None when it carries no agent state
    (``obs["agent"]`` without ``qpos`` / ``base_pose``)."""
    agent = obs.get("agent") or {}
    if "qpos" not in agent or "base_pose" not in agent:
        return None
    tcp = (obs.get("extra") or {}).get("tcp_pose")
    if tcp is None:
        pose = unwrapped.tcp.pose
        tcp = np.concatenate([np.asarray(pose.p, np.float64), np.asarray(pose.q, np.float64)])
    return widowx_proprio(agent["base_pose"], tcp, agent["qpos"], gripper_command)
