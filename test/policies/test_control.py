"""The policy node's ROS-free control core: every decision as a plain function of its inputs and times."""

from __future__ import annotations

import numpy as np
import pytest

from ivm_ros.inputs import InputRejected
from ivm_ros.policies.base import ProprioSpec
from ivm_ros.policies.control import ControlSettings, PolicyControl
from ivm_ros.policies.sensors import Sensors
from ivm_ros.runtime import Counters


def _plan(n: int, gripper: float = 1.0) -> np.ndarray:
    """(n, 7): row i moves dx = 0.1 * (i + 1), so each executed action names its row."""
    actions = np.zeros((n, 7), np.float32)
    actions[:, 0] = 0.1 * np.arange(1, n + 1)
    actions[:, 6] = gripper
    return actions


def _control(sensors: Sensors | None = None, **settings) -> PolicyControl:
    return PolicyControl(ControlSettings(**settings), Counters(), enabled=True, sensors=sensors)


def _ready(control: PolicyControl, now: float = 0.0) -> None:
    control.set_instruction("open the drawer", now)
    control.receive_frame(now)


def test_holds_with_the_initial_gripper_until_there_is_an_instruction():
    control = _control(initial_gripper=-1.0)
    control.receive_frame(0.0)
    tick = control.tick(0.01)
    assert tick.fault == "no_instruction" and not tick.executed
    np.testing.assert_array_equal(tick.action, [0, 0, 0, 0, 0, 0, -1.0])
    assert control.counters.get("watchdog_no_instruction") == 1


def test_no_frame_yet_is_its_own_watchdog_reason():
    control = _control()
    control.set_instruction("push the button", 0.0)
    assert control.tick(0.0).fault == "no_observation"


def test_timer_mode_executes_each_planned_action_once_then_holds():
    control = _control()
    _ready(control)
    step = control.begin_step(0.0)
    assert step.reset and step.instruction == "open the drawer"
    control.policy_was_reset(step)
    assert control.finish_step(step, _plan(3)) is None  # timer mode: a plan, nothing to publish now
    executed = [control.tick(0.01 * i) for i in range(1, 4)]
    assert [t.executed for t in executed] == [True, True, True]
    np.testing.assert_allclose([t.action[0] for t in executed], [0.1, 0.2, 0.3], rtol=1e-6)
    starved = control.tick(0.04)
    assert not starved.executed and starved.fault == ""
    np.testing.assert_array_equal(starved.action[:6], 0.0)
    assert control.counters.get("starved_ticks") == 1 and control.counters.get("actions_out") == 3


def test_a_new_instruction_voids_the_plan_being_computed_and_restarts_the_task():
    control = _control()
    _ready(control)
    step = control.begin_step(0.0)
    control.policy_was_reset(step)
    assert not control.set_instruction("open the drawer", 0.05)  # the same text: same task
    assert control.set_instruction("close the drawer", 0.1)
    control.finish_step(step, _plan(2))
    assert control.counters.get("plans_voided") == 1
    assert control.tick(0.1).executed is False
    again = control.begin_step(0.1)
    assert again.reset and again.instruction == "close the drawer"


def test_a_failed_policy_reset_is_retried_on_the_next_frame():
    control = _control()
    _ready(control)
    first = control.begin_step(0.0)
    assert first.reset  # the worker's reset raised: policy_was_reset was never called
    assert control.begin_step(0.01).reset
    control.policy_was_reset(first)
    assert not control.begin_step(0.02).reset
    assert control.counters.get("policy_resets") == 1


def test_actions_are_clipped_to_the_limit_and_the_gripper_is_remembered():
    control = _control(action_limit=0.5)
    big = np.array([2.0, -3.0, 0.1, 0.0, 0.0, 0.7, -1.0])
    out = control.execute(big)
    np.testing.assert_array_equal(out, [0.5, -0.5, 0.1, 0.0, 0.0, 0.5, -0.5])
    assert control.counters.get("clipped_actions") == 1
    assert control.hold_action()[6] == -0.5


def test_no_clipping_with_limit_zero():
    control = _control(action_limit=0.0)
    np.testing.assert_array_equal(control.execute(np.full(7, 5.0)), np.full(7, 5.0))
    assert control.counters.get("clipped_actions") == 0


def test_disabled_publishes_nothing_and_voids_plans():
    control = _control()
    _ready(control)
    step = control.begin_step(0.0)
    control.set_enabled(False)
    control.finish_step(step, _plan(2))
    assert control.counters.get("plans_voided") == 1
    assert control.tick(0.01).action is None and control.counters.get("ticks_disabled") == 1
    assert control.begin_step(0.01) is None
    assert control.receive_frame(0.02) is False and control.counters.get("frames_disabled") == 1
    assert control.hold_frame("rejected_frame") is None


def test_enable_restarts_the_task():
    control = _control()
    _ready(control)
    step = control.begin_step(0.0)
    control.policy_was_reset(step)
    control.set_enabled(False)
    control.set_enabled(True)
    assert control.begin_step(0.01).reset


