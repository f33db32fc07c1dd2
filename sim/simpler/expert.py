"""A scripted WidowX expert from privileged state for SimplerEnv's four Bridge tasks (ROS-free, no SAPIEN import).

:class:`SimplerExpert` reads the simulator's state through ``task_env.env.unwrapped`` (ManiSkill2_real2sim):
``agent.robot.pose`` (the robot base in the world), ``tcp.pose`` (``ee_gripper_link``, the point between the
fingertips), the arm controller's accumulated target ``agent.controller.controllers["arm"]._target_pose`` (base
frame; the TCP pose is used where it is missing), ``source_obj_pose`` / ``target_obj_pose`` (the actors' centres
of mass in the world), ``episode_source_obj_bbox_world`` / ``episode_target_obj_bbox_world`` (extents, m) and
``agent.check_grasp(actor)``. Poses are objects with ``p`` (3,) m and ``q`` (4,) wxyz quaternion.

A small state machine (:data:`PHASES`): approach above the source with the fingers across its long axis ->
descend -> close -> lift -> carry the *object* (not the hand) above the target -> lower -> open -> retreat ->
done; a lift that leaves the object on the table goes back to approach. Its actions are policy actions (see
:mod:`ivm_ros_sim.simpler.actions`): (7,) float64, xyz deltas in m and a yaw delta in rad about the robot
base's axes, roll = pitch = 0, gripper +1 open / -1 closed. A step's translation is clipped to
``Plan.max_step`` m (norm) and its yaw to ``Plan.max_yaw`` rad, well inside the bounds of the controller
``arm_pd_ee_target_delta_pose_align2`` (:data:`ENV_POS_BOUND` per axis, :data:`ENV_ROT_BOUND` rotation norm;
the controller does not normalise, so it would take anything, and the 5 Hz PD arm lags ~1.3 cm behind a
2 cm/step target). Goals are taken relative to the controller's target, so an unreached target is not
integrated twice.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from transforms3d.quaternions import quat2mat

#: the env's action space for arm_pd_ee_target_delta_pose_align2 (widowx defaults: pos +-1 m, rot pi/2 rad)
ENV_POS_BOUND, ENV_ROT_BOUND = 1.0, math.pi / 2
PHASES = ("approach", "descend", "close", "lift", "carry", "lower", "release", "retreat", "done")
OPEN, CLOSED = 1.0, -1.0


@dataclasses.dataclass(frozen=True)
class Plan:
    """One task's geometry (m, rad; heights are base-frame z, which is parallel to the world's).

    ``grasp_dz``: TCP height above the source's centre of mass at the grasp; ``grasp_along``: grasp point along
    the source's x (long) axis from its centre of mass; ``hover``: approach height above
    the grasp; ``carry``: TCP height above the source's resting centre while carrying; ``place_gap``: gap left
    between the held object's bottom and the target's top when it opens; ``yaw_period``: the source's symmetry
    about z for the finger alignment (pi: long objects, pi/2: cubes, 0: no alignment); ``close_steps`` /
    ``release_steps``: steps the gripper is held still while it closes / opens; ``max_step`` m and ``max_yaw``
    rad: per-step clips; ``tol`` m: reached-waypoint tolerance; ``phase_steps``: the most steps of a moving
    phase before it moves on anyway; ``target_offset`` (2,) m: where on the target (base-frame xy) the object
    goes."""

    grasp_dz: float = 0.0
    grasp_along: float = 0.0
    hover: float = 0.06
    carry: float = 0.08
    place_gap: float = 0.015
    yaw_period: float = math.pi
    close_steps: int = 3
    release_steps: int = 2
    max_step: float = 0.035
    max_yaw: float = 0.35
    tol: float = 0.012
    phase_steps: int = 12
    target_offset: tuple[float, float] = (0.0, 0.0)


#: per-task plans (names as in :data:`ivm_ros_sim.simpler.env.TASKS`)
PLANS: dict[str, Plan] = {
    "widowx_carrot_on_plate": Plan(),
    "widowx_spoon_on_towel": Plan(grasp_along=-0.04),  # the bowl (3.5 cm wide), not the 2.3 cm handle
    "widowx_stack_cube": Plan(yaw_period=math.pi / 2, place_gap=0.006, tol=0.006),
    "widowx_put_eggplant_in_basket": Plan(carry=0.10, place_gap=0.02),
}


@dataclasses.dataclass
class State:
    """Privileged state in the robot base frame (m, rad). ``tcp`` / ``ref`` (3,): the TCP and the controller's
    target position; ``ref_yaw``: the target's finger-alignment yaw (the TCP's z axis, horizontal at the
    WidowX's home pose, about base z); ``src`` / ``tgt`` (3,): source / target centres of mass; ``src_yaw``:
    the source's x axis about base z; ``src_half_h`` / ``tgt_half_h``: half heights; ``grasped``."""

    tcp: np.ndarray
    ref: np.ndarray
    ref_yaw: float
    src: np.ndarray
    src_yaw: float
    tgt: np.ndarray
    src_half_h: float
    tgt_half_h: float
    grasped: bool


