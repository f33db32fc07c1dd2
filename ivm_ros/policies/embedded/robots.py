"""The robots an embedded policy can drive: the proprio vector it reads and the units of the actions it returns.

``calvin``: CALVIN's Franka, ``robot_obs`` (15,) (tcp xyz m, tcp euler xyz rad, gripper width m, 7 joints rad,
last gripper action +-1); actions in CALVIN's relative units (1.0 = 2 cm / 0.05 rad per step), so the network's
[-1, 1] outputs are used as they are.

``widowx``: SimplerEnv's WidowX 250 (Bridge tasks), the 8-value vector :data:`WIDOWX_PROPRIO` (computed from the
simulator by :mod:`ivm_ros_sim.simpler.proprio`); actions in the house policy convention of
:mod:`ivm_ros_sim.simpler.actions` (m and rad per control step at 5 Hz), the network's [-1, 1] outputs times
:data:`WIDOWX_ACTION_SCALE`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: WidowX proprio (8,) float32: name -> unit. Frame: the robot base (SimplerEnv's ``agent.robot.pose``). The TCP is
#: ``ee_gripper_link`` (between the fingertips); its orientation is the static-xyz Euler angles of
#: ``R_tcp @ R_REF.T`` with ``R_REF`` = 90 deg about base y (the gripper pointing straight down, fingers closing
#: along base y), so the WidowX's home pose reads about 0 and a yaw step of the policy changes ``tcp_yaw`` alone.
WIDOWX_PROPRIO = {"tcp_x": "m", "tcp_y": "m", "tcp_z": "m", "tcp_roll": "rad", "tcp_pitch": "rad", "tcp_yaw": "rad",
                  "gripper_opening": "m (sum of the two finger joints; ~0.074 open)",
                  "gripper_command": "last policy gripper value, +1 open / -1 closed (+1 at reset)"}
#: WidowX action scale (6,): network output 1.0 -> 5 cm per step (xyz) / 0.5 rad per step (roll, pitch, yaw);
#: the scripted expert moves at most 3.5 cm and 0.35 rad per step
WIDOWX_ACTION_SCALE = (0.05, 0.05, 0.05, 0.5, 0.5, 0.5)


@dataclasses.dataclass(frozen=True)
class Robot:
    """``obs_dim``: length of the proprio vector the policy is given (it picks ``PolicyArch.proprio_index`` from
    it); ``action_scale`` (6,): motion output multiplier (network [-1, 1] -> the robot's action units);
    ``low`` / ``high`` (obs_dim,): plausible range of each proprio value (NaN: from the training statistics, within
    10 standard deviations of the mean)."""

    name: str
    obs_dim: int
    action_scale: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    def proprio_range(self, mean: np.ndarray, std: np.ndarray, index: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) (obs_dim,) float32: NaN entries of the fixed range filled from the normalisation statistics
        of the ``index`` entries (``mean`` / ``std`` (len(index),)); entries the policy does not read stay NaN-free
        and wide."""
        low, high = np.array(self.low, np.float64), np.array(self.high, np.float64)
        for k, i in enumerate(index):
            if np.isnan(low[i]):
                low[i], high[i] = mean[k] - 10 * std[k], mean[k] + 10 * std[k]
        wide = np.isnan(low)
        low[wide], high[wide] = -1e6, 1e6
        return low.astype(np.float32), high.astype(np.float32)


_NAN = float("nan")
_ANGLE = np.pi + 0.5
ROBOTS: dict[str, Robot] = {
    # a closed CALVIN gripper reads slightly below 0 (-0.0104 in a sim launch); joints within +-2 pi
    "calvin": Robot("calvin", 15, (1.0,) * 6, (_NAN,) * 3 + (-_ANGLE,) * 3 + (-0.02,) + (-2 * np.pi,) * 7 + (-1.5,),
                    (_NAN,) * 3 + (_ANGLE,) * 3 + (0.2,) + (2 * np.pi,) * 7 + (1.5,)),
    "widowx": Robot("widowx", len(WIDOWX_PROPRIO), WIDOWX_ACTION_SCALE,
                    (_NAN,) * 3 + (-_ANGLE,) * 3 + (-0.01, -1.5), (_NAN,) * 3 + (_ANGLE,) * 3 + (0.1, 1.5)),
}


def robot(name: str) -> Robot:
    """The :class:`Robot` called ``name``; ValueError naming the known ones."""
    if name not in ROBOTS:
        raise ValueError(f"unknown robot {name!r}; known: {sorted(ROBOTS)}")
    return ROBOTS[name]
