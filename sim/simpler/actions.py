"""The policy's 7-D actions and ROS twists -> SimplerEnv's env action, without ROS.

Policy action (what ``policy_node`` publishes on ``~/action`` and what Octo predicts for Bridge/WidowX after
unnormalisation), float64 (7,): ``dx dy dz`` end-effector translation deltas in metres, ``droll dpitch dyaw``
rotation deltas in radians (static-axes xyz Euler angles, transforms3d's ``sxyz``), ``gripper`` (open when
``> threshold``: 0 for the house convention +1 open / -1 closed, 0.5 for Octo's raw 1 open / 0 closed).

Env action (what SimplerEnv's ``env.step`` takes; SimplerEnv's own policy wrappers build it the same way),
float64 (7,): ``dx dy dz`` in metres (unchanged), the rotation delta as an axis-angle vector in radians
(``axis * angle`` of ``transforms3d.euler.euler2axangle(droll, dpitch, dyaw)``), and ``gripper``. Translation and
rotation are about the robot base's axes (checked on the real WidowX: +x of the action moved the tool along the
base's +x, i.e. world -x; a yaw delta turned it about the base's z; the target-delta controller reached ~0.22 rad
of 3 x 0.1 rad within those 3 steps, the rest settles after). Gripper:

* WidowX (``arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos``): absolute, +1 open / -1 closed.
* Google robot (``..._gripper_pd_joint_target_delta_pos_interpolate_by_planner``): relative. As SimplerEnv's
  Octo wrapper does: ``previous_open - current_open``, so closing gives +1 and opening -1, 0 at the episode's
  first step; a change (``|relative| > 0.5``) is repeated for ``STICKY_REPEATS`` steps. One difference: the
  open value is first binarised at ``threshold`` (1 / 0), where the wrapper subtracts Octo's raw outputs.

Twist (``delta_twist_cmds``, about the robot base's axes, m/s and rad/s) held for one control period ``dt`` s:
``dxyz = linear * dt`` and the rotation vector ``angular * dt``, expressed as the policy's Euler deltas, so the
env receives exactly ``angular * dt`` as its axis-angle.
"""

from __future__ import annotations

import numpy as np
from transforms3d.axangles import axangle2mat
from transforms3d.euler import euler2axangle, mat2euler

#: steps a google-robot gripper change is repeated (SimplerEnv's Octo wrapper: sticky_gripper_num_repeat)
STICKY_REPEATS = 15
WIDOWX, GOOGLE_ROBOT = "widowx", "google_robot"


def rpy_to_axangle(droll: float, dpitch: float, dyaw: float) -> np.ndarray:
    """Euler deltas (rad, static xyz) -> axis-angle rotation vector (3,) float64, rad (zero rotation: zeros)."""
    axis, angle = euler2axangle(float(droll), float(dpitch), float(dyaw))
    return np.asarray(axis, dtype=np.float64) * float(angle)


def rotvec_to_rpy(rotvec: np.ndarray) -> np.ndarray:
    """Axis-angle rotation vector (3,) rad -> Euler deltas (3,) rad (static xyz); inverse of
    :func:`rpy_to_axangle` for angles below pi."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(rotvec))
    if angle == 0.0:
        return np.zeros(3)
    return np.asarray(mat2euler(axangle2mat(rotvec / angle, angle), "sxyz"), dtype=np.float64)


def is_open(gripper: float, threshold: float = 0.0) -> bool:
    """Whether a policy gripper value asks for open (``> threshold``)."""
    return float(gripper) > threshold


class GripperMap:
    """Policy gripper -> env gripper for one robot (see the module docstring); call :meth:`reset` per episode."""

    def __init__(self, robot: str = WIDOWX, threshold: float = 0.0) -> None:
        if robot not in (WIDOWX, GOOGLE_ROBOT):
            raise ValueError(f"robot must be {WIDOWX!r} or {GOOGLE_ROBOT!r}, got {robot!r}")
        self.robot, self.threshold = robot, threshold
        self.reset()

    def reset(self) -> None:
        self.previous: float | None = None  # google robot: last open value (1 / 0)
        self.sticky: float = 0.0
        self.repeats = 0

    def __call__(self, gripper: float) -> float:
        opened = 1.0 if is_open(gripper, self.threshold) else 0.0
        if self.robot == WIDOWX:
            return 2.0 * opened - 1.0
        relative = 0.0 if self.previous is None else self.previous - opened
        self.previous = opened
        if abs(relative) > 0.5 and abs(self.sticky) <= 0.5:
            self.sticky = relative
        if abs(self.sticky) > 0.5:
            relative = self.sticky
            self.repeats += 1
            if self.repeats == STICKY_REPEATS:
                self.sticky, self.repeats = 0.0, 0
        return relative


def policy_to_env(action: np.ndarray, gripper: GripperMap) -> np.ndarray:
    """Policy action (7,) (m, rad Euler, gripper) -> env action (7,) float64 (m, rad axis-angle, env gripper)."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (7,):
        raise ValueError(f"expected a 7-D action, got shape {a.shape}")
    return np.concatenate([a[:3], rpy_to_axangle(*a[3:6]), [gripper(a[6])]])


def twist_to_policy(linear: np.ndarray, angular: np.ndarray, gripper: float, dt: float) -> np.ndarray:
    """Twist (m/s, rad/s) held ``dt`` s + a policy gripper value -> policy action (7,) float64 (see module)."""
    lin = np.asarray(linear, dtype=np.float64) * dt
    rpy = rotvec_to_rpy(np.asarray(angular, dtype=np.float64) * dt)
    return np.concatenate([lin, rpy, [float(gripper)]])
