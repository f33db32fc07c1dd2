"""policy_node over real topics: in-process with a test-double policy, and the executable in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger
from support import TEST_ROOT
from support.policies import PixelPolicyForTest
from support.ros import PolicyProbe, Spinner, stop_node_process, wait_for

from ivm_ros.ros import qos
from ivm_ros.ros.conversions import array_to_image
from ivm_ros.ros.policy_node import PolicyNode

PIXEL = "support.policies:PixelPolicyForTest"


@pytest.fixture
def rig(policy_rig):
    return policy_rig


def _stream(probe: PolicyProbe, seconds: float, value: int = 51, hz: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        probe.send(value)
        time.sleep(1.0 / hz)


def test_actions_at_the_control_rate_once_enabled_nothing_while_disabled(rig):
    node, probe = rig(observation_timeout=1.0)
    probe.instruct("pick up the red block")
    assert wait_for(lambda: node.stats()["instruction"] == "pick up the red block")
    _stream(probe, 0.6)
    assert probe.actions == [] and probe.twists == [] and probe.grippers == []  # disabled by default
    assert node.stats()["ticks_disabled"] >= 5 and PixelPolicyForTest.calls == []  # no inference either
    probe.enable()
    _stream(probe, 0.3)
    start = len(probe.actions)
    _stream(probe, 0.5)
    assert wait_for(lambda: any(v[0] != 0.0 for v in probe.values()[start:]), 5)
    actions = [v for v in probe.values()[start:] if v[0] != 0.0]
    assert actions and actions[-1][0] == pytest.approx(51 / 255) and actions[-1][6] == 1.0
    layout = probe.actions[-1][1].layout.dim[0]
    assert layout.label == "action: dx,dy,dz,droll,dpitch,dyaw,gripper" and layout.size == 7
    twist = probe.twists[-1]
    assert twist.header.frame_id == "world"
    # dx 0.2 action units * 0.02 m/unit / (1/20 s) = 0.08 m/s
    assert wait_for(lambda: any(t.twist.linear.x == pytest.approx(51 / 255 * 0.02 * 20) for t in probe.twists))
    assert probe.grippers[-1] == 1.0
    assert PixelPolicyForTest.resets == ["pick up the red block"]
    probe.enable(False)
    wait_for(lambda: False, 0.2)
    n = len(probe.actions)
    _stream(probe, 0.4)
    assert len(probe.actions) == n



def test_one_command_per_control_tick_on_the_nodes_clock_whatever_the_frame_rate(rig):
    """On sim time (the probe publishes /clock), 3 s at control_rate 20 Hz with frames at ~33 Hz give exactly
    60 ticks, each publishing one command: the control rate, not the frame rate, and no timing on this machine
    can change the count."""
    node, probe = rig(use_sim_time=True, start_enabled=True, observation_timeout=1.0)
    clock = probe.create_publisher(Clock, "/clock", 10)

    def set_time(ns: int) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(ns, 1_000_000_000)
        clock.publish(msg)
        assert wait_for(lambda: node.get_clock().now().nanoseconds == ns, 5)

    t = 1_000_000_000
    set_time(t)
    assert wait_for(lambda: node.counters.get("published") >= 1)  # the tick the jump from 0 to 1 s fired (a hold)
    probe.instruct("pick up the red block")
    assert wait_for(lambda: node.stats()["instruction"] == "pick up the red block")
    probe.send(51, stamp_s=t / 1e9)
    assert wait_for(lambda: node.counters.get("frames_in") >= 1)
    before = node.counters.get("published")
    for i in range(300):  # 3 s of sim time in 10 ms steps, a frame every 30 ms
        t += 10_000_000
        if i % 3 == 0:
            probe.send(51, stamp_s=t / 1e9)
        set_time(t)
    assert wait_for(lambda: node.counters.get("published") - before >= 60, 5)
    assert wait_for(lambda: False, 0.3) is False  # anything still in flight lands
    assert node.counters.get("published") - before == 60, node.stats()
    assert node.counters.get("frames_in") > 90

def test_watchdog_holds_after_stale_frames_and_recovers(rig):
    node, probe = rig(start_enabled=True, observation_timeout=0.3)
    probe.instruct("push the button")
    assert wait_for(lambda: (probe.send(102), probe.values() and probe.values()[-1][0] > 0)[1], 10, 0.03)
    resets = len(PixelPolicyForTest.resets)
    wait_for(lambda: False, 0.6)  # no frames: stale after 0.3 s
    stats = node.stats()
    assert stats["watchdog"] == "observation_stale" and stats["watchdog_observation_stale"] >= 3
    held = probe.values()[-1]
    assert held[:6] == [0.0] * 6 and held[6] == 1.0  # zero motion, the last gripper command
    assert probe.twists[-1].twist.linear.x == 0.0
    assert wait_for(lambda: (probe.send(153), probe.values()[-1][0] == pytest.approx(153 / 255))[1], 10, 0.03)
    assert len(PixelPolicyForTest.resets) == resets + 1  # the gap restarted the task
    assert node.stats()["watchdog"] == "ok"
    node.set_parameters([Parameter("watchdog_action", value="silent")])
    wait_for(lambda: node.stats()["watchdog"] == "observation_stale", 2)
    wait_for(lambda: False, 0.1)
    n = len(probe.actions)
    wait_for(lambda: False, 0.4)
    assert len(probe.actions) == n  # silent: nothing published while stale


def test_no_instruction_holds_and_instruction_change_resets_the_policy(rig):
    node, probe = rig(start_enabled=True)
    _stream(probe, 0.4)
    assert node.stats()["watchdog_no_instruction"] >= 2 and PixelPolicyForTest.calls == []
    assert all(v[:6] == [0.0] * 6 for v in probe.values())
    probe.instruct("open the drawer")
    assert wait_for(lambda: (probe.send(51), PixelPolicyForTest.resets == ["open the drawer"])[1], 10, 0.03)
    probe.instruct("open the drawer")  # the same text again: no reset
    _stream(probe, 0.2)
    probe.instruct("close the drawer")
    assert wait_for(lambda: (probe.send(51), PixelPolicyForTest.resets[-1] == "close the drawer")[1], 10, 0.03)
    assert PixelPolicyForTest.resets == ["open the drawer", "close the drawer"]
    assert probe.call(probe.reset_client, Trigger.Request()).success  # ~/reset: same instruction, fresh task
    assert wait_for(lambda: (probe.send(51), len(PixelPolicyForTest.resets) == 3)[1], 10, 0.03)


def test_bad_images_and_instructions_are_counted_and_the_node_keeps_serving(rig):
    node, probe = rig(start_enabled=True, max_pixels=32 * 32, max_instruction_chars=20)
    probe.instruct("grasp it")
    assert wait_for(lambda: node.stats()["instruction"] == "grasp it")
    good = probe.send(51)
    wrong_len = probe.send(51)
    wrong_len.data = good.data.tobytes()[:-3]
    huge = array_to_image(np.zeros((33, 32, 3), np.uint8), "rgb8")
    odd = probe.send(51)
    odd.encoding = "yuv422"
    bad = [wrong_len, huge, odd]
    probe.instruct("   ")
    assert wait_for(lambda: node.stats().get("rejected_instruction_empty", 0) >= 1)
    probe.instruct("x" * 21)
    keys = ["rejected_data_length", "rejected_size", "rejected_encoding", "rejected_instruction_empty",
            "rejected_instruction_too_long"]
    sent = [0]

    def poll() -> bool:
        probe.image_pub.publish(bad[sent[0] % len(bad)])
        sent[0] += 1
        return all(node.stats().get(k, 0) >= 1 for k in keys)

    assert wait_for(poll, 10, 0.03), {k: v for k, v in node.stats().items() if k.startswith("rejected")}
    assert node.stats()["instruction"] == "grasp it"
    assert wait_for(lambda: (probe.send(204), probe.values()[-1][0] == pytest.approx(204 / 255))[1], 10, 0.03)
    probe.instruct("explode now")  # the policy raises: counted, no action from it, still serving
    assert wait_for(lambda: (probe.send(51), node.stats().get("policy_errors", 0) >= 2)[1], 10, 0.03)
    probe.instruct("nan please")  # non-finite actions never reach the robot
    assert wait_for(lambda: (probe.send(51), node.stats().get("policy_errors", 0) >= 4)[1], 10, 0.03)
    assert all(np.all(np.isfinite(v)) for v in probe.values())
    probe.instruct("be calm")
    assert wait_for(lambda: (probe.send(153), probe.values()[-1][0] == pytest.approx(153 / 255))[1], 10, 0.03)


def test_act_on_every_frame_gives_one_action_per_frame(rig):
    node, probe = rig(start_enabled=True, act_on_every_frame=True, image_qos="reliable", image_qos_depth=10,
                      **{"policy_config.chunk": 4})
    probe.instruct("stack the blocks")
    assert wait_for(lambda: node.stats()["instruction"] == "stack the blocks")
    assert wait_for(lambda: probe.image_pub.get_subscription_count() > 0)
    for i in range(8):  # lockstep-like: the next frame only after the action for this one
        n = len(probe.actions)
        probe.send(10 + i, stamp_s=i / 30)
        assert wait_for(lambda: len(probe.actions) > n, 5)
    wait_for(lambda: False, 0.3)
    values = probe.values()
    assert len(values) == 8  # exactly one each, no timer in between
    assert [round(v[0] * 255) for v in values] == list(range(10, 18))
    assert all(v[1] == 0.0 for v in values)  # the first row of each 4-step chunk
    assert PixelPolicyForTest.calls == pytest.approx([i / 30 for i in range(8)])  # stamps reach the policy
    node.set_parameters([Parameter("instruction_timeout", value=0.05)])
    wait_for(lambda: False, 0.1)
    n = len(probe.actions)
    probe.send(99)  # a frame without a usable instruction still gets one message: a hold
    assert wait_for(lambda: len(probe.actions) > n, 5)
    assert probe.values()[-1][:6] == [0.0] * 6 and node.stats()["watchdog_instruction_stale"] == 1


def test_wrist_image_and_proprio_reach_the_policy(rig):
    node, probe = rig(start_enabled=True, act_on_every_frame=True, use_wrist_image=True, use_proprio=True)
    wrist_pub = probe.create_publisher(Image, "wrist_image", qos.profile("sensor_data", 1))
    proprio_pub = probe.create_publisher(Float64MultiArray, "proprio", qos.profile("sensor_data", 1))
    probe.instruct("open the drawer")
    wrist = array_to_image(np.full((16, 16, 3), (10, 20, 30), np.uint8), "bgr8")  # delivered as RGB
    wrist.header.stamp.sec = 7

    def poll() -> bool:
        wrist_pub.publish(wrist)
        proprio_pub.publish(Float64MultiArray(data=[0.5, -1.0, 2.0]))
        probe.send(51, stamp_s=7.0)
        seen = PixelPolicyForTest.observations
        return bool(seen) and seen[-1].image_wrist is not None and seen[-1].proprio is not None

    assert wait_for(poll, 10, 0.05)
    seen = PixelPolicyForTest.observations[-1]
    assert seen.image_wrist.shape == (16, 16, 3) and seen.image_wrist[0, 0].tolist() == [30, 20, 10]
    assert seen.proprio.dtype == np.float32 and seen.proprio.tolist() == [0.5, -1.0, 2.0]
    proprio_pub.publish(Float64MultiArray(data=[float("nan")]))
    assert wait_for(lambda: node.stats().get("rejected_proprio_non_finite", 0) >= 1, 5)
    assert node.stats().get("wrist_stamp_mismatch", 0) == 0  # same stamps: paired


def test_diagnostics_and_parameter_guards(rig):
    from diagnostic_msgs.msg import DiagnosticArray

    node, probe = rig()
    got = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    assert wait_for(lambda: any(s.message.startswith("disabled") for d in got for s in d.status), 5)
    values = {kv.key: kv.value for kv in got[-1].status[0].values}
    for key in ("policy", "enabled", "mode", "watchdog", "inference_p50_ms", "instruction_age_s", "pending_actions"):
        assert key in values
    assert values["mode"] == "timer 20 Hz"
    for bad in ([Parameter("policy", value="octo")], [Parameter("watchdog_action", value="panic")],
                [Parameter("action_scale", value=[1.0, 2.0])]):
        result = node.set_parameters(bad)[0]
        assert not result.successful and result.reason


def test_unknown_policy_fails_configure_and_node_stays_up(ros_context):
    from lifecycle_msgs.msg import State

    node = PolicyNode(context=ros_context, parameter_overrides=[Parameter("policy", value="no_such_policy"),
                                                                 Parameter("autostart", value=False)])
    try:
        node.trigger_configure()
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        assert "no_such_policy" in node._last_error
        assert node.set_parameters([Parameter("policy", value=PIXEL)])[0].successful
        node.trigger_configure()
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_INACTIVE
    finally:
        node.on_shutdown(None)
        node.destroy_node()


def test_policy_node_executable_in_its_own_process(ros_context):
    """The console entry point as a subprocess, namespaced and remapped the way the launch file does."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TEST_ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "ivm_ros.ros.policy_node", "--ros-args", "-p", f"policy:={PIXEL}",
           "-p", "start_enabled:=true", "-p", "act_on_every_frame:=true",
           "-r", "__ns:=/robot", "-r", "image:=masking_node/masked_image", "-r", "~/action:=/sim/action"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = PolicyProbe(ros_context, prefix="/robot/policy_node", image_topic="/robot/masking_node/masked_image",
                        instruction_topic="/robot/instruction")
    got: list[Float64MultiArray] = []
    probe.create_subscription(Float64MultiArray, "/sim/action", got.append, qos.profile("reliable", 10))
    spinner = Spinner(ros_context, probe)
    try:
        probe.instruct("pick up the block")
        assert wait_for(lambda: (probe.send(204), bool(got) and got[-1].data[0] > 0)[1], 30, 0.1), \
            "no action from the policy_node process"
        assert got[-1].data[0] == pytest.approx(204 / 255) and len(got[-1].data) == 7
        assert probe.twists and probe.grippers  # the other outputs keep their private names
    finally:
        spinner.close()
        probe.destroy_node()
        stop_node_process(proc)
