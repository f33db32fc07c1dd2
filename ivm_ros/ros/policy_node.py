"""policy_node: (masked) camera frames + instruction -> end-effector actions (a lifecycle node).

Topics (relative, remappable): in ``image`` (sensor_msgs/Image; the launch file remaps it to
``masking_node/masked_image``, or to the raw camera for an unmasked baseline), ``instruction`` (std_msgs/String,
reliable + transient-local), with ``use_wrist_image`` ``wrist_image`` (Image) and with ``use_proprio``
``proprio`` (Float64MultiArray, the robot state vector the policy expects; the launch file remaps it to the
simulator's ``sim_node/robot_obs``); each frame is paired with the newest wrist image and proprio. Out, per
action: ``~/gripper_cmd``
(Float64, > 0 open), ``~/delta_twist_cmds`` (TwistStamped in ``twist_frame``: the deltas times ``action_scale``
(m, rad per action unit) divided by the control period 1/``control_rate``, what moveit_servo accepts) and
``~/action`` (Float64MultiArray ``dx dy dz droll dpitch dyaw gripper`` in the policy's units, clipped to
+-``action_limit``: the simulator's ``action`` input); ``/diagnostics``. Services: ``~/enable``
(std_srvs/SetBool) gates actuation, off at start unless ``start_enabled``; ``~/reset`` (std_srvs/Trigger)
restarts the policy's task (history, pending actions) before the next frame.

Timing. Callbacks only validate and hand the newest frame to a one-slot mailbox; one worker thread runs the
policy (never while disabled), so a slow policy drops frames (counted) and never blocks the control timer.
Timer mode (default): a timer on the node's clock (sim time with ``use_sim_time``) fires at ``control_rate``
and publishes the next action of the newest plan (each action once: they are deltas); a tick with no action
left publishes a hold (counted ``starved_ticks``). ``act_on_every_frame``: no timer; each processed frame gets
exactly one published message right after inference (the first action of the policy's output), for lockstep
simulation.

Watchdog (checked every tick; in every-frame mode per frame for the instruction): no instruction yet, no
instruction for ``instruction_timeout`` s (0: never stale), no frame yet, or no valid frame for
``observation_timeout`` s (0: off) -> pending actions are dropped, the policy is reset before its next frame,
the tick counts as ``watchdog_<reason>``, and ``watchdog_action`` decides: ``hold`` publishes zero motion with
the last gripper command, ``silent`` publishes nothing. The policy is also reset when the instruction text
changes, on enable, on ``~/reset`` and after a gap of more than ``observation_timeout`` between frames.
Bad frames and instructions are rejected, counted and logged (throttled); a policy exception drops that frame
(counted) and the node keeps serving.

Imports only rclpy, NumPy and the policy's own packages (JAX for Octo): no torch, OpenCV or transformers.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image
from std_msgs.msg import Float64, Float64MultiArray, MultiArrayDimension, MultiArrayLayout, String
from std_srvs.srv import SetBool, Trigger

from ivm_ros.policies.base import ACTION_LABELS, Observation, Policy, check_actions
from ivm_ros.policies.registry import PolicyLoadError, config_fields, load_policy
from ivm_ros.ros import diagnostics, qos
from ivm_ros.ros.params import declare, declare_settings
from ivm_ros.ros.raw_image import ImageRejected, check_image, image_to_rgb
from ivm_ros.ros.worker_node import WorkerLifecycleNode, spin_node
from ivm_ros.runtime import Counters, LatencyWindow, LatestMailbox, RateMeter

DEFAULT_POLICY = "embedded"
WATCHDOG_ACTIONS = ("hold", "silent")
#: The simulator's convention (sim/env.py MAX_REL_POS, MAX_REL_ORN): action 1.0 = 0.02 m or 0.05 rad per step.
DEFAULT_ACTION_SCALE = (0.02, 0.02, 0.02, 0.05, 0.05, 0.05)
ACTION_LAYOUT = MultiArrayLayout(
    dim=[MultiArrayDimension(label="action: " + ",".join(ACTION_LABELS), size=len(ACTION_LABELS),
                             stride=len(ACTION_LABELS))],
    data_offset=0,
)


@dataclasses.dataclass
class _Frame:
    msg: Image
    wrist: Image | None
    proprio: np.ndarray | None
    received: float  # node clock, seconds
    received_mono: float  # time.monotonic()


class PolicyNode(WorkerLifecycleNode):
    """See the module docstring."""

    DIAGNOSTIC_TASK = "policy"
    OK_MESSAGE = "acting"

    def __init__(self, node_name: str = "policy_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.policy_name = declare(
            self, "policy", DEFAULT_POLICY, "policy: a registered name (embedded, octo) or 'module:Class'"
        )
        self._declare_policy_config(self.policy_name)
        declare(self, "control_rate", 30.0, "Hz: timer actions per second; the twist divides deltas by 1/rate "
                "(the simulator: 30)", lo=0.1, hi=1000.0, read_only=True)
        declare(self, "act_on_every_frame", False, "publish one action per processed frame right after inference "
                "instead of on the timer (lockstep simulation)", read_only=True)
        declare(self, "start_enabled", False, "actuate from the start (simulation); otherwise wait for ~/enable",
                read_only=True)
        declare(self, "observation_timeout", 0.5, "s (node clock) without a valid frame before the watchdog "
                "holds; 0 = off", lo=0.0, hi=3600.0)
        declare(self, "instruction_timeout", 0.0, "s since the latest instruction message before it is stale; "
                "0 = never", lo=0.0, hi=1e6)
        declare(self, "watchdog_action", "hold", "on missing/stale input: 'hold' publishes zero motion with the "
                "last gripper command, 'silent' publishes nothing", choices=WATCHDOG_ACTIONS)
        declare(self, "action_scale", list(DEFAULT_ACTION_SCALE), "m (x y z) and rad (roll pitch yaw) per policy "
                "action unit, for ~/delta_twist_cmds")
        declare(self, "action_limit", 1.0, "~/action values are clipped to +-limit (counted); 0 = no clipping",
                lo=0.0, hi=1e6)
        declare(self, "twist_frame", "world", "frame_id of ~/delta_twist_cmds")
        declare(self, "initial_gripper", 1.0, "gripper command of holds before the first action (> 0 open)",
                lo=-1.0, hi=1.0)
        declare(self, "use_wrist_image", False, "subscribe to wrist_image and give the policy the newest one",
                read_only=True)
        declare(self, "use_proprio", False, "subscribe to proprio (Float64MultiArray) and give the policy the newest "
                "one", read_only=True)
        declare(self, "image_qos", "sensor_data", "input images' QoS", choices=qos.PROFILES, read_only=True)
        declare(self, "image_qos_depth", 1, "input queue depth", lo=1, hi=100, read_only=True)
        declare(self, "output_qos", "reliable", "command outputs' QoS", choices=qos.PROFILES, read_only=True)
        declare(self, "max_pixels", 3840 * 2160, "frames with more pixels are rejected", lo=1, hi=1 << 30)
        declare(self, "max_instruction_chars", 1000, "longer instructions are rejected", lo=1, hi=100000)
        declare(self, "diagnostics_period", 1.0, "seconds between /diagnostics messages", lo=0.1, hi=60.0,
                read_only=True)
        declare(self, "log_throttle", 5.0, "seconds between repeated warnings of one kind", lo=0.0, hi=3600.0)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self.counters = Counters()
        self.rate_in, self.rate_out = RateMeter(), RateMeter()
        self.infer_ms, self.latency = LatencyWindow(), LatencyWindow()
        self.mailbox: LatestMailbox[_Frame] = LatestMailbox()
        self.policy: Policy | None = None
        self._lock = threading.Lock()  # the state below, shared by callbacks, timer and worker
        self._enabled = bool(self._param("start_enabled"))
        self._instruction: tuple[str, float] | None = None  # (text, node clock s)
        self._last_frame: float | None = None  # node clock s of the newest valid frame
        self._wrist: Image | None = None
        self._proprio: np.ndarray | None = None
        self._pending: collections.deque[np.ndarray] = collections.deque()  # the newest plan's unexecuted actions
        self._gripper = float(self._param("initial_gripper"))
        self._generation = 0  # bumped by events that void plans and restart the policy's task
        self._policy_generation = -1  # the generation the policy was last reset for (worker)
        self._fault = ""  # current watchdog reason, "" when fine
        self._worker: threading.Thread | None = None
        self._running = False
        self._subs: list[Any] = []
        self._pubs: dict[str, Any] = {}
        self._own_services: list[Any] = []
        self._own_timers: list[Any] = []
        self._last_error = ""
        self._start_when_asked()

    # ------------------------------------------------------------------------------------------ parameters

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _declare_policy_config(self, policy: str) -> None:
        try:
            fields = config_fields(policy)
        except PolicyLoadError as exc:
            self.get_logger().error(str(exc))
            return
        declare_settings(self, "policy_config", fields, f"policy {policy!r}")

    def _on_set_parameters(self, params: list[rclpy.Parameter]) -> SetParametersResult:
        for p in params:
            if (p.name == "policy" or p.name.startswith("policy_config.")) and self.policy is not None:
                return SetParametersResult(successful=False, reason=f"{p.name} applies at configure: deactivate "
                                           "and clean up first")
            if p.name == "watchdog_action" and p.value not in WATCHDOG_ACTIONS:
                return SetParametersResult(successful=False, reason=f"watchdog_action must be one of "
                                           f"{WATCHDOG_ACTIONS}")
            if p.name == "action_scale":
                scale = np.asarray(p.value, dtype=np.float64)
                if scale.shape != (6,) or not np.all(np.isfinite(scale)):
                    return SetParametersResult(successful=False, reason="action_scale needs 6 finite values "
                                               "(x y z in m, roll pitch yaw in rad, per action unit)")
        for p in params:
            if p.name == "policy":
                self.policy_name = p.value
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._declare_policy_config(self.policy_name)
        try:
            known = set(config_fields(self.policy_name))
            settings = {
                key: p.value if isinstance(p.value, (bool, int, float, str)) else list(p.value)
                for key, p in self.get_parameters_by_prefix("policy_config").items()
                if key in known
            }
            policy = load_policy(self.policy_name, settings)
        except Exception as exc:  # a bad policy must fail the transition, not kill the node
            self._last_error = f"cannot load policy {self.policy_name!r}: {exc}"
            self.get_logger().error(self._last_error)
            return TransitionCallbackReturn.FAILURE
        self.policy = policy
        self._last_error = ""
        out = qos.profile(self._param("output_qos"), 10)
        for name, msg_type in (("gripper_cmd", Float64), ("delta_twist_cmds", TwistStamped),
                               ("action", Float64MultiArray)):
            topic = f"~/{name}"
            self._pubs[name] = self.create_publisher(
                msg_type, topic, out,
                event_callbacks=qos.publisher_events(self.get_logger(), topic, "output_qos", self._count_qos),
            )
        self._pubs["diagnostics"] = self.create_publisher(diagnostics.DiagnosticArray, "/diagnostics", 10)
        self._own_services = [
            self.create_service(SetBool, "~/enable", self._on_enable),
            self.create_service(Trigger, "~/reset", self._on_reset),
        ]
        self._own_timers.append(self.create_timer(self._param("diagnostics_period"), self.publish_diagnostics))
        self.get_logger().info(f"configured: policy={self.policy_name} {policy.describe()}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        in_qos = qos.profile(self._param("image_qos"), self._param("image_qos_depth"))
        topics = [("image", Image, self._on_image, in_qos, "image_qos"),
                  ("instruction", String, self._on_instruction, qos.latched(), "instruction QoS")]
        if self._param("use_wrist_image"):
            topics.append(("wrist_image", Image, self._on_wrist, in_qos, "image_qos"))
        if self._param("use_proprio"):
            topics.append(("proprio", Float64MultiArray, self._on_proprio, in_qos, "image_qos"))
        self._subs = [
            self.create_subscription(msg_type, topic, callback, profile, event_callbacks=qos.subscription_events(
                self.get_logger(), topic, param, self._count_qos))
            for topic, msg_type, callback, profile, param in topics
        ]
        with self._lock:
            self._generation += 1
            self._pending.clear()
        self._start_worker("ivm_policy_worker")
        if not self._param("act_on_every_frame"):
            self._control_timer = self.create_timer(1.0 / self._param("control_rate"), self._on_tick)
        mode = "every frame" if self._param("act_on_every_frame") else f"{self._param('control_rate'):g} Hz"
        self.get_logger().info(
            f"active ({mode}, {'enabled' if self._enabled else 'disabled: call ~/enable'}): "
            f"{self.resolve_topic_name('image')} -> {self.resolve_topic_name('~/action')}"
        )
        return super().on_activate(state)

    def _unsubscribe(self) -> None:
        """Stops the control timer and the worker and drops the subscriptions (what activate set up)."""
        timer = getattr(self, "_control_timer", None)
        if timer is not None:
            self.destroy_timer(timer)
            self._control_timer = None
        self._stop_worker()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        with self._lock:
            self._pending.clear()

    def _release(self) -> None:
        for timer in self._own_timers:
            self.destroy_timer(timer)
        for service in self._own_services:
            self.destroy_service(service)
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._own_timers, self._own_services, self._pubs = [], [], {}
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
        every_frame = self._param("act_on_every_frame")
        try:
            check_image(msg, self._param("max_pixels"))
        except ImageRejected as exc:
            self._reject(exc.reason, str(exc))
            if every_frame and self._enabled:
                self._hold("rejected_frame")
            return
        with self._lock:
            timeout = self._param("observation_timeout")
            if self._last_frame is not None and timeout > 0 and now - self._last_frame > timeout:
                self._generation += 1  # a hole in the history: start the task afresh
            self._last_frame = now
            enabled = self._enabled
        if not enabled:
            self.counters.add("frames_disabled")
            return
        if self.mailbox.put(_Frame(msg, self._wrist, self._proprio, now, time.monotonic())) is not None:
            self.counters.add("dropped_busy")

    def _on_wrist(self, msg: Image) -> None:
        try:
            check_image(msg, self._param("max_pixels"))
        except ImageRejected as exc:
            self._reject(f"wrist_{exc.reason}", str(exc))
            return
        self._wrist = msg

    def _on_proprio(self, msg: Float64MultiArray) -> None:
        state = np.asarray(msg.data, dtype=np.float32)
        if state.size == 0 or state.size > 10000:
            self._reject("proprio_size", f"proprio needs 1..10000 values, got {state.size}")
        elif not np.all(np.isfinite(state)):
            self._reject("proprio_non_finite", f"proprio has NaN/inf: {state.tolist()}")
        else:
            self._proprio = state

    def _on_instruction(self, msg: String) -> None:
        text = msg.data.strip()
        limit = self._param("max_instruction_chars")
        if not text:
            self._reject("instruction_empty", "empty or whitespace-only instruction ignored; keeping the previous one")
            return
        if len(text) > limit:
            self._reject("instruction_too_long", f"instruction of {len(text)} chars > max_instruction_chars="
                         f"{limit} ignored; keeping the previous one")
            return
        with self._lock:
            changed = self._instruction is None or self._instruction[0] != text
            self._instruction = (text, self._now())
            if changed:
                self._generation += 1
                self._pending.clear()
        self.counters.add("instructions")
        if changed:
            self.get_logger().info(f"instruction: {text!r}")

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self._lock:
            if request.data and not self._enabled:
                self._generation += 1
            self._enabled = bool(request.data)
            self._pending.clear()
        response.success = True
        response.message = "enabled" if request.data else "disabled"
        self.get_logger().info(f"actuation {response.message}")
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self._generation += 1
            self._pending.clear()
        response.success, response.message = True, "the policy restarts its task at the next frame"
        return response

    # ------------------------------------------------------------------------------------------- control

    def _instruction_fault(self, now: float) -> str:
        """"no_instruction", "instruction_stale" or "" (call with the lock held)."""
        if self._instruction is None:
            return "no_instruction"
        timeout = self._param("instruction_timeout")
        if timeout > 0 and now - self._instruction[1] > timeout:
            return "instruction_stale"
        return ""

    def _watchdog(self, now: float) -> str:
        """The reason actuation must hold now, or "" (call with the lock held)."""
        fault = self._instruction_fault(now)
        if fault:
            return fault
        if self._last_frame is None:
            return "no_observation"
        timeout = self._param("observation_timeout")
        if timeout > 0 and now - self._last_frame > timeout:
            return "observation_stale"
        return ""

    def _on_tick(self) -> None:
        now = self._now()
        with self._lock:
            if not self._enabled:
                self.counters.add("ticks_disabled")
                return
            fault = self._watchdog(now)
            if fault and not self._fault:
                self._generation += 1  # what comes after the fault starts afresh
            self._fault = fault
            if fault:
                self._pending.clear()
                action = None
            elif self._pending:
                action = self._pending.popleft()
            else:
                action = None
        if fault:
            self.get_logger().warning(f"watchdog: {fault}; {self._param('watchdog_action')}",
                                      throttle_duration_sec=self._param("log_throttle"))
            self._hold(fault)
        elif action is not None:
            self._publish_action(action)
        else:
            self.counters.add("starved_ticks")
            self._publish(self._hold_action())

    def _hold_action(self) -> np.ndarray:
        action = np.zeros(7)
        action[6] = self._gripper
        return action

    def _hold(self, reason: str) -> None:
        """Counts a watchdog event; publishes zero motion with the last gripper command unless 'silent'."""
        self.counters.add(f"watchdog_{reason}")
        if self._param("watchdog_action") == "hold":
            self._publish(self._hold_action())

    def _publish_action(self, action: np.ndarray) -> None:
        a = action.astype(np.float64)
        limit = self._param("action_limit")
        if limit > 0 and np.any(np.abs(a) > limit):
            self.counters.add("clipped_actions")
            a = np.clip(a, -limit, limit)
        self._gripper = float(a[6])
        self._publish(a)
        self.counters.add("actions_out")
        self.rate_out.tick()

    def _publish(self, a: np.ndarray) -> None:
        """Publishes one (7,) action on all three outputs: gripper first (the simulator applies it to the
        twist that follows), then the twist, then the 7-D action."""
        pubs = self._pubs
        if not pubs:
            return
        scale = np.asarray(self._param("action_scale"), dtype=np.float64)
        per_second = scale * self._param("control_rate")
        twist = TwistStamped()
        twist.header.stamp = self.get_clock().now().to_msg()
        twist.header.frame_id = self._param("twist_frame")
        lin, ang = a[:3] * per_second[:3], a[3:6] * per_second[3:]
        twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z = (float(v) for v in lin)
        twist.twist.angular.x, twist.twist.angular.y, twist.twist.angular.z = (float(v) for v in ang)
        pubs["gripper_cmd"].publish(Float64(data=float(a[6])))
        pubs["delta_twist_cmds"].publish(twist)
        pubs["action"].publish(Float64MultiArray(layout=ACTION_LAYOUT, data=[float(v) for v in a]))
        self.counters.add("published")

    # -------------------------------------------------------------------------------------------- worker

    def _work(self) -> None:
        while self._running:
            frame = self.mailbox.get(timeout=0.2)
            if frame is None:
                continue
            try:
                self._process(frame)
            except ImageRejected as exc:
                self._reject(exc.reason, str(exc))
                self._hold_frame("rejected_frame")
            except Exception as exc:  # a failing policy must not kill the worker
                self.counters.add("policy_errors")
                self._last_error = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"frame dropped: {self._last_error}",
                                        throttle_duration_sec=self._param("log_throttle"))
                self._hold_frame("policy_error")

    def _hold_frame(self, reason: str) -> None:
        """Every-frame mode: a frame that gets no action gets a hold (or nothing, if 'silent')."""
        if self._param("act_on_every_frame") and self._enabled:
            self._hold(reason)

    def _process(self, frame: _Frame) -> None:
        policy = self.policy
        if policy is None:
            return
        with self._lock:
            instruction, generation, enabled = self._instruction, self._generation, self._enabled
            fault = self._instruction_fault(self._now())
        if not enabled:
            return
        if fault:  # the timer reports it in timer mode
            self._hold_frame(fault)
            return
        if generation != self._policy_generation:
            policy.reset(instruction[0])
            self._policy_generation = generation
            self.counters.add("policy_resets")
        stamp = frame.msg.header.stamp
        wrist = None
        if frame.wrist is not None:
            wrist = image_to_rgb(frame.wrist)
            if frame.wrist.header.stamp != stamp:  # a different capture time: informative, still used
                self.counters.add("wrist_stamp_mismatch")
        obs = Observation(image_to_rgb(frame.msg, self._param("max_pixels")), wrist, frame.proprio,
                          stamp=stamp.sec + stamp.nanosec * 1e-9)
        start = time.monotonic()
        actions = check_actions(policy.act(obs))
        self.infer_ms.add((time.monotonic() - start) * 1e3)
        self._last_error = ""
        if self._param("act_on_every_frame"):
            self._publish_action(actions[0])
        else:
            with self._lock:
                if generation != self._generation or not self._enabled:
                    self.counters.add("plans_voided")  # instruction changed, reset, or disabled meanwhile
                    return
                self._pending = collections.deque(actions)
        self.latency.add((time.monotonic() - frame.received_mono) * 1e3)

    # --------------------------------------------------------------------------------------- diagnostics

    def stats(self) -> dict[str, Any]:
        """The numbers /diagnostics reports, as a dict (also used by tests)."""
        now = self._now()
        with self._lock:
            instruction, last_frame, enabled, fault = self._instruction, self._last_frame, self._enabled, self._fault
            pending = len(self._pending)
        values: dict[str, Any] = {
            "policy": self.policy_name,
            "enabled": enabled,
            "mode": "every_frame" if self._param("act_on_every_frame") else f"timer {self._param('control_rate'):g} Hz",
            "watchdog": fault or "ok",
            "input_rate_hz": self.rate_in.rate(),
            "action_rate_hz": self.rate_out.rate(),
            "inference_p50_ms": self.infer_ms.percentile(50),
            "inference_p95_ms": self.infer_ms.percentile(95),
            "frame_to_action_p50_ms": self.latency.percentile(50),
            "pending_actions": pending,
            "instruction": instruction[0] if instruction else "",
            "instruction_age_s": now - instruction[1] if instruction else float("nan"),
            "observation_age_s": now - last_frame if last_frame is not None else float("nan"),
        }
        values.update(self.counters.snapshot())
        return values

    def _status(self, values: dict) -> tuple[bytes, str] | None:
        if not values["enabled"]:
            return diagnostics.OK, "disabled (call ~/enable to actuate)"
        if values["watchdog"] != "ok":
            return diagnostics.WARN, f"holding: {values['watchdog']}"
        return None


def main(args: list[str] | None = None) -> None:
    spin_node(PolicyNode, args)


if __name__ == "__main__":
    main()
