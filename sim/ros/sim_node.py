"""sim_node: CALVIN scene D (PyBullet, :class:`~ivm_ros_sim.calvin.env.CalvinSceneEnv`) <-> ROS 2.

A plain rclpy node; the algorithm lives in :mod:`ivm_ros_sim.calvin.env`. All names are relative (remappable).

Out, every tick with one header stamp = sim time (``/clock`` first, then the rest):
``camera/image_raw`` + ``camera/camera_info`` (static camera, rgb8), ``gripper_camera/image_raw`` +
``gripper_camera/camera_info`` (while ``publish_gripper_camera``), ``/clock`` (rosgraph_msgs/Clock),
``~/robot_state`` (JointState: 7 arm joints + 2 fingers), ``~/tcp_pose`` (PoseStamped, ``world_frame``),
``~/robot_obs`` (15,) and ``~/scene_obs`` (24,) (Float64MultiArray, CALVIN layouts, the field names in the
layout's dim label). On each reset: ``instruction`` (String) and ``~/success`` (Bool), both reliable +
transient-local; ``~/success`` again when the episode's (sticky) success changes. ``/diagnostics`` periodically.

In: ``action`` (Float64MultiArray, 7-D ``dx dy dz droll dpitch dyaw gripper`` in [-1, 1], see
:mod:`ivm_ros_sim.calvin.env`), ``delta_twist_cmds`` (TwistStamped in ``world_frame``, m/s and rad/s, converted with
:func:`~ivm_ros_sim.calvin.env.twist_to_action` over one control period; faster twists are clipped and counted) and
``gripper_cmd`` (Float64, > 0 open; sets the gripper of the twist commands and of the latest command).

Command rule: each control tick applies the latest command if it arrived no more than ``action_timeout`` sim
seconds before the tick, else the arm holds still (zero motion, gripper unchanged; counted as ``holds``). Bad
commands (wrong length, NaN/inf, outside [-1, 1], a twist in another frame) are rejected, counted and logged
(throttled).

Timing: one step per 1/30 s of sim time, paced to ``real_time_factor`` x wall clock (0: as fast as possible).
With ``lockstep`` the node takes a step only once an ``action`` or ``delta_twist_cmds`` message has been
*received after the latest observation began to be published* (so a client that answers each observation
with exactly one command gets exactly one step per command, deterministically), or after ``lockstep_timeout``
wall-clock seconds (counted as ``lockstep_timeouts``; that step follows the command rule). ``gripper_cmd`` never
triggers a step: publish it before the twist. An episode that reached ``max_steps`` stops stepping (and the
clock stops) until ``~/reset``.

Services: ``~/reset`` (std_srvs/Trigger) starts an episode from the parameters ``task``, ``seed`` (+
``seed_increment`` per reset since ``seed`` was last set), ``distraction`` and ``sentence_split``; each reset
advances the clock by one control period so two episodes never share a stamp. ``~/get_success`` (Trigger)
reports the episode's success. Both answer with a JSON message.

Threads: the executor runs only light callbacks; one worker thread steps and renders. Resets run in the
service callback; an environment lock serialises them with the worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from ivm_ros_sim.calvin import distractors, tasks
from ivm_ros_sim.calvin.env import MAX_REL_ORN, MAX_REL_POS, CalvinSceneEnv, twist_to_action
from ivm_ros_sim.calvin.scene import CONTROL_HZ, ROBOT_JOINT_NAMES, ROBOT_OBS_LABELS, SCENE_OBS_LABELS
from rcl_interfaces.msg import SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray, Header, MultiArrayDimension, MultiArrayLayout, String
from std_srvs.srv import Trigger

from ivm_ros.ros import diagnostics, qos
from ivm_ros.ros.conversions import array_to_image
from ivm_ros.ros.params import declare
from ivm_ros.runtime import Counters, LatencyWindow, RateMeter, ignore_further_interrupts

RANDOM_TASK = "random"
SPLITS = ("eval", "train", "heldout")
#: env camera name -> (topic prefix, frame-id parameter)
CAMERAS = {"static": ("camera", "static_camera_frame"), "gripper": ("gripper_camera", "gripper_camera_frame")}
_NS_PER_TICK = 1_000_000_000 / CONTROL_HZ


@dataclasses.dataclass
class _Command:
    action: np.ndarray  # (7,) float64 in [-1, 1]
    tick: int  # node tick at arrival


@dataclasses.dataclass
class Episode:
    """What ``~/get_success`` reports; ``steps`` control periods since the reset."""

    task: str
    seed: int
    distraction: str
    instruction: str
    steps: int = 0
    success: bool = False
    truncated: bool = False

    def report(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"elapsed_s": round(self.steps / CONTROL_HZ, 6)}


class SimNode(diagnostics.RejectionCounting, Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "sim_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        static_size = declare(self, "static_size", 200, "static camera image size, px (CALVIN: 200)", lo=16, hi=1024,
                              read_only=True)
        gripper_size = declare(self, "gripper_size", 84, "gripper camera image size, px (CALVIN: 84)", lo=16,
                               hi=1024, read_only=True)
        declare(self, "publish_gripper_camera", True, "render and publish the gripper camera (off: ~20% faster steps)")
        declare(self, "task", RANDOM_TASK, "task of the next reset: one of the 34 CALVIN tasks or 'random'",
                choices=(RANDOM_TASK, *tasks.all_tasks()))
        declare(self, "seed", 0, "seed of the next reset (setting it restarts the seed sequence)", lo=0,
                hi=2**31 - 1)
        declare(self, "seed_increment", 1, "added to the seed at every reset since 'seed' was set (0: replay)",
                lo=0, hi=1_000_000)
        declare(self, "distraction", "none", "distractor level of the next reset", choices=tuple(distractors.LEVELS))
        declare(self, "sentence_split", "eval", "instruction of the next reset: CALVIN's eval sentence or a "
                "train / heldout paraphrase", choices=SPLITS)
        declare(self, "real_time_factor", 1.0, "sim seconds per wall second (0: as fast as possible)", lo=0.0,
                hi=100.0)
        declare(self, "lockstep", False, "step only after a command for the latest observation (or a timeout)")
        declare(self, "lockstep_timeout", 5.0, "wall seconds a lockstep step waits for a command (0: forever)",
                lo=0.0, hi=3600.0)
        declare(self, "action_timeout", 0.5, "sim seconds a command stays in force; later ticks hold still",
                lo=0.0, hi=3600.0)
        declare(self, "max_steps", 0, "steps per episode before the node waits for ~/reset (0: no limit; "
                "CALVIN: 360)", lo=0, hi=10_000_000)
        declare(self, "world_frame", "world", "frame of ~/tcp_pose and of accepted twists", read_only=True)
        for name, (prefix, param) in CAMERAS.items():
            declare(self, param, f"{name}_camera", f"frame_id of {prefix}/*", read_only=True)
        declare(self, "output_qos", "reliable", "QoS of images and states ('reliable' serves both kinds of "
                "subscriber)", choices=qos.PROFILES, read_only=True)
        declare(self, "output_qos_depth", 5, "queue depth of the outputs", lo=1, hi=100, read_only=True)
        declare(self, "command_qos", "reliable", "QoS of the command subscriptions", choices=qos.PROFILES,
                read_only=True)
        declare(self, "diagnostics_period", 1.0, "seconds between /diagnostics messages", lo=0.1, hi=60.0,
                read_only=True)
        declare(self, "log_throttle", 5.0, "seconds between repeated warnings of one kind", lo=0.0, hi=3600.0)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)

        self.env = CalvinSceneEnv(static_size, gripper_size, render_gripper=self._param("publish_gripper_camera"))
        self.counters = Counters()
        self.step_rate = RateMeter()
        self.step_ms = LatencyWindow()
        self.episode: Episode | None = None
        self._last_error = ""
        self._episode_index = 0  # resets since 'seed' was set
        self._resets = 0  # each reset advances the stamp by one tick
        self._env_lock = threading.Lock()  # env and publishing: worker steps vs reset service
        self._cond = threading.Condition()  # command state below; wakes the lockstep wait
        self._command: _Command | None = None
        self._gripper: float | None = None  # latest gripper_cmd (+1 open / -1 closed)
        self._fresh = False  # a step-triggering command arrived since the latest observation was published
        self._published_at = time.monotonic()
        self._published = 0  # observations published so far (a step is granted for one of them)
        self._success_sent: bool | None = None

        self._build_publishers()
        self._camera_infos = self._build_camera_infos()
        self._obs_layouts = {
            "robot_obs": _layout("robot_obs", ROBOT_OBS_LABELS),
            "scene_obs": _layout("scene_obs", SCENE_OBS_LABELS),
        }
        cmd_qos = qos.profile(self._param("command_qos"), 10)
        self._subs = []
        for topic, msg_type, callback in (
            ("action", Float64MultiArray, self._on_action),
            ("delta_twist_cmds", TwistStamped, self._on_twist),
            ("gripper_cmd", Float64, self._on_gripper),
        ):
            events = qos.subscription_events(self.get_logger(), topic, "command_qos", self._count_qos)
            self._subs.append(self.create_subscription(msg_type, topic, callback, cmd_qos, event_callbacks=events))
        self._own_services = [
            self.create_service(Trigger, "~/reset", self._on_reset),
            self.create_service(Trigger, "~/get_success", self._on_get_success),
        ]
        self._diag_timer = self.create_timer(self._param("diagnostics_period"), self.publish_diagnostics)

        self.reset_episode()
        self._running = True
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._loop, name="ivm_sim_worker", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------------------------------ parameters

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _on_set_parameters(self, params: list[rclpy.Parameter]) -> SetParametersResult:
        valid = {
            "task": (RANDOM_TASK, *tasks.all_tasks()),
            "distraction": tuple(distractors.LEVELS),
            "sentence_split": SPLITS,
        }
        for p in params:
            if p.name in valid and p.value not in valid[p.name]:
                reason = f"{p.name} must be one of: {', '.join(valid[p.name])}; got {p.value!r}"
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, params: list[rclpy.Parameter]) -> None:
        if any(p.name == "seed" for p in params):
            self._episode_index = 0
        with self._cond:
            self._cond.notify_all()  # lockstep switched off, for example

    # ---------------------------------------------------------------------------------------------- setup

    def _build_publishers(self) -> None:
        out = qos.profile(self._param("output_qos"), self._param("output_qos_depth"))
        self._pubs: dict[str, Any] = {}
        for prefix, _ in CAMERAS.values():
            self._pubs[f"{prefix}/image_raw"] = self.create_publisher(Image, f"{prefix}/image_raw", out)
            self._pubs[f"{prefix}/camera_info"] = self.create_publisher(CameraInfo, f"{prefix}/camera_info", out)
        self._pubs["clock"] = self.create_publisher(Clock, "/clock", qos.profile("reliable", 1))
        self._pubs["robot_state"] = self.create_publisher(JointState, "~/robot_state", out)
        self._pubs["tcp_pose"] = self.create_publisher(PoseStamped, "~/tcp_pose", out)
        self._pubs["robot_obs"] = self.create_publisher(Float64MultiArray, "~/robot_obs", out)
        self._pubs["scene_obs"] = self.create_publisher(Float64MultiArray, "~/scene_obs", out)
        self._pubs["instruction"] = self.create_publisher(String, "instruction", qos.latched())
        self._pubs["success"] = self.create_publisher(Bool, "~/success", qos.latched())
        self._pubs["diagnostics"] = self.create_publisher(diagnostics.DiagnosticArray, "/diagnostics", 10)

    def _build_camera_infos(self) -> dict[str, CameraInfo]:
        """Pinhole CameraInfo per env camera (no distortion); only the stamp changes per tick."""
        infos = {}
        for name, spec in self.env.camera_info().items():
            k = np.asarray(spec["k"], dtype=np.float64)
            msg = CameraInfo()
            msg.header.frame_id = self._param(CAMERAS[name][1])
            msg.width, msg.height = int(spec["width"]), int(spec["height"])
            msg.distortion_model = "plumb_bob"
            msg.d = [0.0] * 5
            msg.k = k.ravel().tolist()
            msg.r = np.eye(3).ravel().tolist()
            msg.p = np.hstack([k, np.zeros((3, 1))]).ravel().tolist()
            infos[name] = msg
        return infos

    # ----------------------------------------------------------------------------------------- episodes

    def reset_episode(self) -> tuple[bool, str]:
        """Resets the env from the parameters and publishes the instruction and the first observation.
        Returns (ok, JSON message)."""
        task, distraction = self._param("task"), self._param("distraction")
        seed = self._param("seed") + self._episode_index * self._param("seed_increment")
        options = {"instruction_split": self._param("sentence_split")}
        with self._env_lock:
            try:
                obs, info = self.env.reset(seed=seed, task=None if task == RANDOM_TASK else task,
                                           distraction=distraction, options=options)
            except Exception as exc:  # bad names or no valid start state: report it, keep serving
                self.episode = None
                self._last_error = f"reset failed for task={task} seed={seed} distraction={distraction}: {exc}"
                self.counters.add("reset_failures")
                self.get_logger().error(self._last_error)
                return False, json.dumps({"error": self._last_error})
            self._episode_index += 1
            self._resets += 1
            self._last_error = ""
            self.counters.add("resets")
            self.episode = Episode(info["task"], seed, distraction, info["instruction"])
            with self._cond:
                self._command, self._gripper = None, None
            self._pubs["instruction"].publish(String(data=self.episode.instruction))
            self._success_sent = None
            self._publish_tick(obs)
        self.get_logger().info(
            f"episode: task={info['task']} seed={seed} distraction={distraction} "
            f"instruction={self.episode.instruction!r}"
        )
        return True, json.dumps({k: v for k, v in dataclasses.asdict(self.episode).items()
                                 if k in ("task", "seed", "distraction", "instruction")})

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.reset_episode()
        return response

    def _on_get_success(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        episode = self.episode
        if episode is None:
            response.success, response.message = False, json.dumps({"error": self._last_error or "no episode"})
        else:
            response.success, response.message = episode.success, json.dumps(episode.report())
        return response

    def _episode_over(self, episode: Episode) -> bool:
        limit = self._param("max_steps")
        episode.truncated = bool(limit) and episode.steps >= limit
        return episode.truncated

    # ------------------------------------------------------------------------------------------ commands

    def ticks(self) -> int:
        """Control periods of sim time so far (env steps plus one per reset); stamps are ticks / 30 s."""
        return self.env.control_ticks + self._resets

    def _set_command(self, action: np.ndarray, fresh: bool) -> None:
        with self._cond:
            self._command = _Command(action, self.ticks())
            if fresh:
                self._fresh = True
                self._cond.notify_all()
        self.counters.add("commands")

    def _on_action(self, msg: Float64MultiArray) -> None:
        a = np.asarray(msg.data, dtype=np.float64)
        if a.shape != (7,):
            self._reject("length", f"action needs 7 values (dx dy dz droll dpitch dyaw gripper), got {a.size}")
        elif not np.all(np.isfinite(a)):
            self._reject("non_finite", f"action has NaN/inf: {a.tolist()}")
        elif np.any(np.abs(a) > 1.0 + 1e-9):
            self._reject("out_of_range", f"action values must lie in [-1, 1]: {a.tolist()}")
        else:
            self._set_command(a, fresh=True)

    def _on_twist(self, msg: TwistStamped) -> None:
        frame = msg.header.frame_id
        world = self._param("world_frame")
        if frame not in ("", world):
            self._reject("frame", f"twist in frame {frame!r}; only {world!r} (or empty) is accepted")
            return
        t = msg.twist
        lin = np.array([t.linear.x, t.linear.y, t.linear.z])
        ang = np.array([t.angular.x, t.angular.y, t.angular.z])
        if not (np.all(np.isfinite(lin)) and np.all(np.isfinite(ang))):
            self._reject("non_finite", f"twist has NaN/inf: {lin.tolist()} {ang.tolist()}")
            return
        dt = 1.0 / CONTROL_HZ
        if np.abs(lin).max() * dt > MAX_REL_POS * (1 + 1e-9) or np.abs(ang).max() * dt > MAX_REL_ORN * (1 + 1e-9):
            self.counters.add("clipped_twist")
        gripper = self._gripper if self._gripper is not None else self.env.scene.gripper_action
        self._set_command(twist_to_action(lin, ang, gripper, dt), fresh=True)

    def _on_gripper(self, msg: Float64) -> None:
        if not np.isfinite(msg.data):
            self._reject("non_finite", f"gripper_cmd is {msg.data}")
            return
        g = 1.0 if msg.data > 0 else -1.0
        with self._cond:
            self._gripper = g
            cmd = self._command
            if cmd is not None and self._in_force(cmd):
                action = cmd.action.copy()
                action[6] = g
                self._command = _Command(action, cmd.tick)
            else:
                action = np.zeros(7)
                action[6] = g
                self._command = _Command(action, self.ticks())
        self.counters.add("gripper_commands")

    def _in_force(self, cmd: _Command) -> bool:
        return (self.ticks() - cmd.tick) / CONTROL_HZ <= self._param("action_timeout") + 1e-9

    def _select_action(self) -> np.ndarray:
        """The command in force, or hold still (zero motion, gripper unchanged)."""
        with self._cond:
            cmd = self._command
            if cmd is not None and self._in_force(cmd):
                return cmd.action
        self.counters.add("holds")
        hold = np.zeros(7)
        hold[6] = self.env.scene.gripper_action
        return hold

    # -------------------------------------------------------------------------------------------- worker

    def _loop(self) -> None:
        due = time.monotonic()
        while self._running:
            granted = self._wait_turn()
            if granted is None:
                continue
            rtf = self._param("real_time_factor")
            if rtf > 0:
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    break
                due = max(due + 1.0 / (CONTROL_HZ * rtf), time.monotonic())
            try:
                self._step(granted)
            except Exception as exc:  # keep serving; a shut-down context ends the loop
                if not (self._running and self.context.ok()):
                    break
                self.counters.add("step_errors")
                self._last_error = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"step failed: {self._last_error}",
                                        throttle_duration_sec=self._param("log_throttle"))
                self._stop.wait(0.1)

    def _wait_turn(self) -> int | None:
        """When a step may be taken now (see 'Timing' in the module docstring): the number of the observation
        it answers; else None."""
        with self._cond:
            episode = self.episode
            if episode is None or self._episode_over(episode):
                self._cond.wait(0.1)
                return None
            while self._running and self._param("lockstep") and not self._fresh:
                timeout = self._param("lockstep_timeout")
                remaining = self._published_at + timeout - time.monotonic() if timeout > 0 else 0.1
                if remaining <= 0:
                    self.counters.add("lockstep_timeouts")
                    return self._published
                self._cond.wait(min(remaining, 0.1))
            return self._published if self._running else None

    def _step(self, granted: int) -> None:
        """One control step, unless a reset published a newer observation since the step was granted."""
        with self._env_lock:
            episode = self.episode
            if episode is None or self._episode_over(episode) or granted != self._published:
                return
            self.env.render_gripper = self._param("publish_gripper_camera")
            action = self._select_action()
            start = time.monotonic()
            obs, _, _, _, info = self.env.step(action)
            self.step_ms.add((time.monotonic() - start) * 1e3)
            episode.steps, episode.success = info["steps"], bool(info["success"])
            self._episode_over(episode)
            self._publish_tick(obs)
        self.step_rate.tick()
        self.counters.add("steps")

    # ----------------------------------------------------------------------------------------- publishing

    def _publish_tick(self, obs: dict[str, np.ndarray]) -> None:
        """Publishes one observation; called with the env lock held."""
        with self._cond:
            self._fresh = False  # from now on a command answers this observation
        sec, nanosec = divmod(round(self.ticks() * _NS_PER_TICK), 1_000_000_000)
        pubs = self._pubs
        clock = Clock()
        clock.clock.sec, clock.clock.nanosec = sec, nanosec
        pubs["clock"].publish(clock)
        stamp = clock.clock
        cameras = ("static", "gripper") if self.env.render_gripper else ("static",)
        for name in cameras:
            prefix, frame_param = CAMERAS[name]
            header = Header(stamp=stamp, frame_id=self._param(frame_param))
            pubs[f"{prefix}/image_raw"].publish(array_to_image(obs[f"rgb_{name}"], "rgb8", header))
            info = self._camera_infos[name]
            info.header.stamp = stamp
            pubs[f"{prefix}/camera_info"].publish(info)
        world = Header(stamp=stamp, frame_id=self._param("world_frame"))
        position, velocity, effort = self.env.scene.robot_joint_states()
        joints = JointState(header=Header(stamp=stamp), name=list(ROBOT_JOINT_NAMES))
        joints.position, joints.velocity, joints.effort = position.tolist(), velocity.tolist(), effort.tolist()
        pubs["robot_state"].publish(joints)
        pos, quat = self.env.scene.tcp_pose()
        pose = PoseStamped(header=world)
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in pos)
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quat)  # PyBullet quaternions are xyzw, as ROS
        pubs["tcp_pose"].publish(pose)
        for key, layout in self._obs_layouts.items():
            pubs[key].publish(Float64MultiArray(layout=layout, data=obs[key].tolist()))
        success = bool(self.episode.success) if self.episode else False
        if success != self._success_sent:
            pubs["success"].publish(Bool(data=success))
            self._success_sent = success
        with self._cond:
            self._published_at = time.monotonic()
            self._published += 1

    # --------------------------------------------------------------------------------------- diagnostics

    def stats(self) -> dict[str, Any]:
        """The numbers /diagnostics reports (also used by tests and benchmarks)."""
        episode = self.episode
        rate = self.step_rate.rate()
        values: dict[str, Any] = {
            "sim_time_s": self.ticks() / CONTROL_HZ,
            "steps_per_s": rate,
            "real_time_ratio": rate / CONTROL_HZ,
            "step_p50_ms": self.step_ms.percentile(50),
            "step_p95_ms": self.step_ms.percentile(95),
            "lockstep": self._param("lockstep"),
        }
        if episode is not None:
            values |= {f"episode_{k}": v for k, v in episode.report().items()}
        values.update(self.counters.snapshot())
        return values

    def publish_diagnostics(self) -> None:
        values = self.stats()
        rejected = sum(v for k, v in values.items() if k.startswith("rejected_"))
        if self.episode is None or self._last_error:
            level, message = diagnostics.ERROR, self._last_error or "no episode"
        elif rejected:
            level, message = diagnostics.WARN, f"{rejected} command(s) rejected"
        else:
            level, message = diagnostics.OK, "simulating"
        name = f"{self.get_fully_qualified_name()}: simulator"
        self._pubs["diagnostics"].publish(
            diagnostics.array(self.get_clock().now().to_msg(), diagnostics.status(name, level, message, values))
        )

    # ------------------------------------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Stops the worker and closes the PyBullet client. Safe to call twice."""
        if getattr(self, "_running", False):
            self._running = False
            self._stop.set()
            with self._cond:
                self._cond.notify_all()
            self._worker.join(timeout=10.0)
        env = getattr(self, "env", None)  # either may be absent when __init__ failed part way
        if env is not None:
            with getattr(self, "_env_lock", None) or contextlib.nullcontext():
                env.close()

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def _layout(name: str, labels: tuple[str, ...]) -> MultiArrayLayout:
    """One dimension labelled ``name: field,field,...`` so a reader knows each value's meaning."""
    return MultiArrayLayout(
        dim=[MultiArrayDimension(label=f"{name}: " + ",".join(labels), size=len(labels), stride=len(labels))],
        data_offset=0,
    )


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = None
    try:
        node = SimNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        ignore_further_interrupts()
        if node is not None:
            node.destroy_node()  # stops the worker and closes PyBullet before the context goes away
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()