def _matrix(pose: Any) -> np.ndarray:
    """A pose (``p`` (3,) m, ``q`` (4,) wxyz) -> (4, 4) homogeneous transform."""
    t = np.eye(4)
    t[:3, :3] = quat2mat(np.asarray(pose.q, dtype=np.float64))
    t[:3, 3] = np.asarray(pose.p, dtype=np.float64)
    return t


def _yaw_of(axis: np.ndarray) -> float:
    """Heading (rad) of a 3-vector's xy projection."""
    return math.atan2(float(axis[1]), float(axis[0]))


def wrap(angle: float, period: float = 2 * math.pi) -> float:
    """``angle`` rad wrapped to [-period/2, period/2)."""
    return (angle + period / 2) % period - period / 2


def read_state(u: Any) -> State:
    """The :class:`State` of a ManiSkill2_real2sim env (``env.unwrapped``; attributes: module docstring)."""
    to_base = np.linalg.inv(_matrix(u.agent.robot.pose))
    tcp = to_base @ _matrix(u.tcp.pose)
    arm = getattr(getattr(getattr(u.agent, "controller", None), "controllers", {}), "get", lambda _: None)("arm")
    target = getattr(arm, "_target_pose", None)
    ref = _matrix(target) if target is not None else tcp
    src, tgt = to_base @ _matrix(u.source_obj_pose), to_base @ _matrix(u.target_obj_pose)
    src_bbox = np.abs(np.asarray(u.episode_source_obj_bbox_world, dtype=np.float64))
    tgt_bbox = np.abs(np.asarray(u.episode_target_obj_bbox_world, dtype=np.float64))
    return State(tcp=tcp[:3, 3], ref=ref[:3, 3], ref_yaw=_yaw_of(ref[:3, 2]), src=src[:3, 3],
                 src_yaw=_yaw_of(src[:3, 0]), tgt=tgt[:3, 3], src_half_h=float(src_bbox[2]) / 2,
                 tgt_half_h=float(tgt_bbox[2]) / 2, grasped=bool(u.agent.check_grasp(u.episode_source_obj)))


def clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    """``v`` scaled down to norm ``limit`` when longer."""
    n = float(np.linalg.norm(v))
    return v * (limit / n) if n > limit else v


