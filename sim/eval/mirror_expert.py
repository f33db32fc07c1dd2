"""Our scripted expert behind CALVIN's model interface for ANOTHER simulator's CALVIN env (e.g. the official
calvin_env): a privileged agent that reads only the observations' ``robot_obs`` / ``scene_obs``.

Each :meth:`MirrorExpert.step` puts our simulator into the observed state
(:meth:`~ivm_ros_sim.calvin.env.CalvinSceneEnv.reset_to_state` with no physics step: arm joints, each finger at
half ``robot_obs[6]``, doors, lights, block poses; contacts recomputed) and asks our
:class:`~ivm_ros_sim.calvin.expert.Expert` for the next action. The expert's plan is a generator that reads our
simulator between actions; one is kept per subtask (a new one after every :meth:`MirrorExpert.reset`), so its
waypoints and phase carry across steps exactly as in our own evaluation.

The expert moves the env's *target* pose (CALVIN's relative actions are added to the previous target, not to the
measured tcp), so the mirror keeps the other env's target: the observed tcp pose at a chain start, then the sum
of the actions it sent (0.02 m / 0.05 rad per unit, as both envs scale them). A chain start is recognised from
the observations alone: the arm's joints (or a door, the drawer or a block) jumped further than one 30 Hz
control step allows (the joint motors are capped at 2 rad/s, i.e. 0.067 rad per step), which only a reset does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pybullet as p
from ivm_ros_sim.calvin.env import MAX_REL_ORN, MAX_REL_POS, CalvinSceneEnv
from ivm_ros_sim.eval.protocol import ExpertAgent

JOINT_JUMP = 0.15  #: rad: more than twice what a joint can move in one control step
DOOR_JUMP = 0.05  #: m: slider / drawer / button / switch change that means a reset
BLOCK_JUMP = 0.10  #: m: block displacement in one step that means a reset


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def teleported(prev_robot: np.ndarray, prev_scene: np.ndarray, robot: np.ndarray, scene: np.ndarray) -> bool:
    """Whether ``robot``/``scene`` obs cannot follow ``prev_*`` within one control step (an env reset)."""
    if np.max(np.abs(robot[7:14] - prev_robot[7:14])) > JOINT_JUMP:
        return True
    if np.max(np.abs(scene[:4] - prev_scene[:4])) > DOOR_JUMP:
        return True
    moved = [np.linalg.norm(scene[i:i + 3] - prev_scene[i:i + 3]) for i in (6, 12, 18)]
    return max(moved) > BLOCK_JUMP


class MirrorExpert(ExpertAgent):
    """CALVIN's model interface (``reset()``, ``step(obs, goal) -> (7,) action``) over our scripted expert run
    in a mirror of the observed state (see the module docstring). Goals are CALVIN's evaluation sentences.

    Args:
        env: our simulator used as the mirror (default: scene D without rendering).

    ``resyncs`` counts the chain starts recognised (the target re-taken from the observed tcp); ``plans_ended``
    counts subtasks whose plan ran out before the other env's oracle stopped the subtask (the arm then holds).
    """

    def __init__(self, env: CalvinSceneEnv | None = None) -> None:
        super().__init__(env if env is not None else CalvinSceneEnv(render=False))
        self._prev: tuple[np.ndarray, np.ndarray] | None = None
        self.target_pos = np.zeros(3)
        self.target_euler = np.zeros(3)
        self.resyncs = 0
        self.plans_ended = 0
        self._ended = False

    def reset(self) -> None:
        """A new subtask: the next step starts a new plan from the state then."""
        self._plan = None
        self._ended = False

    def mirror(self, robot_obs: np.ndarray, scene_obs: np.ndarray) -> None:
        """Puts our simulator into the observed state with the tracked tcp target (no physics step)."""
        env = self.env
        env.reset_to_state(robot_obs, scene_obs, physics_steps=0)
        p.performCollisionDetection(physicsClientId=env.client)  # contacts of this state (held block, on table)
        env.target_pos = self.target_pos.copy()
        env.target_euler = _wrap(self.target_euler)

    def step(self, obs: dict[str, Any], goal: str) -> np.ndarray:
        """The expert's next (7,) float64 action for the observed state; the arm holds once the plan ends."""
        robot = np.asarray(obs["robot_obs"], np.float64).reshape(15)
        scene = np.asarray(obs["scene_obs"], np.float64).reshape(24)
        if self._prev is None or teleported(*self._prev, robot, scene):
            self.target_pos, self.target_euler = robot[:3].copy(), robot[3:6].copy()
            self.resyncs += 1
        self._prev = (robot, scene)
        self.mirror(robot, scene)
        a = self.next_action(goal)
        if a is None:
            self.plans_ended += int(not self._ended)
            self._ended = True
            a = np.array([0.0] * 6 + [1.0 if robot[14] > 0 else -1.0])
        a = np.clip(np.asarray(a, np.float64), -1.0, 1.0)
        a[6] = 1.0 if a[6] > 0 else -1.0
        self.target_pos = self.target_pos + a[:3] * MAX_REL_POS
        self.target_euler = self.target_euler + a[3:6] * MAX_REL_ORN
        return a

    def close(self) -> None:
        self.env.close()
