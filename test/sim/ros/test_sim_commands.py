"""sim_node's command rule, lockstep turn-taking and pacing (ivm_ros_sim.ros.commands), without ROS."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from ivm_ros_sim.ros import commands as C

HZ = 30
MOVE = np.array([1.0, 0, 0, 0, 0, 0, 1.0])


def test_action_problems_name_the_reason():
    assert C.action_problem(MOVE) is None
    assert C.action_problem(np.array([1.0 + 1e-10, -1, 0, 0, 0, 0, 1])) is None  # on the limit
    assert C.action_problem(np.zeros(6))[0] == "length"
    assert C.action_problem(np.array([0, np.nan, 0, 0, 0, 0, 1]))[0] == "non_finite"
    reason, detail = C.action_problem(np.array([1.5, 0, 0, 0, 0, 0, 1]))
    assert reason == "out_of_range" and "[-1, 1]" in detail


def test_twist_problems_check_the_frame_first():
    ok, inf = np.zeros(3), np.array([np.inf, 0, 0])
    assert C.twist_problem("", "world", ok, ok) is None and C.twist_problem("world", "world", ok, ok) is None
    assert C.twist_problem("tool0", "world", inf, ok)[0] == "frame"
    assert C.twist_problem("world", "world", ok, inf)[0] == "non_finite"


def test_twist_action_scales_and_flags_clipping():
    dt = 1 / HZ
    action, clipped = C.twist_action(np.array([0.3, 0, 0]), np.zeros(3), -1.0, dt)  # 1 cm per step = half of 2 cm
    np.testing.assert_allclose(action, [0.5, 0, 0, 0, 0, 0, -1])
    assert not clipped
    assert not C.twist_action(np.array([0.6, 0, 0]), np.array([0, 0, 1.5]), 1.0, dt)[1]  # exactly the arm's speed
    action, clipped = C.twist_action(np.array([5.0, 0, 0]), np.zeros(3), 1.0, dt)
    assert clipped and action[0] == 1.0
    assert C.twist_action(np.zeros(3), np.array([0, 0, -2.0]), 1.0, dt)[1]


def test_a_command_is_in_force_for_action_timeout_sim_seconds():
    slot = C.CommandSlot(HZ)
    assert slot.select(0, 0.5) is None  # nothing yet: hold
    slot.put(MOVE, tick=10)
    np.testing.assert_array_equal(slot.select(13, 0.1), MOVE)  # 3 ticks = 0.1 s: still in force
    assert slot.select(14, 0.1) is None
    np.testing.assert_array_equal(C.hold_action(-1.0), [0, 0, 0, 0, 0, 0, -1])


def test_gripper_command_replaces_the_gripper_of_the_command_in_force():
    slot = C.CommandSlot(HZ)
    slot.put(MOVE, tick=10)
    slot.observation_begins()
    slot.put_gripper(-1.0, tick=12, timeout=0.1)
    np.testing.assert_array_equal(slot.select(13, 0.1), [1, 0, 0, 0, 0, 0, -1])
    assert slot.select(14, 0.1) is None  # the arrival tick of the command is kept
    assert slot.gripper == -1.0 and not slot.fresh  # a gripper command never triggers a lockstep step
    slot.put_gripper(1.0, tick=20, timeout=0.1)  # no command in force: a still command with that gripper
    np.testing.assert_array_equal(slot.select(20, 0.1), [0, 0, 0, 0, 0, 0, 1])
    slot.clear()
    assert slot.select(20, 0.1) is None and slot.gripper is None


def _wait(slot, lockstep=True, timeout=0.0, running=lambda: True):
    return slot.wait_turn(running, lambda: lockstep, lambda: timeout)


def test_without_lockstep_a_turn_is_granted_at_once():
    slot = C.CommandSlot(HZ)
    slot.observation_published()
    assert _wait(slot, lockstep=False) == (1, False)
    assert _wait(slot, lockstep=False, running=lambda: False) == (None, False)


def test_lockstep_grants_a_turn_for_a_command_received_after_the_observation_began():
    slot = C.CommandSlot(HZ)
    slot.put(MOVE, tick=0)  # received before the observation below: it does not answer it
    slot.observation_begins()
    slot.observation_published()
    start = time.monotonic()
    assert _wait(slot, timeout=0.05) == (1, True)  # timed out, granted for observation 1
    assert time.monotonic() - start >= 0.04
    slot.put(MOVE, tick=1)
    assert _wait(slot, timeout=30.0) == (1, False)  # answered: at once


def test_lockstep_wait_wakes_on_a_command_from_another_thread():
    slot = C.CommandSlot(HZ)
    slot.observation_published()
    result = []
    waiter = threading.Thread(target=lambda: result.append(_wait(slot, timeout=0.0)))  # 0: wait forever
    waiter.start()
    time.sleep(0.3)
    assert not result  # no timeout with lockstep_timeout 0
    slot.put(MOVE, tick=0)
    waiter.join(5)
    assert result == [(1, False)]


def test_lockstep_wait_ends_when_stopped():
    slot = C.CommandSlot(HZ)
    running = [True]
    result = []
    waiter = threading.Thread(target=lambda: result.append(_wait(slot, timeout=0.0, running=lambda: running[0])))
    waiter.start()
    time.sleep(0.1)
    running[0] = False
    slot.wake()
    waiter.join(5)
    assert result == [(None, False)]


class _FakeStop:
    def __init__(self, stopped: bool = False) -> None:
        self.stopped, self.waits = stopped, []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self.stopped


def test_pacer_spaces_steps_without_catching_up():
    now = [100.0]
    pacer = C.Pacer(HZ, clock=lambda: now[0])
    stop = _FakeStop()
    assert pacer.wait(0.0, stop) and not stop.waits  # as fast as possible: no wait
    assert pacer.wait(1.0, stop) and stop.waits[-1] == 0.0  # the first step is due at once
    assert pacer.due == pytest.approx(100.0 + 1 / HZ)
    assert pacer.wait(2.0, stop) and stop.waits[-1] == pytest.approx(1 / HZ)  # waits for the due time
    assert pacer.due == pytest.approx(100.0 + 1 / HZ + 1 / (2 * HZ))
    now[0] = 105.0  # a slow step: the next one is due now, the lost time is not caught up
    assert pacer.wait(1.0, stop) and stop.waits[-1] == 0.0 and pacer.due == 105.0
    assert not pacer.wait(1.0, _FakeStop(stopped=True))
