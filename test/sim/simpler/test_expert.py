"""SimplerExpert's state machine and action conventions on a stand-in of ManiSkill2_real2sim's privileged state.

:class:`PrivilegedStateDouble` exposes the attributes the expert reads of ``env.unwrapped`` (robot base pose,
``tcp.pose``, the arm controller's ``_target_pose``, ``source_obj_pose`` / ``target_obj_pose``, bbox extents,
``agent.check_grasp``) over a kinematic toy, not physics: the TCP follows the controller target at once, a
closed gripper within 1.5 cm of the source holds it, an open one drops it onto the table or the target. Its
base sits as the real Bridge one does (yawed pi, so base x = world -x).
"""

from __future__ import annotations

import dataclasses
import math
import types

import numpy as np
import pytest
from ivm_ros_sim.simpler import expert as E
from ivm_ros_sim.simpler.env import TASKS
from transforms3d.euler import euler2mat
from transforms3d.quaternions import mat2quat, quat2mat

BASE_P, TABLE_Z = np.array([0.147, 0.028, 0.87]), 0.87
HOME = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # TCP axes in the base: x down, z forward


@dataclasses.dataclass
class Pose:
    """A SAPIEN-like pose: ``p`` (3,) m, ``q`` (4,) wxyz."""

    p: np.ndarray
    q: np.ndarray

    @classmethod
    def of(cls, p: np.ndarray, rot: np.ndarray) -> Pose:
        return cls(np.asarray(p, dtype=np.float64), mat2quat(rot))


class PrivilegedStateDouble:
    """See the module docstring. ``src`` / ``tgt``: world xy (m) of the source / target; ``src_yaw`` rad
    (world); ``grasp_works``: False makes every grasp slip; ``controller``: False drops the arm controller
    (the expert then uses the TCP pose)."""

    def __init__(self, src=(-0.236, -0.075), tgt=(-0.235, 0.075), src_yaw: float = math.pi,
                 grasp_works: bool = True, controller: bool = True) -> None:
        self.base_rot = euler2mat(0, 0, math.pi)
        self.ref_p = np.array([0.292, -0.006, 0.135])  # controller target in the base frame, m
        self.ref_yaw, self.closed, self.held = 0.0, False, False
        self.src_p, self.src_rot = np.array([*src, TABLE_Z + 0.018]), euler2mat(0, 0, src_yaw)
        self.tgt_p = np.array([*tgt, TABLE_Z + 0.003])
        self.grasp_works, self.offset = grasp_works, np.zeros(3)
        self.episode_source_obj = types.SimpleNamespace(name="src")
        self.episode_source_obj_bbox_world = np.array([-0.118, -0.032, 0.036])
        self.episode_target_obj_bbox_world = np.array([0.11, 0.11, 0.006])
        arm = types.SimpleNamespace(_target_pose=None)
        self.agent = types.SimpleNamespace(robot=types.SimpleNamespace(pose=Pose.of(BASE_P, self.base_rot)),
                                           check_grasp=lambda actor: self.held,
                                           controller=types.SimpleNamespace(controllers={"arm": arm}))
        if not controller:
            self.agent.controller = None
        self._sync()

    def _tcp_world(self) -> tuple[np.ndarray, np.ndarray]:
        rot = self.base_rot @ euler2mat(0, 0, self.ref_yaw) @ HOME
        return BASE_P + self.base_rot @ self.ref_p, rot

    def _sync(self) -> None:
        p, rot = self._tcp_world()
        self.tcp = types.SimpleNamespace(pose=Pose.of(p, rot))
        if self.agent.controller is not None:
            self.agent.controller.controllers["arm"]._target_pose = Pose.of(self.ref_p, euler2mat(0, 0, self.ref_yaw)
                                                                            @ HOME)
        self.source_obj_pose = Pose.of(self.src_p, self.src_rot)
        self.target_obj_pose = Pose.of(self.tgt_p, np.eye(3))

    def step(self, action: np.ndarray) -> None:
        """One policy action (7,): base-frame xyz delta (m), yaw delta (rad), gripper +1 open / -1 closed."""
        self.ref_p = self.ref_p + action[:3]
        self.ref_yaw += float(action[5])
        tcp, _ = self._tcp_world()
        closing = action[6] < 0
        if closing and not self.closed and self.grasp_works and np.linalg.norm(tcp - self.src_p) < 0.015:
            self.held, self.offset = True, self.src_p - tcp
        if not closing and self.held:
            on_target = np.linalg.norm(self.src_p[:2] - self.tgt_p[:2]) < 0.05
            self.held, self.src_p[2] = False, (self.tgt_p[2] + 0.021 if on_target else TABLE_Z + 0.018)
        self.closed = closing
        if self.held:
            self.src_p = tcp + self.offset
        self._sync()


def _expert(task: str = "widowx_carrot_on_plate", **kw) -> tuple[E.SimplerExpert, PrivilegedStateDouble]:
    double = PrivilegedStateDouble(**kw)
    return E.SimplerExpert(types.SimpleNamespace(task=task, env=types.SimpleNamespace(unwrapped=double))), double


