"""sim_node: real rclpy nodes over real topics (in-process), plus the executable in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.expert import Expert
from ivm_ros_sim.calvin.scene import ROBOT_JOINT_NAMES
from ivm_ros_sim.ros.sim_node import SimNode
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray, String
from std_srvs.srv import Trigger
from support import TEST_ROOT
from support.ros import Spinner, clock_matches_a_frame, stop_node_process, wait_for

from ivm_ros.ros import qos
from ivm_ros.ros.conversions import image_to_array

TICK_NS = 1_000_000_000 / 30


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class SimProbe(Node):
    """Test-side node: publishes commands, records every output of one sim_node, calls its services."""

    OUTPUTS = {
        "image": ("camera/image_raw", Image),
        "info": ("camera/camera_info", CameraInfo),
        "gimage": ("gripper_camera/image_raw", Image),
        "ginfo": ("gripper_camera/camera_info", CameraInfo),
        "clock": ("/clock", Clock),
        "joints": ("{node}/robot_state", JointState),
        "tcp": ("{node}/tcp_pose", PoseStamped),
        "robot_obs": ("{node}/robot_obs", Float64MultiArray),
        "scene_obs": ("{node}/scene_obs", Float64MultiArray),
        "diag": ("/diagnostics", DiagnosticArray),
    }

    def __init__(self, context, node: str = "/sim_node", ns: str = "", name: str = "sim_probe") -> None:
        super().__init__(name, context=context, namespace=ns or "/")
        self.got: dict[str, list] = defaultdict(list)
        self.subs = []
        reliable = qos.profile("reliable", 100)
        for key, (topic, msg_type) in self.OUTPUTS.items():
            record = lambda m, k=key: self.got[k].append(m)
            self.subs.append(self.create_subscription(msg_type, topic.format(node=node), record, reliable))
        for key, topic, msg_type in (("instruction", "instruction", String), ("success", f"{node}/success", Bool)):
            self.subs.append(
                self.create_subscription(msg_type, topic, lambda m, k=key: self.got[k].append(m.data), qos.latched())
            )
        self.action_pub = self.create_publisher(Float64MultiArray, "action", 10)
        self.twist_pub = self.create_publisher(TwistStamped, "delta_twist_cmds", 10)
        self.gripper_pub = self.create_publisher(Float64, "gripper_cmd", 10)
        self.reset_client = self.create_client(Trigger, f"{node}/reset")
        self.success_client = self.create_client(Trigger, f"{node}/get_success")
        self.begin_client = self.create_client(Trigger, f"{node}/begin_subtask")
        self.resume_client = self.create_client(Trigger, f"{node}/resume")

    def action(self, values) -> None:
        self.action_pub.publish(Float64MultiArray(data=[float(v) for v in values]))

    def twist(self, linear=(0.0, 0.0, 0.0), angular=(0.0, 0.0, 0.0), frame: str = "world") -> None:
        msg = TwistStamped()
        msg.header.frame_id = frame
        t = msg.twist
        t.linear.x, t.linear.y, t.linear.z = (float(v) for v in linear)
        t.angular.x, t.angular.y, t.angular.z = (float(v) for v in angular)
        self.twist_pub.publish(msg)

    def gripper(self, value: float) -> None:
        self.gripper_pub.publish(Float64(data=float(value)))

    def call(self, client, timeout: float = 20.0):
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not available"
        future = client.call_async(Trigger.Request())
        assert wait_for(future.done, timeout), f"{client.srv_name} did not answer"
        return future.result()

    def tcp(self) -> np.ndarray:
        p = self.got["tcp"][-1].pose.position
        return np.array([p.x, p.y, p.z])

    def step(self, send) -> None:
        """Sends one command (``send()``) and waits for the next observation (a lockstep step): its state and its
        static image, which sim_node publishes last in a tick."""
        n, m = len(self.got["tcp"]), len(self.got["image"])
        send()
        assert wait_for(lambda: len(self.got["tcp"]) > n and len(self.got["image"]) > m, 10), (
            "no observation after the command")


@pytest.fixture
def rig(ros_context):
    """sim_node (64/32 px images, lockstep by default) + a probe, spun together."""
    made = []

    def make(**params):
        defaults = {"static_size": 64, "gripper_size": 32, "lockstep": True, "lockstep_timeout": 30.0,
                    "real_time_factor": 0.0, "task": "open_drawer", "diagnostics_period": 0.2}
        defaults.update(params)
        node = SimNode(context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in defaults.items()])
        probe = SimProbe(ros_context)
        made.append((node, probe, Spinner(ros_context, node, probe)))
        pubs = node._pubs
        assert wait_for(
            lambda: all(pubs[k].get_subscription_count() > 0 for k in ("tcp_pose", "camera/image_raw", "clock"))
            and all(p.get_subscription_count() > 0 for p in (probe.action_pub, probe.twist_pub, probe.gripper_pub)),
            10,
        ), "probe and node did not match"
        return node, probe

    yield make
    for node, probe, spinner in made:
        spinner.close()
        node.destroy_node()
        probe.destroy_node()
        assert not node._worker.is_alive() and node.env.scene.client is None  # worker stopped, PyBullet closed


def test_one_tick_shares_one_stamp_sizes_and_camera_info(rig):
    node, probe = rig()
    probe.step(lambda: probe.action([0, 0, 0, 0, 0, 0, 1]))
    probe.step(lambda: probe.action([0, 0, 0, 0, 0, 0, 1]))
    stamp = _ns(probe.got["tcp"][-1].header.stamp)
    assert stamp - _ns(probe.got["tcp"][-2].header.stamp) in (int(TICK_NS), int(TICK_NS) + 1)
    assert stamp == round(node.ticks() * TICK_NS)
    assert wait_for(lambda: all(any(_ns(m.header.stamp) == stamp for m in probe.got[k])
                                for k in ("image", "info", "gimage", "ginfo", "joints")), 5)
    assert any(_ns(m.clock) == stamp for m in probe.got["clock"])
    pick = {k: next(m for m in probe.got[k] if _ns(m.header.stamp) == stamp) for k in ("image", "info", "gimage",
                                                                                          "ginfo", "joints")}
    img, enc = image_to_array(pick["image"])
    assert enc == "rgb8" and img.shape == (64, 64, 3) and img.std() > 5
    assert pick["image"].header.frame_id == pick["info"].header.frame_id == "static_camera"
    assert image_to_array(pick["gimage"])[0].shape == (32, 32, 3)
    assert pick["gimage"].header.frame_id == "gripper_camera"
    ref = node.env.camera_info()
    for key, cam in (("info", "static"), ("ginfo", "gripper")):
        info = pick[key]
        assert (info.width, info.height) == (ref[cam]["width"], ref[cam]["height"])
        np.testing.assert_allclose(np.reshape(info.k, (3, 3)), ref[cam]["k"])
        np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, :3], ref[cam]["k"])
        assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
    assert list(pick["joints"].name) == list(ROBOT_JOINT_NAMES) and len(pick["joints"].position) == 9
    robot_obs = probe.got["robot_obs"][-1]
    assert len(robot_obs.data) == 15 and robot_obs.layout.dim[0].label.startswith("robot_obs: tcp_x,tcp_y")
    assert len(probe.got["scene_obs"][-1].data) == 24
    np.testing.assert_allclose(robot_obs.data[:3], probe.tcp(), atol=1e-4)  # robot_obs: one physics step behind

    node.set_parameters([Parameter("publish_gripper_camera", value=False)])
    n = len(probe.got["gimage"])
    for _ in range(2):
        probe.step(lambda: probe.action([0, 0, 0, 0, 0, 0, 1]))
    assert len(probe.got["gimage"]) == n and len(probe.got["image"]) >= n + 2


def test_reset_switches_task_publishes_latched_instruction(rig, ros_context):
    node, probe = rig()
    ok = node.set_parameters([Parameter("task", value="turn_on_lightbulb"), Parameter("seed", value=5),
                              Parameter("distraction", value="small"), Parameter("seed_increment", value=3)])
    assert all(r.successful for r in ok)
    res = probe.call(probe.reset_client)
    reply = json.loads(res.message)
    sentence = T.eval_sentences()["turn_on_lightbulb"]
    assert res.success and reply == {"task": "turn_on_lightbulb", "seed": 5, "distraction": "small",
                                     "instruction": sentence}
    assert wait_for(lambda: probe.got["instruction"][-1:] == [sentence])
    assert probe.got["success"][-1] is False
    assert json.loads(probe.call(probe.reset_client).message)["seed"] == 8  # seed + seed_increment
    node.set_parameters([Parameter("seed", value=5), Parameter("sentence_split", value="heldout")])
    reply = json.loads(probe.call(probe.reset_client).message)
    assert reply["seed"] == 5 and reply["instruction"] == T.paraphrases("turn_on_lightbulb", "heldout")[0]

    late = SimProbe(ros_context, name="late_probe")  # a late joiner receives the current instruction (transient local)
    spinner = Spinner(ros_context, late)
    try:
        assert wait_for(lambda: late.got["instruction"] == [reply["instruction"]] and late.got["success"] == [False])
    finally:
        spinner.close()
        late.destroy_node()

    for bad in (Parameter("task", value="fly_away"), Parameter("distraction", value="huge"),
                Parameter("sentence_split", value="test"), Parameter("real_time_factor", value=-1.0),
                Parameter("static_size", value=128), Parameter("task_pool", value=["open_drawer", "fly_away"])):
        result = node.set_parameters([bad])[0]
        assert not result.successful and result.reason, bad.name
    assert node.get_parameter("task").value == "turn_on_lightbulb"
    assert node.set_parameters([Parameter("task_pool", value=["all"])])[0].successful


def test_invalid_start_parameters_leave_the_node_serving(rig):
    """Overrides bypass the parameter callback: a bad task at start fails the reset, not the node."""
    node, probe = rig(task="no_such_task", lockstep=False)
    assert node.episode is None and node.counters.get("reset_failures") == 1
    res = probe.call(probe.success_client)
    assert not res.success and "no_such_task" in json.loads(res.message)["error"]
    assert wait_for(lambda: any(st.level == b"\x02" for d in probe.got["diag"] for st in d.status))  # ERROR
    assert node.set_parameters([Parameter("task", value="open_drawer")])[0].successful
    assert probe.call(probe.reset_client).success
    assert wait_for(lambda: node.counters.get("steps") > 3)


def test_action_and_twist_move_the_tcp(rig):
    node, probe = rig()
    probe.step(lambda: probe.action([0, 0, 0, 0, 0, 0, 1]))
    start = probe.tcp()
    for _ in range(6):
        probe.step(lambda: probe.action([1, 0, 0, 0, 0, 0, 1]))
    d = probe.tcp() - start
    assert d[0] > 0.05 and abs(d[1]) < 0.2 * d[0] and abs(d[2]) < 0.2 * d[0], d
    for _ in range(10):  # the arm lags its target (as CALVIN's controller): let it arrive
        probe.step(lambda: probe.action([0, 0, 0, 0, 0, 0, 1]))

    start = probe.tcp()
    probe.gripper(-1.0)  # gripper first: it does not trigger a lockstep step
    assert wait_for(lambda: node.counters.get("gripper_commands") == 1)
    for _ in range(6):
        probe.step(lambda: probe.twist(linear=(0.0, 0.0, -0.3)))  # 1 cm per step downwards
    d = probe.tcp() - start
    assert d[2] < -0.03 and abs(d[0]) < 0.3 * abs(d[2]) and abs(d[1]) < 0.3 * abs(d[2]), d
    assert probe.got["robot_obs"][-1].data[14] == -1.0  # the twist carried the closed gripper
    s = node.stats()
    assert s["steps"] == 23 and s.get("holds", 0) == 0 and s.get("lockstep_timeouts", 0) == 0, s


def test_bad_commands_are_counted_and_the_node_keeps_stepping(rig):
    node, probe = rig(lockstep=False, real_time_factor=2.0)
    keys = {"rejected_length": lambda: probe.action([0.0] * 6),
            "rejected_non_finite": lambda: probe.action([0, float("nan"), 0, 0, 0, 0, 1]),
            "rejected_out_of_range": lambda: probe.action([1.5, 0, 0, 0, 0, 0, 1]),
            "rejected_frame": lambda: probe.twist(linear=(0.1, 0, 0), frame="tool0")}
    sends = [*keys.values(), lambda: probe.twist(linear=(float("inf"), 0, 0)), lambda: probe.gripper(float("nan"))]
    for send in sends:
        send()
    assert wait_for(lambda: all(node.counters.get(k) >= 1 for k in keys), 10), node.stats()
    assert wait_for(lambda: node.counters.get("rejected_non_finite") >= 3, 10), node.stats()
    assert node.counters.get("commands") == 0
    steps = node.counters.get("steps")
    assert wait_for(lambda: node.counters.get("steps") > steps + 5, 10)  # still stepping
    assert wait_for(lambda: any(st.message == "6 command(s) rejected" for d in probe.got["diag"] for st in d.status))
    start = probe.tcp()
    probe.twist(linear=(0.3, 0, 0))  # within the arm's 0.6 m/s
    probe.twist(linear=(5.0, 0, 0))  # faster: clipped to 0.6 m/s and counted
    assert wait_for(lambda: probe.tcp()[0] - start[0] > 0.03, 10)
    assert node.counters.get("clipped_twist") == 1


def test_action_timeout_holds_still(rig):
    node, probe = rig(lockstep=False, real_time_factor=2.0, action_timeout=0.1)  # in force for 4 ticks
    assert wait_for(lambda: len(probe.got["tcp"]) > 2)
    start = probe.tcp()
    holds = node.counters.get("holds")
    probe.action([0, 1, 0, 0, 0, 0, 1])
    assert wait_for(lambda: node.counters.get("commands") == 1)
    assert wait_for(lambda: node.counters.get("holds") > holds + 20, 10)  # a third of a sim second later
    moved = probe.tcp() - start
    assert 0.02 < moved[1] < 0.10, moved  # 4 ticks of at most 2 cm
    time.sleep(0.3)
    settled = probe.tcp()
    assert wait_for(lambda: node.counters.get("holds") > holds + 40, 10)
    assert np.linalg.norm(probe.tcp() - settled) < 0.002
    assert probe.got["robot_obs"][-1].data[14] == 1.0  # gripper unchanged (open)


def test_lockstep_takes_exactly_one_step_per_action(rig):
    node, probe = rig()
    assert json.loads(probe.call(probe.success_client).message)["steps"] == 0  # the node answers: it is up
    wait_for(lambda: node.counters.get("steps") > 0, 0.5)  # give a wrong step the time to happen
    assert node.counters.get("steps") == 0 and not probe.got["tcp"]  # nothing happens without a command
    stamps = []
    for _ in range(5):
        probe.step(lambda: probe.action([0, 0, 0.2, 0, 0, 0, 1]))
        stamps.append(_ns(probe.got["tcp"][-1].header.stamp))
    assert json.loads(probe.call(probe.success_client).message)["steps"] == 5  # answered after the 5th step
    wait_for(lambda: node.counters.get("steps") > 5, 0.3)
    assert node.counters.get("steps") == 5 and len(probe.got["tcp"]) == 5
    assert np.allclose(np.diff(stamps), TICK_NS, atol=1)
    assert node.counters.get("lockstep_timeouts") == 0
    node.set_parameters([Parameter("lockstep_timeout", value=0.05)])  # no command: steps after each timeout
    assert wait_for(lambda: node.counters.get("lockstep_timeouts") >= 3, 10)


def test_get_success_after_driving_the_expert(rig, fast_env):
    """The expert's actions for turn_on_led (computed in a separate env with the same seed) replayed through the
    topic in lockstep reproduce the episode: the node reports success."""
    fast_env.reset(seed=0, task="turn_on_led")
    actions = []
    for a in Expert(fast_env).plan("turn_on_led"):
        actions.append(a)
        if fast_env.step(a)[2]:
            break
    assert fast_env.check_success()
    node, probe = rig(task="turn_on_led", seed=0)
    first = json.loads(probe.call(probe.success_client).message)
    assert first["task"] == "turn_on_led" and first["success"] is False and first["steps"] == 0
    for a in actions:
        probe.step(lambda a=a: probe.action(a))
    res = probe.call(probe.success_client)
    report = json.loads(res.message)
    assert res.success and report["success"] and report["steps"] == len(actions), report
    assert report["elapsed_s"] == pytest.approx(len(actions) / 30)
    assert wait_for(lambda: probe.got["success"][-1:] == [True])


def test_chain_mode_holds_until_resume_and_stops_at_the_first_success(rig, fast_env):
    """CALVIN's protocol over ROS: chain 1's start, held; turn_off_led begun (its sentence published), still held;
    resumed: the expert's actions (computed in a separate env from the same start) succeed in the same number of
    steps, and later commands step nothing until the next subtask begins."""
    from ivm_ros_sim.calvin.chains import load_chains

    chain = load_chains(1, start=1)[0]
    fast_env.reset_to_state(chain.robot_obs, chain.scene_obs)
    fast_env.begin_subtask("turn_off_led")
    actions = []
    for a in Expert(fast_env).plan("turn_off_led"):
        actions.append(a)
        if fast_env.step(a)[2]:
            break
    node, probe = rig(chain=1, subtask="turn_off_led")
    report = json.loads(probe.call(probe.success_client).message)
    assert report["chain"] == 1 and report["task"] == "" and report["held"]
    probe.action(actions[0])
    assert probe.call(probe.begin_client).success
    assert probe.call(probe.begin_client).success  # sent again (an answer lost): the same subtask, still held
    assert wait_for(lambda: probe.got["instruction"][-1:] == [T.eval_sentences()["turn_off_led"]])
    wait_for(lambda: node.counters.get("steps") > 0, 0.5)
    assert node.counters.get("steps") == 0  # held: commands before ~/resume step nothing
    n = len(probe.got["image"])
    answer = probe.call(probe.resume_client)
    assert answer.success and json.loads(answer.message) == {"resumed": "resumed"}
    assert wait_for(lambda: len(probe.got["image"]) > n)  # resume publishes the observation to act on
    answer = probe.call(probe.resume_client)  # sent again: no second frame to act on
    assert answer.success and json.loads(answer.message) == {"resumed": "again"}
    wait_for(lambda: len(probe.got["image"]) > n + 1, 0.5)
    assert len(probe.got["image"]) == n + 1
    for a in actions:
        probe.step(lambda a=a: probe.action(a))
    report = json.loads(probe.call(probe.success_client).message)
    assert report["success"] and report["steps"] == len(actions) and report["task"] == "turn_off_led"
    probe.action(actions[-1])
    wait_for(lambda: node.counters.get("steps") > len(actions), 0.5)
    assert node.counters.get("steps") == len(actions)  # stopped at the first success
    assert probe.call(probe.resume_client).success  # already resumed: nothing changes
    wait_for(lambda: node.counters.get("steps") > len(actions), 0.5)
    assert node.counters.get("steps") == len(actions)
    node.set_parameters([Parameter("subtask", value="turn_on_led")])
    begun = probe.call(probe.begin_client)  # names the latest frame, so a client can wait until it is answered
    assert begun.success and json.loads(begun.message)["frame_stamp_ns"] == _ns(probe.got["image"][-1].header.stamp)
    node.set_parameters([Parameter("chain", value=-1)])
    assert probe.call(probe.reset_client).success
    answer = probe.call(probe.begin_client)
    assert not answer.success and "needs a chain" in json.loads(answer.message)["error"]
    assert not probe.call(probe.resume_client).success  # a task episode: no chain to resume


def test_max_steps_pauses_until_reset(rig):
    node, probe = rig(lockstep=False, max_steps=3)
    assert wait_for(lambda: node.counters.get("steps") == 3)
    time.sleep(0.3)
    report = json.loads(probe.call(probe.success_client).message)
    assert node.counters.get("steps") == 3 and report["truncated"] and report["steps"] == 3
    assert probe.call(probe.reset_client).success
    assert wait_for(lambda: node.counters.get("steps") == 6)


def test_sim_node_executable_in_its_own_process(ros_context):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TEST_ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "ivm_ros_sim.ros.sim_node", "--ros-args", "-r", "__ns:=/robot",
           "-p", "static_size:=64", "-p", "publish_gripper_camera:=false", "-p", "task:=open_drawer",
           "-p", "real_time_factor:=1.0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = SimProbe(ros_context, node="/robot/sim_node", ns="/robot")
    spinner = Spinner(ros_context, probe)
    try:
        assert wait_for(lambda: len(probe.got["image"]) >= 2, 30), "no frame from the sim_node process"
        frame = probe.got["image"][-1]
        assert image_to_array(frame)[0].shape == (64, 64, 3)
        assert wait_for(lambda: probe.got["instruction"] == [T.eval_sentences()["open_drawer"]])
        assert wait_for(lambda: clock_matches_a_frame(probe.got), 30)
        assert probe.call(probe.reset_client).success
        assert not probe.got["gimage"]
    finally:
        spinner.close()
        probe.destroy_node()
        stop_node_process(proc)


def test_sim_node_without_assets_fails_with_one_clear_error(tmp_path):
    """A sim_node that cannot find the CALVIN assets says so and exits non-zero; its shutdown does not add a
    second traceback from closing a half-built node."""
    env = dict(os.environ, IVM_ROS_SHARED=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "ivm_ros_sim.ros.sim_node"], env=env, capture_output=True, text=True,
                          timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "CALVIN assets not found" in output and "ivm-ros sim-assets --download" in output, output[-3000:]
    assert "AttributeError" not in output and "Traceback" not in output, output[-3000:]
    assert proc.returncode == 1 and "[FATAL] cannot start: CALVIN assets not found" in output


def test_sim_node_without_pybullet_says_what_to_install():
    """With only rosdep's packages sim_node died with a bare traceback (`No module named 'pybullet'`)."""
    code = ("import sys; sys.modules['pybullet'] = None; sys.argv = ['sim_node']; "
            "from ivm_ros_sim.ros.sim_node import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "sim_node cannot start:" in proc.stderr and "pybullet" in proc.stderr
    assert "Fix: pip install pybullet (or, in a ROS workspace: rosdep install" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
