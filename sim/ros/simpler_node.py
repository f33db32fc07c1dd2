"""simpler_node: one SimplerEnv task (SAPIEN 2.2, :class:`~ivm_ros_sim.simpler.env.SimplerTaskEnv`) <-> ROS 2.

A plain rclpy node built like sim_node; the conversions live in :mod:`ivm_ros_sim.simpler.actions`, episodes and
sim time in :mod:`ivm_ros_sim.simpler.episodes`, publishing in :mod:`ivm_ros_sim.ros.simpler_outputs`, the
command rule, lockstep and pacing in :mod:`ivm_ros_sim.ros.commands` (shared with sim_node). Names are relative.

Out, every tick with one header stamp = sim time (``/clock`` first): ``~/proprio`` (WidowX tasks only:
Float64MultiArray, the 8-value proprio :data:`~ivm_ros.policies.embedded.robots.WIDOWX_PROPRIO`, tcp xyz m and
roll/pitch/yaw rad in the robot base frame, gripper opening m, last gripper command +-1; the layout's label names
the fields; no header, so it goes out before the images: a subscriber pairing a frame with the newest proprio
finds this tick's), ``base_camera/image_raw`` + ``base_camera/camera_info`` (while ``publish_base_camera``),
then ``camera/image_raw`` + ``camera/camera_info`` (the third-person camera: WidowX ``3rd_view_camera`` 640x480
with the real Bridge photo as background, Google robot ``overhead_camera``), rgb8, pinhole CameraInfo from
SimplerEnv's ``intrinsic_cv``. On each reset:
``instruction`` (String, the task's ``get_language_instruction()``) and ``~/success`` (Bool), both reliable +
transient-local; ``~/success`` again whenever the env's success changes. ``/diagnostics`` periodically.

In: ``action`` (Float64MultiArray, 7-D ``dx dy dz`` m, ``droll dpitch dyaw`` rad, ``gripper`` open when
``> gripper_threshold``; each value in [-1, 1]), converted to SimplerEnv's axis-angle / +1 open -1 closed action
as its policy wrappers do; ``delta_twist_cmds`` (TwistStamped in ``twist_frame``, the robot base's axes, m/s and
rad/s over one control period) and ``gripper_cmd`` (Float64, > 0 open). All conversions: the actions module.

Command rule, lockstep and pacing are sim_node's (see :mod:`ivm_ros_sim.ros.commands`), at the task's control
rate (Bridge 5 Hz, Google robot 3 Hz): a step applies the latest command if it arrived no more than
``action_timeout`` sim seconds before, else holds still (gripper unchanged); with ``lockstep`` a step waits for a
command received after the latest observation began to be published (or ``lockstep_timeout``). An episode stops
stepping at the env's time limit (Bridge 60 steps, eggplant 120) or ``max_steps`` until ``~/reset``.

Services: ``~/reset`` (std_srvs/Trigger) starts an episode from ``task``, ``seed`` (+ ``seed_increment`` per
reset since ``seed`` was set), ``episode_id`` (SimplerEnv's object placement, -1: from the seed), ``variant``
(JSON make kwargs over the task's prepackaged config, e.g. ``{"scene_name": "bridge_table_1_v2"}``; a change
makes the env again) and ``reset_options`` (JSON reset options, e.g. ``{"robot_init_options": {...}}``);
``~/get_success`` reports the episode. Both answer JSON. ``backend`` ``double`` runs the node on
:class:`~ivm_ros_sim.simpler.double.SimplerEnvDouble` (no SimplerEnv needed; for tests and wiring checks).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import Trigger

from ivm_ros import install_hints
from ivm_ros.ros import diagnostics, qos
from ivm_ros.ros.params import Param, declare_table
from ivm_ros.ros.worker_node import spin_node
from ivm_ros.runtime import Counters, LatencyWindow, RateMeter

try:
    from ivm_ros_sim.ros import commands
    from ivm_ros_sim.ros.simpler_outputs import CAMERA_TOPICS, SimplerOutputs
    from ivm_ros_sim.ros.stepping import CommandedStepping
    from ivm_ros_sim.simpler import actions
    from ivm_ros_sim.simpler.double import SimplerEnvDouble
    from ivm_ros_sim.simpler.env import EnvMaker, Frame, SimplerEnvMissing
    from ivm_ros_sim.simpler.episodes import SimplerEpisode, SimplerEpisodes
except ModuleNotFoundError as exc:  # transforms3d, or pybullet/gymnasium behind the shared command rule
    raise SystemExit(f"simpler_node cannot start: {exc}. Fix: {install_hints.fix_for(exc)}") from None

BACKENDS = ("simpler", "double")


@functools.cache
def parameters() -> tuple[Param, ...]:
    """Every parameter, in declaration order."""
    return (
        Param("backend", "simpler", "'simpler': the real SimplerEnv (installed apart, see sim/README.md); 'double': "
              "SimplerEnvDouble, a stand-in without physics", choices=BACKENDS, read_only=True),
        Param("task", "widowx_carrot_on_plate", "SimplerEnv task of the next reset (e.g. widowx_spoon_on_towel, "
              "widowx_stack_cube, widowx_put_eggplant_in_basket, google_robot_pick_coke_can)"),
        Param("seed", 0, "seed of the next reset (setting it restarts the seed sequence)", 0, 2**31 - 1),
        Param("seed_increment", 1, "added to the seed at every reset since 'seed' was set (0: replay)", 0, 1_000_000),
        Param("episode_id", -1, "SimplerEnv's object placement of the next reset (-1: drawn from the seed)",
              -1, 1_000_000),
        Param("variant", "", "JSON object of make kwargs over the task's prepackaged config (a change remakes "
              "the env), e.g. {\"scene_name\": \"bridge_table_1_v2\"}"),
        Param("reset_options", "", "JSON object of reset options, e.g. {\"robot_init_options\": {...}}"),
        Param("gripper_threshold", 0.0, "a policy gripper value above it means open (0: +1/-1 commands; 0.5: "
              "Octo's raw 1/0)", -1.0, 1.0, read_only=True),
        Param("publish_base_camera", True, "publish the base camera (base_camera/*)"),
        Param("real_time_factor", 1.0, "sim seconds per wall second (0: as fast as possible)", 0.0, 100.0),
        Param("lockstep", False, "step only after a command for the latest observation (or a timeout)"),
        Param("lockstep_timeout", 5.0, "wall seconds a lockstep step waits for a command (0: forever)", 0.0, 3600.0),
        Param("action_timeout", 0.5, "sim seconds a command stays in force; later ticks hold still", 0.0, 3600.0),
        Param("max_steps", 0, "steps per episode before the node waits for ~/reset (0: the env's own limit)",
              0, 10_000_000),
        Param("twist_frame", "base_link", "frame of accepted twists (the arm controller's frame)", read_only=True),
        *(Param(f"{role}_camera_frame", f"{prefix}_optical", f"frame_id of {prefix}/*", read_only=True)
          for role, prefix in CAMERA_TOPICS.items()),
        Param("output_qos", "reliable", "QoS of the images and ~/proprio", choices=qos.PROFILES, read_only=True),
        Param("output_qos_depth", 5, "queue depth of the outputs", 1, 100, read_only=True),
        Param("command_qos", "reliable", "QoS of the command subscriptions", choices=qos.PROFILES, read_only=True),
        Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", 0.1, 60.0, read_only=True),
        Param("log_throttle", 5.0, "seconds between repeated warnings of one kind", 0.0, 3600.0),
    )


class SimplerNode(CommandedStepping, diagnostics.RejectionCounting, Node):
    """See the module docstring. ``make``: an env factory overriding ``backend`` (tests)."""

    def __init__(self, node_name: str = "simpler_node", make: EnvMaker | None = None, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_table(self, parameters())
        self.add_post_set_parameters_callback(self._after_set_parameters)
        if make is None and self._param("backend") == "double":
            make = SimplerEnvDouble.make
        self.episodes = SimplerEpisodes(make, self._param("gripper_threshold"))
        self.counters, self.step_rate, self.step_ms = Counters(), RateMeter(), LatencyWindow()
        self._last_error = ""
        self._env_lock = threading.Lock()  # env and publishing: worker steps vs reset service
        self.commands = commands.CommandSlot(5.0)  # control rate set per reset from the task
        frames = {role: self._param(f"{role}_camera_frame") for role in CAMERA_TOPICS}
        self.outputs = SimplerOutputs(self, qos.profile(self._param("output_qos"), self._param("output_qos_depth")),
                                      frames)
        self._pubs = self.outputs.pubs
        cmd_qos = qos.profile(self._param("command_qos"), 10)
        self._subs = []
        for topic, msg_type, callback in (("action", Float64MultiArray, self._on_action),
                                          ("delta_twist_cmds", TwistStamped, self._on_twist),
                                          ("gripper_cmd", Float64, self._on_gripper)):
            events = qos.subscription_events(self.get_logger(), topic, "command_qos", self._count_qos)
            self._subs.append(self.create_subscription(msg_type, topic, callback, cmd_qos, event_callbacks=events))
        self._own_services = [self.create_service(Trigger, "~/reset", self._on_reset),
                              self.create_service(Trigger, "~/get_success", self._on_get_success)]
        self._diag_timer = self.create_timer(self._param("diagnostics_period"), self.publish_diagnostics)

        try:
            self.reset_episode()
        except SimplerEnvMissing as exc:
            raise SystemExit(f"simpler_node cannot start: {exc}") from None
        self._running = True
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._loop, name="ivm_simpler_worker", daemon=True)
        self._worker.start()

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _after_set_parameters(self, params: list[rclpy.Parameter]) -> None:
        if any(p.name == "seed" for p in params):
            self.episodes.seeds.restart()
        self.commands.wake()

    # ----------------------------------------------------------------------------------------- episodes
    @property
    def episode(self) -> SimplerEpisode | None:
        return self.episodes.current

    @property
    def env(self) -> Any:
        return self.episodes.env

    def reset_episode(self) -> tuple[bool, str]:
        """Resets from the parameters, publishes the instruction and the first observation; (ok, JSON)."""
        with self._env_lock:
            frame, self._last_error = self.episodes.start(
                self._param("task"), self._param("seed"), self._param("seed_increment"), self._param("episode_id"),
                self._param("variant"), self._param("reset_options"))
            if frame is None:
                self.counters.add("reset_failures")
                self.get_logger().error(self._last_error)
                return False, json.dumps({"error": self._last_error})
            self.counters.add("resets")
            self.commands.control_hz = self.env.control_hz
            self.commands.clear()
            self.outputs.new_episode(self.episode.instruction, self.env.camera_info())
            self._publish_tick(frame)
        e = self.episode
        self.get_logger().info(f"episode: task={e.task} seed={e.seed} episode_id={e.episode_id} "
                               f"instruction={e.instruction!r}")
        return True, json.dumps(e.started())

    def _on_get_success(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        e = self.episode
        response.success = bool(e and e.success)
        response.message = json.dumps(e.report() if e else {"error": self._last_error or "no episode"})
        return response

    def _episode_running(self) -> SimplerEpisode | None:
        e = self.episode
        return None if e is None or e.truncated else e

    # ------------------------------------------------------------------------------------------ commands
    def ticks(self) -> int:
        """Control periods of sim time so far (steps plus one per reset)."""
        return self.episodes.ticks

    def control_hz(self) -> float:
        return self.commands.control_hz

    def _on_action(self, msg: Float64MultiArray) -> None:
        a = np.asarray(msg.data, dtype=np.float64)
        problem = commands.action_problem(a)
        if problem:
            self._reject(*problem)
            return
        self.commands.put(a, self.episodes.ticks)
        self.counters.add("commands")

    def _on_twist(self, msg: TwistStamped) -> None:
        t = msg.twist
        lin = np.array([t.linear.x, t.linear.y, t.linear.z])
        ang = np.array([t.angular.x, t.angular.y, t.angular.z])
        problem = commands.twist_problem(msg.header.frame_id, self._param("twist_frame"), lin, ang)
        if problem:
            self._reject(*problem)
            return
        gripper = self.commands.gripper
        if gripper is None:
            gripper = self.env.gripper_action if self.env is not None else 1.0
        action = actions.twist_to_policy(lin, ang, gripper, 1.0 / self.commands.control_hz)
        self.commands.put(action, self.episodes.ticks)
        self.counters.add("commands")

    # -------------------------------------------------------------------------------------------- worker
    def _step(self, granted: int) -> None:
        """One control step, unless a reset published a newer observation since the step was granted."""
        with self._env_lock:
            episode = self._episode_running()
            if episode is None or granted != self.commands.published:
                return
            action = self.commands.select(self.episodes.ticks, self._param("action_timeout"))
            if action is None:
                self.counters.add("holds")
                action = commands.hold_action(self.env.gripper_action)
            start = time.monotonic()
            frame = self.env.step(action)
            self.step_ms.add((time.monotonic() - start) * 1e3)
            self.episodes.tick()
            episode.record(frame, self._param("max_steps"))
            self._publish_tick(frame)
        self.step_rate.tick()
        self.counters.add("steps")

    def _publish_tick(self, frame: Frame) -> None:
        """Publishes one observation; called with the env lock held."""
        self.commands.observation_begins()
        self.outputs.publish_tick(self.episodes.stamp(), frame, self._param("publish_base_camera"))
        self.commands.observation_published()

    # --------------------------------------------------------------------------------------- diagnostics
    def stats(self) -> dict[str, Any]:
        """The numbers /diagnostics reports (also used by tests)."""
        rate = self.step_rate.rate()
        values: dict[str, Any] = {"sim_time_s": self.episodes.ns / 1e9, "steps_per_s": rate,
                                  "step_p50_ms": self.step_ms.percentile(50),
                                  "step_p95_ms": self.step_ms.percentile(95), "lockstep": self._param("lockstep")}
        if self.episode is not None:
            values |= {f"episode_{k}": v for k, v in self.episode.report().items() if k != "variant"}
        values.update(self.counters.snapshot())
        return values

    def publish_diagnostics(self) -> None:
        """One status on /diagnostics: the last error or no episode (ERROR), rejected commands (WARN), else OK."""
        values = self.stats()
        condition = (diagnostics.ERROR, "no episode") if self.episode is None else None
        level, message = diagnostics.summarize(values, self._last_error, condition, "simulating", "command(s)")
        diagnostics.publish(self, self._pubs["diagnostics"], "simulator", level, message, values)

    # ------------------------------------------------------------------------------------------ shutdown
    def close(self) -> None:
        """Stops the worker and closes the env. Safe to call twice."""
        self._stop_worker()
        episodes = getattr(self, "episodes", None)
        if episodes is not None:
            with self._env_lock:  # set before episodes in __init__
                episodes.close()


def main(args: list[str] | None = None) -> None:
    spin_node(SimplerNode, args)


if __name__ == "__main__":
    main()