def test_stale_observation_holds_once_per_fault_and_a_gap_restarts_the_task():
    control = _control(observation_timeout=0.5)
    _ready(control)
    step = control.begin_step(0.0)
    control.policy_was_reset(step)
    control.finish_step(step, _plan(4))
    assert control.tick(0.1).executed
    stale = control.tick(0.7)
    assert stale.fault == "observation_stale" and control.report(0.7)["pending_actions"] == 0
    control.receive_frame(0.8)  # a frame after a gap longer than the timeout
    assert control.tick(0.81).fault == ""
    assert control.begin_step(0.81).reset


def test_stale_instruction_with_a_timeout():
    control = _control(instruction_timeout=1.0, observation_timeout=0.0)
    _ready(control)
    assert control.watchdog(0.5) == ""
    assert control.watchdog(1.5) == "instruction_stale"
    step = control.begin_step(1.5)
    assert step.fault == "instruction_stale"


def test_silent_watchdog_counts_but_publishes_nothing():
    control = _control(watchdog_action="silent")
    tick = control.tick(0.0)
    assert tick.action is None and tick.fault == "no_instruction"
    assert control.counters.get("watchdog_no_instruction") == 1


def test_every_frame_mode_publishes_the_first_action_now_and_holds_bad_frames():
    control = _control(act_on_every_frame=True)
    _ready(control)
    step = control.begin_step(0.0)
    control.policy_was_reset(step)
    out = control.finish_step(step, _plan(3))
    np.testing.assert_allclose(out[0], 0.1, rtol=1e-6)
    assert control.report(0.0)["pending_actions"] == 0
    hold = control.hold_frame("policy_error")
    np.testing.assert_array_equal(hold[:6], 0.0)
    assert control.counters.get("watchdog_policy_error") == 1


def test_timer_mode_frames_never_hold_by_themselves():
    control = _control()
    assert control.hold_frame("rejected_frame") is None


def test_bad_policy_output_raises_with_the_reason():
    control = _control()
    _ready(control)
    step = control.begin_step(0.0)
    with pytest.raises(ValueError, match="non-finite"):
        control.finish_step(step, np.full((1, 7), np.nan))
    with pytest.raises(ValueError, match="shape"):
        control.finish_step(step, np.zeros((2, 6)))


def test_observation_pairs_the_wrist_image_of_the_same_stamp_and_the_newest_proprio():
    control = _control(Sensors(use_wrist=True, use_proprio=True), pairing_wait=0.0)
    control.sensors.receive_wrist("wrist-5.0", 5_000_000_123)
    control.sensors.receive_wrist("wrist-5.1", 5_100_000_000)  # a newer capture arrived already
    control.sensors.receive_proprio([0.1, 0.2, 0.3], 0.0)
    _ready(control)
    step = control.begin_step(0.0)
    image = np.zeros((4, 6, 3), np.uint8)
    seen = []
    obs = control.observation(image, 5_000_000_123, step, lambda msg: seen.append(msg) or np.ones((2, 2, 3), np.uint8))
    assert seen == ["wrist-5.0"] and obs.stamp == 5 + 123 * 1e-9 and obs.elapsed_steps == 1
    np.testing.assert_allclose(obs.proprio, [0.1, 0.2, 0.3])
    assert control.counters.get("wrist_stamp_mismatch") == 0
    decode = lambda msg: seen.append(msg) or np.ones((2, 2, 3), np.uint8)  # noqa: E731
    control.observation(image, 5_033_000_000, step, decode)  # no wrist of that stamp: the newest, counted
    assert seen[-1] == "wrist-5.1" and control.counters.get("wrist_stamp_mismatch") == 1


def test_pairing_waits_for_a_wrist_image_published_just_after_the_frame():
    import threading

    control = _control(Sensors(use_wrist=True), pairing_wait=2.0)
    control.sensors.receive_wrist("previous", 1)
    _ready(control)
    step = control.begin_step(0.0)
    threading.Timer(0.05, control.sensors.receive_wrist, ("same capture", 2)).start()
    seen = []
    control.observation(np.zeros((4, 6, 3), np.uint8), 2, step, lambda msg: seen.append(msg) or np.ones((2, 2, 3),
                                                                                                  np.uint8))
    assert seen == ["same capture"] and control.counters.get("wrist_stamp_mismatch") == 0


def test_without_wrist_the_observation_has_none():
    control = _control()
    _ready(control)
    obs = control.observation(np.zeros((4, 6, 3), np.uint8), 0, control.begin_step(0.0),
                              lambda msg: pytest.fail("decoded"))
    assert obs.image_wrist is None and obs.proprio is None


@pytest.mark.parametrize(("values", "reason"), [([], "proprio_size"), ([0.0, float("nan")], "proprio_non_finite"),
                                                ([float("inf")], "proprio_non_finite"), ([1e30], "proprio_range")])
