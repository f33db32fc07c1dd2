"""simpler_node over real rclpy topics (in-process) on SimplerEnvDouble, plus its start without SimplerEnv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from ivm_ros_sim.ros.simpler_node import SimplerNode, parameters
from ivm_ros_sim.simpler import double as D
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Bool, Float64, Float64MultiArray, String
from std_srvs.srv import Trigger
from support import TEST_ROOT
from support.ros import Spinner, clock_matches_a_frame, stop_node_process, wait_for

from ivm_ros.policies.embedded.robots import WIDOWX_PROPRIO
from ivm_ros.ros import qos
from ivm_ros.ros.conversions import image_to_array

PERIOD_NS = 200_000_000  # Bridge tasks: 5 Hz


def _ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


class SimplerProbe(Node):
    """Test-side node: publishes commands, records simpler_node's outputs, calls its services."""

    OUTPUTS = {"image": ("camera/image_raw", Image), "info": ("camera/camera_info", CameraInfo),
               "bimage": ("base_camera/image_raw", Image), "binfo": ("base_camera/camera_info", CameraInfo),
               "clock": ("/clock", Clock), "diag": ("/diagnostics", DiagnosticArray),
               "proprio": ("{node}/proprio", Float64MultiArray)}

    def __init__(self, context, node: str = "/simpler_node") -> None:
        super().__init__("simpler_probe", context=context)
        self.got: dict[str, list] = defaultdict(list)
        reliable = qos.profile("reliable", 100)
        self.subs = [self.create_subscription(t, topic.format(node=node), lambda m, k=k: self.got[k].append(m),
                                              reliable)
                     for k, (topic, t) in self.OUTPUTS.items()]
        for key, topic, msg_type in (("instruction", "instruction", String), ("success", f"{node}/success", Bool)):
            self.subs.append(self.create_subscription(msg_type, topic, lambda m, k=key: self.got[k].append(m.data),
                                                      qos.latched()))
        self.action_pub = self.create_publisher(Float64MultiArray, "action", 10)
        self.twist_pub = self.create_publisher(TwistStamped, "delta_twist_cmds", 10)
        self.gripper_pub = self.create_publisher(Float64, "gripper_cmd", 10)
        self.reset_client = self.create_client(Trigger, f"{node}/reset")
        self.success_client = self.create_client(Trigger, f"{node}/get_success")

    def action(self, values) -> None:
        self.action_pub.publish(Float64MultiArray(data=[float(v) for v in values]))

    def twist(self, linear, angular, frame: str = "base_link") -> None:
        msg = TwistStamped()
        msg.header.frame_id = frame
        t = msg.twist
        t.linear.x, t.linear.y, t.linear.z = (float(v) for v in linear)
        t.angular.x, t.angular.y, t.angular.z = (float(v) for v in angular)
        self.twist_pub.publish(msg)

    def call(self, client, timeout: float = 20.0):
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not available"
        future = client.call_async(Trigger.Request())
        assert wait_for(future.done, timeout), f"{client.srv_name} did not answer"
        return future.result()

    def step(self, send) -> None:
        """Sends one command and waits for the next third-person image (published last in a tick)."""
        n = len(self.got["image"])
        send()
        assert wait_for(lambda: len(self.got["image"]) > n, 10), "no observation after the command"


@pytest.fixture
def rig(ros_context):
    """simpler_node on the double (lockstep by default) + a probe, spun together."""
    made = []

    def make(**params):
        defaults = {"backend": "double", "lockstep": True, "lockstep_timeout": 30.0, "real_time_factor": 0.0,
                    "diagnostics_period": 0.2}
        defaults.update(params)
        overrides = [Parameter(k, value=v) for k, v in defaults.items()]
        node = SimplerNode(context=ros_context, parameter_overrides=overrides)
        probe = SimplerProbe(ros_context)
        made.append((node, probe, Spinner(ros_context, node, probe)))
        assert wait_for(lambda: all(node._pubs[k].get_subscription_count() > 0 for k in ("camera/image_raw", "clock"))
                        and probe.action_pub.get_subscription_count() > 0
                        and probe.twist_pub.get_subscription_count() > 0, 10), "probe and node did not match"
        return node, probe

    yield make
    for node, probe, spinner in made:
        spinner.close()
        node.destroy_node()
        probe.destroy_node()
        assert not node._worker.is_alive() and node.env is None  # worker stopped, env closed