def _run(expert: E.SimplerExpert, double: PrivilegedStateDouble, steps: int = 60) -> list[np.ndarray]:
    acts = []
    for _ in range(steps):
        acts.append(expert.act(None))
        double.step(acts[-1])
    return acts


def test_read_state_puts_everything_in_the_robot_base_frame():
    _, double = _expert()
    s = E.read_state(double)
    np.testing.assert_allclose(s.src, [0.147 + 0.236, 0.028 + 0.075, 0.018], atol=1e-9)  # base x = world -x
    np.testing.assert_allclose(s.tcp, [0.292, -0.006, 0.135], atol=1e-9)
    np.testing.assert_allclose(s.ref, s.tcp, atol=1e-9)
    assert s.ref_yaw == pytest.approx(0.0, abs=1e-9) and abs(E.wrap(s.src_yaw)) < 1e-9  # world yaw pi = base 0
    assert s.src_half_h == pytest.approx(0.018) and s.tgt_half_h == pytest.approx(0.003) and not s.grasped


def test_a_whole_pick_and_place_visits_every_phase_in_order_and_ends_on_the_target():
    expert, double = _expert()
    acts = _run(expert, double)
    assert expert.history == list(E.PHASES) and expert.retries == 0
    assert np.linalg.norm(double.src_p[:2] - double.tgt_p[:2]) < 0.01 and not double.held
    grips = [a[6] for a in acts]
    first_close, last_close = grips.index(E.CLOSED), len(grips) - 1 - grips[::-1].index(E.CLOSED)
    assert set(grips[:first_close]) == {E.OPEN} and set(grips[first_close:last_close + 1]) == {E.CLOSED}
    assert set(grips[last_close + 1:]) == {E.OPEN}
    np.testing.assert_allclose(acts[-1][:6], 0.0, atol=1e-3)  # done: holds still, open


@pytest.mark.parametrize("task", [t for t in TASKS if t.startswith("widowx_")])
def test_actions_follow_the_house_convention_and_the_clips(task):
    expert, double = _expert(task)
    acts = _run(expert, double, 40)
    plan = E.PLANS[task]
    for a in acts:
        assert a.shape == (7,) and a.dtype == np.float64
        assert a[3] == 0.0 and a[4] == 0.0 and a[6] in (E.OPEN, E.CLOSED)
        assert np.linalg.norm(a[:3]) <= plan.max_step + 1e-12 and abs(a[5]) <= plan.max_yaw + 1e-12
        assert np.all(np.abs(a[:3]) <= E.ENV_POS_BOUND) and abs(a[5]) <= E.ENV_ROT_BOUND
    assert np.linalg.norm(acts[0][:3]) == pytest.approx(plan.max_step)  # far goal: a full clipped step


def test_the_fingers_turn_across_the_long_axis_by_the_shorter_way():
    expert, double = _expert(src_yaw=math.pi / 2 + 0.2)  # long axis 0.2 rad past the base's y
    _run(expert, double, 12)
    assert abs(E.wrap(double.ref_yaw - (math.pi / 2 + 0.2), math.pi)) < 0.02
    assert abs(double.ref_yaw) <= math.pi / 2 + 1e-9  # never more than a quarter turn for a pi-symmetric object
    cube, double = _expert("widowx_stack_cube", src_yaw=math.pi / 2 - 0.3)
    _run(cube, double, 12)
    assert double.ref_yaw == pytest.approx(-0.3, abs=0.02)  # a cube is pi/2-symmetric: -0.3, not 1.27


def test_a_grasp_that_slips_goes_back_to_the_approach():
    expert, double = _expert(grasp_works=False)
    _run(expert, double, 30)
    assert expert.retries >= 1 and expert.history[:5] == ["approach", "descend", "close", "lift", "approach"]


def test_without_the_controller_target_the_tcp_is_the_reference_and_reset_starts_over():
    expert, double = _expert(controller=False)
    _run(expert, double, 60)
    assert expert.phase == "done"
    expert.reset()
    assert expert.phase == "approach" and expert.history == ["approach"] and expert.rest_z is None


def test_a_phase_that_cannot_reach_its_waypoint_moves_on_after_phase_steps():
    expert, double = _expert()
    expert.plan = dataclasses.replace(expert.plan, tol=-1.0, phase_steps=3)  # never "reached"
    _run(expert, double, 4)
    assert expert.history[:2] == ["approach", "descend"] and expert.phase_step <= 3


def test_every_bridge_task_has_a_plan_and_unknown_tasks_get_the_default():
    assert {t for t in TASKS if t.startswith("widowx_")} <= set(E.PLANS)
    expert, _ = _expert("no_such_task")
    assert expert.plan == E.Plan()
    assert E.wrap(3 * math.pi / 4, math.pi) == pytest.approx(-math.pi / 4)
    np.testing.assert_allclose(E.clip_norm(np.array([3.0, 4.0, 0.0]), 1.0), [0.6, 0.8, 0.0])
    assert quat2mat(Pose.of(np.zeros(3), HOME).q) == pytest.approx(HOME)