def test_bad_proprio_is_rejected_and_the_node_holds_instead_of_acting_on_the_old_one(values, reason):
    control = _control(Sensors(use_proprio=True))
    control.sensors.receive_proprio([1.0, 2.0], 0.0)
    _ready(control)
    assert control.watchdog(0.0) == ""
    with pytest.raises(InputRejected) as info:
        control.sensors.receive_proprio(values, 0.1)
    assert info.value.reason == reason
    assert control.watchdog(0.1) == "proprio_rejected"
    assert control.begin_step(0.1).fault == "proprio_rejected" and control.tick(0.1).fault == "proprio_rejected"
    control.sensors.receive_proprio([1.0, 3.0], 0.2)
    assert control.watchdog(0.2) == ""


def test_proprio_missing_or_stale_holds():
    control = _control(Sensors(use_proprio=True), proprio_timeout=0.5, observation_timeout=0.0)
    _ready(control)
    assert control.tick(0.0).fault == "no_proprio"
    control.sensors.receive_proprio([0.0], 1.0)
    assert control.watchdog(1.2) == "" and control.watchdog(1.6) == "proprio_stale"
    assert control.counters.get("watchdog_no_proprio") == 1


def test_before_the_first_wrist_image_the_step_is_a_watchdog_hold_not_a_policy_error():
    """Start-up race: the main camera's first frame can come before the wrist camera's; the embedded policy
    used to raise ValueError on it (logged as ERROR 'frame dropped')."""
    control = _control(Sensors(use_wrist=True), observation_timeout=0.0, pairing_wait=0.0)
    _ready(control)
    assert control.tick(0.0).fault == "no_wrist_image"  # timer mode: hold until a wrist image arrived
    step = control.begin_step(0.0)
    assert step.fault == ""  # every frame: the wrist image may follow the frame, observation() waits for it
    assert control.observation(np.zeros((4, 4, 3), np.uint8), 5, step, lambda m: m) is None
    control.sensors.receive_wrist(np.ones((4, 4, 3), np.uint8), 5)
    assert control.watchdog(0.1) == ""
    obs = control.observation(np.zeros((4, 4, 3), np.uint8), 5, control.begin_step(0.1), lambda m: m)
    assert obs is not None and obs.image_wrist[0, 0, 0] == 1


def test_the_policys_proprio_spec_checks_length_and_range():
    sensors = Sensors(use_proprio=True)
    sensors.spec = ProprioSpec(3, low=np.array([-1.0, -1.0, 0.0]), high=np.array([1.0, 1.0, 0.1]))
    sensors.receive_proprio([0.5, -0.5, 0.05], 0.0)
    with pytest.raises(InputRejected, match="expects 3 proprio values") as info:
        sensors.receive_proprio([0.5, -0.5], 0.0)
    assert info.value.reason == "proprio_size"
    with pytest.raises(InputRejected, match=r"proprio\[2\] = 0.5 outside"):
        sensors.receive_proprio([0.5, -0.5, 0.5], 0.0)


def test_disable_waits_for_a_command_being_published_and_nothing_moves_after():
    import threading

    control = _control()
    published, inside, release = [], threading.Event(), threading.Event()

    def worker() -> None:
        with control.publishing() as allowed:  # a worker that decided to act
            inside.set()
            release.wait(2.0)
            if allowed:
                published.append("motion")

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(2.0)
    disabling = threading.Thread(target=lambda: published.append(("final", control.set_enabled(False))))
    disabling.start()
    disabling.join(0.1)
    assert disabling.is_alive()  # disable waits for the command in flight
    release.set()
    thread.join(2.0)
    disabling.join(2.0)
    assert published[0] == "motion" and published[1][0] == "final"
    np.testing.assert_array_equal(published[1][1][:6], 0.0)  # the final hold: zero motion
    with control.publishing() as allowed:
        assert not allowed
    with control.publishing(final=True) as allowed:
        assert allowed
    assert control.counters.get("dropped_disabled") == 1 and control.counters.get("disable_holds") == 1


def test_silent_disable_returns_no_hold_and_disabling_twice_returns_none():
    assert _control(on_disable="silent").set_enabled(False) is None
    control = _control()
    assert control.set_enabled(False) is not None and control.set_enabled(False) is None


def test_a_plan_skips_the_steps_executed_while_the_policy_ran_and_the_next_step_knows_how_many():
    control = _control()
    _ready(control)
    first = control.begin_step(0.0)
    control.policy_was_reset(first)
    control.finish_step(first, _plan(4))
    second = control.begin_step(0.01)  # a new frame, no tick yet
    assert second.elapsed_steps == 0
    assert control.tick(0.02).executed and control.tick(0.03).executed  # two ticks while the policy runs
    control.finish_step(second, _plan(4))
    assert control.report(0.03)["pending_actions"] == 2  # rows 0 and 1 are in the past
    np.testing.assert_allclose(control.tick(0.04).action[0], 0.3, rtol=1e-6)
    third = control.begin_step(0.05)
    assert third.elapsed_steps == 3 and not third.reset


def test_report_states_the_control_state():
    control = _control()
    assert control.report(1.0)["instruction"] == "" and np.isnan(control.report(1.0)["instruction_age_s"])
    _ready(control, now=1.0)
    report = control.report(3.0)
    assert report["enabled"] is True and report["instruction"] == "open the drawer"
    assert report["instruction_age_s"] == 2.0 and report["observation_age_s"] == 2.0
