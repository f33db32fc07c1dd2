"""What policy_node publishes, over real topics: the values of the three outputs for a known action (clipping,
position and rotation scales), their order, timer mode's plan (each action once, then holds), the watchdog before
the first frame, the task restart on enable, and the values /diagnostics reports."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from support.policies import PixelPolicyForTest
from support.ros import PublishSpy, wait_for

from ivm_ros.ros import diagnostics

FIXED = "support.policies:FixedActionPolicyForTest"
#: A known policy action: dx and dpitch beyond the default action_limit 1.0, the gripper closed.
ACTION = [1.5, -0.25, 0.1, 0.4, -2.0, 0.6, -1.0]
CLIPPED = [1.0, -0.25, 0.1, 0.4, -1.0, 0.6, -1.0]


def _moves(values: list[float]) -> bool:
    return any(v != 0.0 for v in values[:6])


def _ready(node, probe, text: str = "open the drawer") -> None:
    probe.instruct(text)
    assert wait_for(lambda: node.stats()["instruction"] == text, 5)


def _act(node, probe, value: int = 51) -> None:
    """Sends frames until the node has published one more policy action (not a hold)."""
    n = node.counters.get("actions_out")
    assert wait_for(lambda: (probe.send(value), node.counters.get("actions_out") > n)[1], 10, 0.03), node.stats()


def _newest(probe) -> tuple[list[float], list[float], list[float], float] | None:
    """(action, twist linear, twist angular, gripper) of the newest messages, or None before all three arrived."""
    if not (probe.actions and probe.twists and probe.grippers):
        return None
    t = probe.twists[-1].twist
    return (probe.values()[-1], [t.linear.x, t.linear.y, t.linear.z], [t.angular.x, t.angular.y, t.angular.z],
            probe.grippers[-1])


def _outputs_become(probe, action, linear, angular, gripper) -> None:
    """Sends frames until the newest action, twist and gripper messages carry the expected values."""
    want = (pytest.approx(action), pytest.approx(linear), pytest.approx(angular), gripper)

    def poll() -> bool:
        probe.send(51)
        got = _newest(probe)
        return got is not None and all(g == w for g, w in zip(got, want))

    assert wait_for(poll, 10, 0.03), f"newest outputs {_newest(probe)}, expected {action} {linear} {angular} {gripper}"


def test_a_known_action_is_clipped_and_scaled_per_axis_on_every_output(policy_rig):
    node, probe = policy_rig(policy=FIXED, start_enabled=True, act_on_every_frame=True, control_rate=30.0,
                             **{"policy_config.action": ACTION})
    _ready(node, probe)
    # clipped to +-action_limit (1.0); the default scales 0.02 m and 0.05 rad per action unit x 30 Hz give
    # 0.6 m/s and 1.5 rad/s per unit
    _outputs_become(probe, CLIPPED, [1.0 * 0.6, -0.25 * 0.6, 0.1 * 0.6], [0.4 * 1.5, -1.0 * 1.5, 0.6 * 1.5], -1.0)
    assert node.counters.get("clipped_actions") >= 1
    # a scale of its own per axis, changed at runtime
    scale = [0.01, 0.02, 0.03, 0.1, 0.2, 0.3]
    assert node.set_parameters([Parameter("action_scale", value=scale)])[0].successful
    _outputs_become(probe, CLIPPED, [c * s * 30.0 for c, s in zip(CLIPPED[:3], scale[:3])],
                    [c * s * 30.0 for c, s in zip(CLIPPED[3:6], scale[3:])], -1.0)
    # no clipping with action_limit 0
    assert node.set_parameters([Parameter("action_limit", value=0.0)])[0].successful
    _outputs_become(probe, ACTION, [c * s * 30.0 for c, s in zip(ACTION[:3], scale[:3])],
                    [c * s * 30.0 for c, s in zip(ACTION[3:6], scale[3:])], -1.0)


def test_the_gripper_is_published_before_the_twist_and_the_action(policy_rig):
    node, probe = policy_rig(policy=FIXED, start_enabled=True, act_on_every_frame=True)
    order: list[str] = []
    for name in ("gripper_cmd", "delta_twist_cmds", "action"):
        node._pubs[name] = PublishSpy(node._pubs[name], name, order)
    _ready(node, probe)
    for _ in range(3):
        _act(node, probe)
    assert wait_for(lambda: len(order) >= 9, 5)
    published = list(order)
    triples = [published[i:i + 3] for i in range(0, len(published) - 2, 3)]  # a last one may be under way
    assert all(t == ["gripper_cmd", "delta_twist_cmds", "action"] for t in triples), published


def test_timer_mode_executes_each_planned_action_once_then_holds_with_the_last_gripper(policy_rig):
    """One frame, a 4-row plan (dy = row index): the ticks before it hold for no_observation with the initial
    gripper, the ticks after it publish rows 0..3 once each, then hold (plan empty) with the policy's gripper."""
    node, probe = policy_rig(start_enabled=True, control_rate=20.0, observation_timeout=5.0, initial_gripper=-1.0,
                             action_limit=10.0, image_qos="reliable", image_qos_depth=10,
                             **{"policy_config.chunk": 4, "policy_config.gripper": 0.5})
    _ready(node, probe)
    assert wait_for(lambda: node.counters.get("watchdog_no_observation") >= 3 and len(probe.actions) >= 3, 5)
    assert node.stats()["watchdog"] == "no_observation"
    before = probe.values()
    assert before and all(v == [0.0] * 6 + [-1.0] for v in before), before  # zero motion, initial_gripper
    assert wait_for(lambda: probe.image_pub.get_subscription_count() > 0, 5)
    start, starved = len(probe.actions), node.counters.get("starved_ticks")
    probe.send(102)  # dx 0.4 on every row of the plan
    assert wait_for(lambda: node.counters.get("starved_ticks") >= starved + 3, 5), node.stats()
    after = probe.values()[start:]
    executed = [v for v in after if _moves(v)]
    assert [v[1] for v in executed] == [0.0, 1.0, 2.0, 3.0], after  # each planned action once, in order
    assert all(v[0] == pytest.approx(0.4) and v[6] == 0.5 for v in executed)
    last = max(i for i, v in enumerate(after) if _moves(v))
    holds = after[last + 1:]
    assert holds and all(v == [0.0] * 6 + [0.5] for v in holds), after  # the plan is empty: the last gripper
    assert node.counters.get("actions_out") == 4 and node.stats()["watchdog"] == "ok"


