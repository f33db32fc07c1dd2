"""policy_node: (masked) camera frames + instruction -> end-effector actions (a lifecycle node).

Topics (relative, remappable): in ``image`` (sensor_msgs/Image; the launch file remaps it to
``masking_node/masked_image``, or to the raw camera for an unmasked baseline), ``instruction`` (std_msgs/String,
reliable + transient-local), with ``use_wrist_image`` ``wrist_image`` (Image) and with ``use_proprio``
``proprio`` (Float64MultiArray, the robot state vector the policy expects; the launch file remaps it to the
simulator's ``sim_node/robot_obs``). Out, per action: ``~/gripper_cmd`` (Float64, > 0 open),
``~/delta_twist_cmds`` (TwistStamped in ``twist_frame``: the deltas times ``action_scale`` (m, rad per action
unit) divided by the control period 1/``control_rate``, what moveit_servo accepts) and ``~/action``
(Float64MultiArray ``dx dy dz droll dpitch dyaw gripper`` in the policy's units, clipped to +-``action_limit``:
the simulator's ``action`` input); ``/diagnostics``. Services: ``~/enable`` (std_srvs/SetBool) gates actuation,
off at start unless ``start_enabled``; ``~/reset`` (std_srvs/Trigger) restarts the policy's task.

This node is wiring only. What to publish, when to hold and when to restart the task (instruction tracking,
watchdog, pending actions, pairing each frame with the newest wrist image and proprio into the policy's
Observation) is decided by :class:`ivm_ros.policies.control.PolicyControl`, documented there. Callbacks only
validate and hand the newest frame to the one-slot mailbox; one worker thread runs the policy (never while
disabled); timer mode publishes on a timer on the node's clock (sim time with ``use_sim_time``),
``act_on_every_frame`` right after each inference.

The node itself imports rclpy, NumPy and ivm_ros's ROS-free modules: no torch, OpenCV or transformers (tested).
The policy brings its own packages when configure loads it: ``embedded`` JAX/Flax, OpenCV (resizing) and torch +
transformers (its MiniLM instruction encoder); ``octo`` Octo's JAX environment.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image
from std_msgs.msg import Float64, Float64MultiArray, Header, String
from std_srvs.srv import SetBool, Trigger

from ivm_ros.inputs import InputRejected, check_instruction
from ivm_ros.policies.control import WATCHDOG_ACTIONS, ControlSettings, PolicyControl
from ivm_ros.policies.registry import POLICIES, load_policy
from ivm_ros.policies.sensors import Sensors
from ivm_ros.ros import diagnostics, qos
from ivm_ros.ros.conversions import action_to_array, action_to_twist, gripper_command
from ivm_ros.ros.instruction import subscribe_instruction
from ivm_ros.ros.params import Param, declare, declare_table
from ivm_ros.ros.raw_image import check_image_message, image_to_rgb
from ivm_ros.ros.worker_node import WorkerLifecycleNode, spin_node
from ivm_ros.runtime import LatencyWindow, RateMeter

DEFAULT_POLICY = "embedded"
#: The simulator's convention (sim/calvin/env.py MAX_REL_POS, MAX_REL_ORN): 1.0 = 0.02 m or 0.05 rad per step.
DEFAULT_ACTION_SCALE = (0.02, 0.02, 0.02, 0.05, 0.05, 0.05)
PARAMETERS = (
    Param("control_rate", 30.0, "Hz: timer actions per second; the twist divides deltas by 1/rate (the simulator: "
          "30)", lo=0.1, hi=1000.0, read_only=True),
    Param("act_on_every_frame", False, "publish one action per processed frame right after inference instead of on "
          "the timer (lockstep simulation)", read_only=True),
    Param("start_enabled", False, "actuate from the start (simulation); otherwise wait for ~/enable", read_only=True),
    Param("observation_timeout", 0.5, "s (node clock) without a valid frame before the watchdog holds; 0 = off",
          lo=0.0, hi=3600.0),
    Param("instruction_timeout", 0.0, "s since the latest instruction message before it is stale; 0 = never",
          lo=0.0, hi=1e6),
    Param("watchdog_action", "hold", "on missing/stale input: 'hold' publishes zero motion with the last gripper "
          "command, 'silent' publishes nothing", choices=WATCHDOG_ACTIONS),
    Param("action_scale", list(DEFAULT_ACTION_SCALE), "m (x y z) and rad (roll pitch yaw) per policy action unit, "
          "for ~/delta_twist_cmds"),
    Param("action_limit", 1.0, "~/action values are clipped to +-limit (counted); 0 = no clipping", lo=0.0, hi=1e6),
    Param("twist_frame", "world", "frame_id of ~/delta_twist_cmds"),
    Param("initial_gripper", 1.0, "gripper command of holds before the first action (> 0 open)", lo=-1.0, hi=1.0),
    Param("use_wrist_image", False, "subscribe to wrist_image and give the policy the newest one", read_only=True),
    Param("use_proprio", False, "subscribe to proprio (Float64MultiArray) and give the policy the newest one",
          read_only=True),
    Param("on_disable", "hold", "when ~/enable turns actuation off: 'hold' publishes one zero-motion command with "
          "the last gripper at once, 'silent' publishes nothing", choices=("hold", "silent")),
    Param("proprio_timeout", 0.5, "s (node clock) since the newest valid proprio vector before the watchdog holds "
          "(with use_proprio); 0 = never stale", lo=0.0, hi=3600.0),
    Param("proprio_limits", "policy", "plausible proprio values: 'policy' (the range the policy states, from its "
          "training statistics) or 'off' (only length, finiteness and proprio_max_abs)", choices=("policy", "off"),
          read_only=True),
    Param("proprio_max_abs", 1e6, "proprio values beyond +-this are rejected", lo=0.0, hi=1e30, read_only=True),
    Param("pairing_wait", 0.05, "wall s the worker waits for the wrist image with the frame's stamp before it takes "
          "the newest one (counted wrist_stamp_mismatch)", lo=0.0, hi=1.0),
    Param("image_qos", "sensor_data", "input images' QoS", choices=qos.PROFILES, read_only=True),
    Param("image_qos_depth", 1, "input queue depth", lo=1, hi=100, read_only=True),
    Param("output_qos", "reliable", "command outputs' QoS", choices=qos.PROFILES, read_only=True),
    Param("max_pixels", 3840 * 2160, "frames with more pixels are rejected", lo=1, hi=1 << 30),
    Param("max_instruction_chars", 1000, "longer instructions are rejected", lo=1, hi=100000),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", lo=0.1, hi=60.0, read_only=True),
    Param("log_throttle", 5.0, "seconds between repeated warnings of one kind", lo=0.0, hi=3600.0),
)
#: Parameters that are fields of ControlSettings (same names), updated at runtime.
_CONTROL_FIELDS = tuple(f.name for f in dataclasses.fields(ControlSettings))


@dataclasses.dataclass
class PolicyFrame:
    """A frame in the mailbox: the message and when it arrived."""

    msg: Image
    received_mono: float  # time.monotonic()


class PolicyNode(WorkerLifecycleNode):
    """See the module docstring."""

    DIAGNOSTIC_TASK = "policy"
    OK_MESSAGE = "acting"
    ERROR_COUNTER = "policy_errors"

    def __init__(self, node_name: str = "policy_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.policy_name = declare(
            self, "policy", DEFAULT_POLICY, "policy: a registered name (embedded, octo) or 'module:Class'"
        )
        self._declare_plugin_settings(POLICIES, "policy_config", self.policy_name)
        declare_table(self, PARAMETERS)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        settings = ControlSettings(**{name: self._param(name) for name in _CONTROL_FIELDS})
        sensors = Sensors(self._param("use_wrist_image"), self._param("use_proprio"), self._param("proprio_max_abs"))
        self.control = PolicyControl(settings, self.counters, bool(self._param("start_enabled")), sensors)
        self.add_post_set_parameters_callback(self._after_set_parameters)
        self.rate_in, self.rate_out = RateMeter(), RateMeter()
        self.infer_ms, self.latency = LatencyWindow(), LatencyWindow()
        self.policy = None
        self._subs: list[Any] = []
        self._own_services: list[Any] = []
        self._own_timers: list[Any] = []
        self._control_timer = None
        self._start_when_asked()

    # ------------------------------------------------------------------------------------------ parameters

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _on_set_parameters(self, params: list[rclpy.Parameter]) -> SetParametersResult:
        if refusal := self._refuse_while_loaded(params, self.policy is not None, ("policy", "policy_config")):
            return refusal
        for p in params:
            if p.name == "action_scale":
                scale = np.asarray(p.value, dtype=np.float64)
                if scale.shape != (6,) or not np.all(np.isfinite(scale)):
                    return SetParametersResult(successful=False, reason="action_scale needs 6 finite values "
                                               "(x y z in m, roll pitch yaw in rad, per action unit)")
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, params: list[rclpy.Parameter]) -> None:
        """Applies parameters once every check accepted them (a refused set never reaches the control core)."""
        for p in params:
            if p.name == "policy":
                self.policy_name = p.value
            elif p.name in _CONTROL_FIELDS:
                setattr(self.control.settings, p.name, p.value)

    # ------------------------------------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if error := self._parameters_error():
            return self._refuse_configure(error)
        self._declare_plugin_settings(POLICIES, "policy_config", self.policy_name)
        try:
            self.policy = load_policy(self.policy_name, self._plugin_settings(POLICIES, "policy_config",
                                                                              self.policy_name))
        except Exception as exc:  # a bad policy must fail the transition, not kill the node
            return self._refuse_configure(f"cannot load policy {self.policy_name!r}: {exc}", exc)
        self._configured()
        self.control.sensors.spec = self.policy.proprio_spec() if self._param("proprio_limits") == "policy" else None
        out = qos.profile(self._param("output_qos"), 10)
        for name, msg_type in (("gripper_cmd", Float64), ("delta_twist_cmds", TwistStamped),
                               ("action", Float64MultiArray)):
            self._pubs[name] = self.create_publisher(msg_type, f"~/{name}", out, event_callbacks=qos.publisher_events(
                self.get_logger(), f"~/{name}", "output_qos", self._count_qos))
        self._diagnostics_publisher()
        self._own_services = [self.create_service(SetBool, "~/enable", self._on_enable),
                              self.create_service(Trigger, "~/reset", self._on_reset)]
        self._own_timers.append(self.diagnostics_timer(self.publish_diagnostics))
        self.get_logger().info(f"configured: policy={self.policy_name} {self.policy.describe()}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        in_qos = qos.profile(self._param("image_qos"), self._param("image_qos_depth"))
        topics = [("image", Image, self._on_image, in_qos, "image_qos")]
        if self._param("use_wrist_image"):
            topics.append(("wrist_image", Image, self._on_wrist, in_qos, "image_qos"))
        if self._param("use_proprio"):
            topics.append(("proprio", Float64MultiArray, self._on_proprio, in_qos, "image_qos"))
        self._subs = [
            self.create_subscription(msg_type, topic, callback, profile, event_callbacks=qos.subscription_events(
                self.get_logger(), topic, param, self._count_qos))
            for topic, msg_type, callback, profile, param in topics
        ]
        self._subs += subscribe_instruction(self, self._on_instruction, self._count_qos)
        self.control.restart()
        self._start_worker("ivm_policy_worker")
        if not self._param("act_on_every_frame"):
            self._control_timer = self.create_timer(1.0 / self._param("control_rate"), self._on_tick)
        mode = "every frame" if self._param("act_on_every_frame") else f"{self._param('control_rate'):g} Hz"
        self.get_logger().info(
            f"active ({mode}, {'enabled' if self.control.enabled else 'disabled: call ~/enable'}): "
            f"{self.resolve_topic_name('image')} -> {self.resolve_topic_name('~/action')}"
        )
        return super().on_activate(state)

    def _unsubscribe(self) -> None:
        """Stops the control timer and the worker and drops the subscriptions (what activate set up)."""
        self._destroy(timers=[self._control_timer])
        self._control_timer = None
        self._stop_worker()
        self._destroy(subscriptions=self._subs)
        self._subs = []
        self.control.clear_pending()

    def _release(self) -> None:
        self._destroy(timers=self._own_timers, services=self._own_services)
        self._destroy_publishers()
        self._own_timers, self._own_services = [], []
        if self.policy is not None:
            self.policy.close()
            self.policy = None

    # ------------------------------------------------------------------------------------------- callbacks

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_image(self, msg: Image) -> None:
        now = self._now()
        self.rate_in.tick()
        self.counters.add("frames_in")
        if not self._accepted(check_image_message, msg, self._param("max_pixels")):
            self._publish(self.control.hold_frame("rejected_frame"))
            return
        if self.control.receive_frame(now) and self.mailbox.put(PolicyFrame(msg, time.monotonic())) is not None:
            self.counters.add("dropped_busy")

    def _on_wrist(self, msg: Image) -> None:
        if self._accepted(check_image_message, msg, self._param("max_pixels"), prefix="wrist_"):
            self.control.sensors.receive_wrist(msg, _stamp_ns(msg.header))

    def _on_proprio(self, msg: Float64MultiArray) -> None:
        self._accepted(self.control.sensors.receive_proprio, msg.data, self._now())

    def _on_instruction(self, msg: String) -> None:
        try:
            text = check_instruction(msg.data, self._param("max_instruction_chars"))
        except InputRejected as exc:
            self._reject(exc.reason, exc.detail)
            return
        if self.control.set_instruction(text, self._now()):
            self.get_logger().info(f"instruction: {text!r}")

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self._publish(self.control.set_enabled(bool(request.data)), final=True)  # the hold on disable, if any
        response.success = True
        response.message = "enabled" if request.data else "disabled"
        self.get_logger().info(f"actuation {response.message}")
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.control.request_reset()
        response.success, response.message = True, "the policy restarts its task at the next frame"
        return response

    # ------------------------------------------------------------------------------------ control and worker

    def _on_tick(self) -> None:
        tick = self.control.tick(self._now())
        if tick.fault:
            self.get_logger().warning(f"watchdog: {tick.fault}; {self._param('watchdog_action')}",
                                      throttle_duration_sec=self._param("log_throttle"))
        self._publish(tick.action, executed=tick.executed)

    def _process(self, frame: PolicyFrame) -> None:
        policy = self.policy
        if policy is None:
            return
        step = self.control.begin_step(self._now())
        if step is None:  # disabled
            return
        if step.fault:  # the timer reports it in timer mode
            self._publish(self.control.hold_frame(step.fault))
            return
        if step.reset:
            policy.reset(step.instruction)
            self.control.policy_was_reset(step)
        image = image_to_rgb(frame.msg, self._param("max_pixels"))
        obs = self.control.observation(image, _stamp_ns(frame.msg.header), step, image_to_rgb)
        if obs is None:  # no wrist image yet (start-up race): a watchdog hold, not a policy error
            self._publish(self.control.hold_frame("no_wrist_image"))
            return
        start = time.monotonic()
        actions = policy.act(obs)
        self.infer_ms.add((time.monotonic() - start) * 1e3)
        action = self.control.finish_step(step, actions)
        self._last_error = ""
        self._publish(action, executed=action is not None)
        self.latency.add((time.monotonic() - frame.received_mono) * 1e3)

    def _on_rejected(self, frame: PolicyFrame, exc: InputRejected) -> None:
        self._publish(self.control.hold_frame("rejected_frame"))

    def _on_error(self, exc: Exception) -> None:
        super()._on_error(exc)
        self._publish(self.control.hold_frame("policy_error"))

    def _publish(self, action: np.ndarray | None, executed: bool = False, final: bool = False) -> None:
        """Publishes one (7,) action on all three outputs (nothing for None, or when actuation was disabled
        meanwhile, unless it is the ``final`` hold of a disable): gripper first (the simulator applies it to the
        twist that follows), then the twist, then the 7-D action."""
        pubs = self._pubs
        if action is None or not pubs:
            return
        per_second = np.asarray(self._param("action_scale"), dtype=np.float64) * self._param("control_rate")
        with self.control.publishing(final) as allowed:
            if not allowed:
                return
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self._param("twist_frame"))
            pubs["gripper_cmd"].publish(gripper_command(action))
            pubs["delta_twist_cmds"].publish(action_to_twist(action, per_second, header))
            pubs["action"].publish(action_to_array(action))
        self.counters.add("published")
        if executed:
            self.rate_out.tick()

    # --------------------------------------------------------------------------------------- diagnostics

    def stats(self) -> dict[str, Any]:
        """The numbers /diagnostics reports, as a dict (also used by tests)."""
        control = self.control.report(self._now())  # enabled, watchdog, pending actions, instruction, ages
        values: dict[str, Any] = {
            "policy": self.policy_name,
            "enabled": control.pop("enabled"),
            "mode": "every_frame" if self._param("act_on_every_frame") else f"timer {self._param('control_rate'):g} Hz",
            "watchdog": control.pop("watchdog"),
            "input_rate_hz": self.rate_in.rate(),
            "action_rate_hz": self.rate_out.rate(),
            "inference_p50_ms": self.infer_ms.percentile(50),
            "inference_p95_ms": self.infer_ms.percentile(95),
            "frame_to_action_p50_ms": self.latency.percentile(50),
            **control,
        }
        values.update(self.counters.snapshot())
        return values

    def _status(self, values: dict) -> tuple[bytes, str] | None:
        if not values["enabled"]:
            return diagnostics.OK, "disabled (call ~/enable to actuate)"
        if values["watchdog"] != "ok":
            return diagnostics.WARN, f"holding: {values['watchdog']}"
        return None


def _stamp_ns(header: Header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def main(args: list[str] | None = None) -> None:
    spin_node(PolicyNode, args)


if __name__ == "__main__":
    main()