class SimplerExpert:
    """The scripted expert (module docstring). ``task_env``: a :class:`~ivm_ros_sim.simpler.env.SimplerTaskEnv`
    (read: ``task``, ``env.unwrapped``); :meth:`reset` after each ``task_env.reset``, then :meth:`act` per
    frame. ``phase`` / ``history`` say where it is and has been."""

    def __init__(self, task_env: Any, plan: Plan | None = None) -> None:
        self.task_env = task_env
        self.plan = plan or PLANS.get(str(getattr(task_env, "task", "")), Plan())
        self.reset()

    def reset(self) -> None:
        self.phase, self.phase_step, self.retries = PHASES[0], 0, 0
        self.history: list[str] = [self.phase]
        self.rest_z: float | None = None  # the source's resting centre height (base z, m), set at the first act
        self.goal_yaw: float | None = None  # finger yaw chosen at the approach (rad, base z)

    def _enter(self, phase: str) -> None:
        self.phase, self.phase_step = phase, 0
        self.history.append(phase)

    def act(self, frame: Any = None) -> np.ndarray:
        """The next policy action (7,) float64 (m, rad, gripper; module docstring); ``frame`` is not needed."""
        s = read_state(self.task_env.env.unwrapped)
        if self.rest_z is None:
            self.rest_z = float(s.src[2])
        self._advance(s)
        goal, grip = self._goal(s)
        self.phase_step += 1
        return self._action(s, goal, grip)

    # ------------------------------------------------------------------------------ the state machine
    def _advance(self, s: State) -> None:
        """Moves to the next phase when the current one is finished (reached, waited or timed out)."""
        p, goal = self.plan, self._goal(s)[0]
        reached = float(np.linalg.norm(s.tcp - goal)) < p.tol and self._yaw_error(s) < 0.1
        timed_out = self.phase_step >= p.phase_steps
        nxt = {"approach": "descend", "descend": "close", "lift": "carry", "carry": "lower", "lower": "release",
               "retreat": "done"}
        if self.phase == "close" and self.phase_step >= p.close_steps:
            self._enter("lift")
        elif self.phase == "release" and self.phase_step >= p.release_steps:
            self._enter("retreat")
        elif self.phase == "lift" and (reached or timed_out) and not self._holding(s):
            self.retries += 1
            self.goal_yaw = None
            self._enter("approach")
        elif self.phase in nxt and (reached or timed_out):
            self._enter(nxt[self.phase])

    def _holding(self, s: State) -> bool:
        """Whether the source came up with the hand (grasp contact or 1.5 cm above its resting height)."""
        return s.grasped or float(s.src[2]) > (self.rest_z or 0.0) + 0.015

    def _goal(self, s: State) -> tuple[np.ndarray, float]:
        """The TCP's waypoint (3,) base frame m and the gripper command of the current phase."""
        p, rest = self.plan, float(self.rest_z if self.rest_z is not None else s.src[2])
        grasp_z = float(s.src[2]) + p.grasp_dz
        grasp_xy = s.src[:2] + p.grasp_along * np.array([math.cos(s.src_yaw), math.sin(s.src_yaw)])
        hand = s.tcp - s.src  # the source's offset in the hand: carry the object, not the TCP, to the target
        above_tgt = np.array([s.tgt[0] + p.target_offset[0] + hand[0], s.tgt[1] + p.target_offset[1] + hand[1]])
        place_z = float(s.tgt[2]) + s.tgt_half_h + s.src_half_h + p.place_gap + float(hand[2])
        carry_z = max(rest + p.carry, place_z - float(hand[2]) + p.grasp_dz + 0.02)
        goals = {
            "approach": (np.array([*grasp_xy, grasp_z + p.hover]), OPEN),
            "descend": (np.array([*grasp_xy, grasp_z]), OPEN),
            "close": (s.ref.copy(), CLOSED),
            "lift": (np.array([s.ref[0], s.ref[1], carry_z]), CLOSED),
            "carry": (np.array([above_tgt[0], above_tgt[1], carry_z]), CLOSED),
            "lower": (np.array([above_tgt[0], above_tgt[1], place_z]), CLOSED),
            "release": (s.ref.copy(), OPEN),
            "retreat": (np.array([s.ref[0], s.ref[1], max(rest + p.carry, float(s.ref[2]))]), OPEN),
            "done": (s.ref.copy(), OPEN),
        }
        return goals[self.phase]

    def _yaw_goal(self, s: State) -> float:
        """The finger yaw (rad, base z) aligned with the source's long axis, nearest the current one."""
        if self.plan.yaw_period <= 0:
            return s.ref_yaw
        if self.goal_yaw is None or self.phase == "approach":
            self.goal_yaw = s.ref_yaw + wrap(s.src_yaw - s.ref_yaw, self.plan.yaw_period)
        return self.goal_yaw

    def _yaw_error(self, s: State) -> float:
        if self.phase not in ("approach", "descend"):
            return 0.0
        return abs(wrap(self._yaw_goal(s) - s.ref_yaw))

    def _action(self, s: State, goal: np.ndarray, grip: float) -> np.ndarray:
        """Policy action (7,): the clipped step from the controller's target towards ``goal``, the yaw step."""
        p = self.plan
        step = np.clip(clip_norm(goal - s.ref, p.max_step), -ENV_POS_BOUND, ENV_POS_BOUND)
        dyaw = 0.0
        if self.phase in ("approach", "descend"):
            dyaw = float(np.clip(wrap(self._yaw_goal(s) - s.ref_yaw), -p.max_yaw, p.max_yaw))
        dyaw = float(np.clip(dyaw, -ENV_ROT_BOUND, ENV_ROT_BOUND))
        return np.array([*step, 0.0, 0.0, dyaw, grip], dtype=np.float64)