def test_outputs_share_one_stamp_with_camera_info_instruction_and_success(rig):
    node, probe = rig()
    for _ in range(2):  # the reset's frame went out before the probe subscribed
        probe.step(lambda: probe.action([0, 0, 0, 0, 0, 0, 1]))
    stamp = _ns(probe.got["image"][-1].header.stamp)
    assert stamp - _ns(probe.got["image"][-2].header.stamp) == PERIOD_NS
    assert stamp == node.episodes.ns
    assert wait_for(lambda: all(any(_ns(m.header.stamp) == stamp for m in probe.got[k])
                                for k in ("info", "bimage", "binfo")) and
                    any(_ns(c.clock) == stamp for c in probe.got["clock"]), 5)
    pick = {k: next(m for m in probe.got[k] if _ns(m.header.stamp) == stamp) for k in ("image", "info", "bimage",
                                                                                          "binfo")}
    img, enc = image_to_array(pick["image"])
    assert enc == "rgb8" and img.shape == (48, 64, 3)
    assert image_to_array(pick["bimage"])[0].shape == (32, 32, 3)
    assert pick["image"].header.frame_id == pick["info"].header.frame_id == "camera_optical"
    assert pick["bimage"].header.frame_id == "base_camera_optical"
    ref = node.env.camera_info()["main"]
    assert (pick["info"].width, pick["info"].height) == (64, 48)
    np.testing.assert_allclose(np.reshape(pick["info"].k, (3, 3)), ref["k"])
    assert wait_for(lambda: probe.got["instruction"] == ["put carrot on plate"] and probe.got["success"] == [False])


class RecordingPublisher:
    """A publisher that notes its key in ``log`` before publishing (the node's publishing order)."""

    def __init__(self, key: str, pub, log: list[str]) -> None:
        self.key, self.pub, self.log = key, pub, log

    def publish(self, msg) -> None:
        self.log.append(self.key)
        self.pub.publish(msg)

    def __getattr__(self, name: str):
        return getattr(self.pub, name)


def test_widowx_proprio_goes_out_labelled_before_the_image_of_its_tick(rig):
    node, probe = rig()
    log: list[str] = []
    for key in ("clock", "proprio", "base_camera/image_raw", "camera/image_raw"):
        node.outputs.pubs[key] = RecordingPublisher(key, node.outputs.pubs[key], log)
    frames, step = [], node.env.step
    node.env.step = lambda action: frames.append(step(action)) or frames[-1]
    for _ in range(2):  # the reset's frame went out before the probe subscribed
        probe.step(lambda: probe.action([0.01, 0.0, -0.02, 0, 0, 0, -1.0]))
    assert log == ["clock", "proprio", "base_camera/image_raw", "camera/image_raw"] * 2
    assert wait_for(lambda: len(probe.got["proprio"]) >= 2)
    msg = probe.got["proprio"][-1]
    np.testing.assert_array_equal(np.asarray(msg.data, np.float32), frames[-1].proprio)  # float32 -> 64 exact
    np.testing.assert_allclose(msg.data[:3], D.HOME_TCP + [0.02, 0.0, -0.04], atol=1e-6)
    assert msg.data[7] == -1.0  # the last gripper command
    dim = msg.layout.dim[0]
    assert dim.label == "proprio: " + ",".join(WIDOWX_PROPRIO) and dim.size == dim.stride == 8

    node.set_parameters([Parameter("task", value="google_robot_pick_coke_can")])  # no proprio: none published
    assert probe.call(probe.reset_client).success
    probe.action([0, 0, 0, 0, 0, 0, 1])
    assert wait_for(lambda: log.count("clock") == 4)  # the reset's tick and one step
    assert log[-6:] == ["clock", "base_camera/image_raw", "camera/image_raw"] * 2 and len(frames) == 2


def test_lockstep_actions_reach_the_env_as_axis_angle_and_absolute_gripper(rig):
    node, probe = rig()
    probe.step(lambda: probe.action([0.01, -0.02, 0.0, 0.0, 0.0, 0.3, -1.0]))
    probe.step(lambda: probe.action([0.0, 0.0, 0.01, 0.2, 0.0, 0.0, 1.0]))
    sent = node.env.env.actions
    assert len(sent) == 2 and node.counters.get("steps") == 2
    np.testing.assert_allclose(sent[0], [0.01, -0.02, 0, 0, 0, 0.3, -1.0], atol=1e-12)
    np.testing.assert_allclose(sent[1], [0, 0, 0.01, 0.2, 0, 0, 1.0], atol=1e-12)