def test_enable_restarts_the_task(policy_rig):
    node, probe = policy_rig(start_enabled=False, act_on_every_frame=True, observation_timeout=5.0)
    _ready(node, probe)
    probe.enable(True)
    _act(node, probe)
    assert PixelPolicyForTest.resets == ["open the drawer"]
    _act(node, probe)
    assert PixelPolicyForTest.resets == ["open the drawer"]  # acting on: no restart
    probe.enable(False)
    refused = node.counters.get("frames_disabled")
    assert wait_for(lambda: (probe.send(51), node.counters.get("frames_disabled") >= refused + 3)[1], 5, 0.03)
    probe.enable(True)
    _act(node, probe)  # frames kept coming (no gap) and the instruction is the same: only enable restarts it
    assert PixelPolicyForTest.resets == ["open the drawer", "open the drawer"]
    assert node.counters.get("policy_resets") == 2


def _status(got: list, level: bytes, message: str = "", **at_least: float) -> dict[str, str] | None:
    """The values of the newest /diagnostics status with ``level`` whose message starts with ``message`` and whose
    named values are >= the given numbers, or None."""
    for array in reversed(got):
        for s in array.status:
            values = {kv.key: kv.value for kv in s.values}
            if s.level == level and s.message.startswith(message) and all(
                    values.get(k, "n/a") != "n/a" and float(values[k]) >= v for k, v in at_least.items()):
                return values
    return None


def test_diagnostics_report_state_rates_and_counts(policy_rig):
    node, probe = policy_rig()
    got: list = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    assert wait_for(lambda: _status(got, diagnostics.OK, "disabled") is not None, 5)
    disabled = _status(got, diagnostics.OK, "disabled")
    assert disabled["enabled"] == "False" and disabled["mode"] == "timer 20 Hz"
    probe.enable(True)  # no instruction yet: the watchdog holds, a warning
    assert wait_for(lambda: _status(got, diagnostics.WARN, "holding: no_instruction",
                                    watchdog_no_instruction=2) is not None, 5), got[-1:]
    held = _status(got, diagnostics.WARN, "holding: no_instruction")
    assert held["watchdog"] == "no_instruction" and held["enabled"] == "True"
    _ready(node, probe)

    def acting() -> bool:
        probe.send(51)
        return _status(got, diagnostics.OK, "acting", frames_in=5, actions_out=5, input_rate_hz=0.001,
                       action_rate_hz=0.001) is not None

    assert wait_for(acting, 10, 0.03), got[-1:]
    values = _status(got, diagnostics.OK, "acting", frames_in=5, actions_out=5)
    assert values["watchdog"] == "ok" and values["instruction"] == "open the drawer"
    assert float(values["input_rate_hz"]) > 0 and float(values["action_rate_hz"]) > 0
    assert float(values["inference_p50_ms"]) >= 0 and int(values["published"]) >= int(values["actions_out"])