def test_twist_and_gripper_commands_become_one_control_period_of_motion(rig):
    node, probe = rig()
    probe.gripper_pub.publish(Float64(data=-1.0))
    assert wait_for(lambda: node.counters.get("gripper_commands") == 1)
    probe.step(lambda: probe.twist((0.05, 0.0, -0.05), (0.0, 0.0, 0.5)))
    np.testing.assert_allclose(node.env.env.actions[-1], [0.01, 0, -0.01, 0, 0, 0.1, -1.0], atol=1e-12)
    probe.twist((0.1, 0, 0), (0, 0, 0), frame="world")
    probe.action([0, 0, 0, 0, 0, 0, 2.0])
    probe.action([0, 0, 0])
    assert wait_for(lambda: node.counters.get("rejected_frame") == 1 and node.counters.get("rejected_out_of_range") == 1
                    and node.counters.get("rejected_length") == 1)
    assert len(node.env.env.actions) == 1  # rejected commands never step


def test_success_is_published_and_reported(rig):
    node, probe = rig()
    for _ in range(2):
        probe.step(lambda: probe.action([0.03, 0, 0, 0, 0, 0, 1.0]))  # the double: +5 cm x is success
    assert wait_for(lambda: probe.got["success"][-1:] == [True])
    res = probe.call(probe.success_client)
    report = json.loads(res.message)
    assert res.success and report["success"] and report["ever_success"] and report["steps"] == 2
    assert report["elapsed_s"] == 0.4 and report["task"] == "widowx_carrot_on_plate"


def test_reset_with_task_episode_and_variant_and_the_step_limit(rig):
    node, probe = rig(max_steps=2)
    node.set_parameters([Parameter("task", value="widowx_spoon_on_towel"), Parameter("seed", value=4),
                         Parameter("episode_id", value=3), Parameter("variant", value='{"size": [24, 32]}')])
    res = probe.call(probe.reset_client)
    assert res.success and json.loads(res.message) == {
        "task": "widowx_spoon_on_towel", "seed": 4, "episode_id": 3, "instruction": "put the spoon on the towel",
        "variant": {"size": [24, 32]}}
    assert wait_for(lambda: probe.got["instruction"][-1:] == ["put the spoon on the towel"])
    assert wait_for(lambda: image_to_array(probe.got["image"][-1])[0].shape == (24, 32, 3))
    assert node.env.env.episode_id == 3
    for _ in range(2):
        probe.step(lambda: probe.action([0, 0, 0, 0, 0, 0, 1]))
    probe.action([0, 0, 0, 0, 0, 0, 1])  # over max_steps: no step
    assert wait_for(lambda: json.loads(probe.call(probe.success_client).message)["truncated"])
    assert node.counters.get("steps") == 2
    assert json.loads(probe.call(probe.reset_client).message)["seed"] == 5  # seed + seed_increment
    node.set_parameters([Parameter("variant", value="not json")])
    res = probe.call(probe.reset_client)
    assert not res.success and "variant must be a JSON object" in json.loads(res.message)["error"]
    assert wait_for(lambda: any(s.level == b"\x02" for m in probe.got["diag"] for s in m.status), 5)  # ERROR


def test_simpler_node_executable_in_its_own_process(ros_context):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TEST_ROOT), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "ivm_ros_sim.ros.simpler_node", "--ros-args", "-p", "backend:=double",
           "-p", "task:=widowx_stack_cube", "-p", "real_time_factor:=1.0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    probe = SimplerProbe(ros_context)
    spinner = Spinner(ros_context, probe)
    try:
        assert wait_for(lambda: len(probe.got["image"]) >= 2, 30), "no frame from the simpler_node process"
        frame = probe.got["image"][-1]
        assert image_to_array(frame)[0].shape == (48, 64, 3)
        assert wait_for(lambda: probe.got["instruction"] == ["stack the green block on the yellow block"])
        assert wait_for(lambda: clock_matches_a_frame(probe.got), 30)
        assert probe.call(probe.reset_client).success
    finally:
        spinner.close()
        probe.destroy_node()
        stop_node_process(proc)


def test_simpler_node_without_simpler_env_says_how_to_install_it():
    code = ("import sys\nfor m in ('simpler_env', 'mani_skill2_real2sim', 'mani_skill2_real2sim.envs'): "
            "sys.modules[m] = None\nsys.argv = ['simpler_node']\n"
            "from ivm_ros_sim.ros.simpler_node import main\nmain()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "simpler_node cannot start: SimplerEnv cannot load" in proc.stderr
    assert "pip install -e --no-deps" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert D.SimplerEnvDouble  # the double is what the other tests run on


def test_config_file_lists_every_parameter_with_its_default():
    config = yaml.safe_load((TEST_ROOT.parent / "config" / "simpler_node.yaml").read_text())
    values = config["/**/simpler_node"]["ros__parameters"]
    assert values == {p.name: p.default for p in parameters()}
