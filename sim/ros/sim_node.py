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

CALVIN's protocol over ROS (``ivm-ros calvin-eval --transport ros``): with ``chain`` >= 0, ``~/reset`` puts the
world in that official chain's start state with no task, held (no steps). ``~/begin_subtask`` makes ``subtask``
the task from the current state (the oracle scores from here), clears pending commands and publishes its
evaluation sentence, still held (its answer's ``frame_stamp_ns`` is the stamp of the latest observation published,
so a client can wait until every frame before the subtask has been answered); ``~/resume`` publishes the current
observation (new stamp) and lets commands step again. A chain subtask stops stepping at its first success (or
``max_steps``) until the next begin. Both can be sent again when an answer is lost: a begin for the subtask already
begun and held, and a resume of a chain episode already resumed, change nothing (the resume answers
``{"resumed": "again"}`` and publishes no frame).

Threads: the executor runs only light callbacks; one worker thread steps and renders. Resets run in the
service callback; an environment lock serialises them with the worker.

The node is wiring: the command rule, lockstep turns and pacing live in :mod:`ivm_ros_sim.ros.commands`, episodes,
seeds and stamps in :mod:`ivm_ros_sim.ros.episodes`, publishers and message building in :mod:`ivm_ros_sim.ros.outputs`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from std_msgs.msg import Float64, Float64MultiArray
from std_srvs.srv import Trigger

from ivm_ros import install_hints
from ivm_ros.ros import diagnostics, qos
from ivm_ros.ros.params import Param, declare_table
from ivm_ros.ros.worker_node import spin_node
from ivm_ros.runtime import Counters, LatencyWindow, RateMeter

try:
    from ivm_ros_sim.calvin import distractors, tasks
    from ivm_ros_sim.calvin.env import CalvinSceneEnv
    from ivm_ros_sim.calvin.scene import CONTROL_HZ, SCENES
    from ivm_ros_sim.ros import commands
    from ivm_ros_sim.ros.episodes import POLICY_TASKS, RANDOM_TASK, Episode, Episodes, pool_tasks, stamp_ns
    from ivm_ros_sim.ros.outputs import CAMERA_TOPICS, SimOutputs
    from ivm_ros_sim.ros.stepping import CommandedStepping
except ModuleNotFoundError as exc:  # the simulator's packages (pybullet, gymnasium, ...) are not installed
    raise SystemExit(f"sim_node cannot start: {exc}. Fix: {install_hints.fix_for(exc)}") from None

SPLITS = ("eval", "train", "heldout")


@functools.cache
def parameters() -> tuple[Param, ...]:
    """Every parameter, in declaration order (a function: the task names are read from the CALVIN assets, which
    importing this module does not need)."""
    return (
        Param("scene", "D", "CALVIN scene (D: the evaluation scene; A, B, C: the ABC->D split's training scenes)",
              choices=SCENES, read_only=True),
        Param("static_size", 200, "static camera image size, px (CALVIN: 200)", 16, 1024, read_only=True),
        Param("gripper_size", 84, "gripper camera image size, px (CALVIN: 84)", 16, 1024, read_only=True),
        Param("publish_gripper_camera", True, "render and publish the gripper camera (off: ~20% faster steps)"),
        Param("task", RANDOM_TASK, "task of the next reset: one of the 34 CALVIN tasks or 'random' (from task_pool)",
              choices=(RANDOM_TASK, *tasks.all_tasks())),
        Param("task_pool", list(POLICY_TASKS), "tasks 'random' draws from, by the reset's seed (default: the 6 the "
              "shipped policy was trained on; ['all']: the 34)"),
        Param("chain", -1, "official CALVIN chain (0-999) the next ~/reset starts from, held, without a task "
              "(see ~/begin_subtask); -1: a task episode from 'task'", -1, 999),
        Param("subtask", "open_drawer", "task ~/begin_subtask begins in the current chain",
              choices=tuple(tasks.all_tasks())),
        Param("seed", 0, "seed of the next reset (setting it restarts the seed sequence)", 0, 2**31 - 1),
        Param("seed_increment", 1, "added to the seed at every reset since 'seed' was set (0: replay)", 0, 1_000_000),
        Param("distraction", "none", "distractor level of the next reset", choices=tuple(distractors.LEVELS)),
        Param("sentence_split", "eval", "instruction of the next reset: CALVIN's eval sentence or a train / heldout "
              "paraphrase", choices=SPLITS),
        Param("real_time_factor", 1.0, "sim seconds per wall second (0: as fast as possible)", 0.0, 100.0),
        Param("lockstep", False, "step only after a command for the latest observation (or a timeout)"),
        Param("lockstep_timeout", 5.0, "wall seconds a lockstep step waits for a command (0: forever)", 0.0, 3600.0),
        Param("action_timeout", 0.5, "sim seconds a command stays in force; later ticks hold still", 0.0, 3600.0),
        Param("max_steps", 0, "steps per episode before the node waits for ~/reset (0: no limit; CALVIN: 360)",
              0, 10_000_000),
        Param("world_frame", "world", "frame of ~/tcp_pose and of accepted twists", read_only=True),
        *(Param(f"{name}_camera_frame", f"{name}_camera", f"frame_id of {prefix}/*", read_only=True)
          for name, prefix in CAMERA_TOPICS.items()),
        Param("output_qos", "reliable", "QoS of images and states ('reliable' serves both kinds of subscriber)",
              choices=qos.PROFILES, read_only=True),
        Param("output_qos_depth", 5, "queue depth of the outputs", 1, 100, read_only=True),
        Param("command_qos", "reliable", "QoS of the command subscriptions", choices=qos.PROFILES, read_only=True),
        Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", 0.1, 60.0, read_only=True),
        Param("log_throttle", 5.0, "seconds between repeated warnings of one kind", 0.0, 3600.0),
    )


def _refuse_bad_task_pool(params: list[rclpy.Parameter]) -> SetParametersResult:
    """Refuses a ``task_pool`` that names no task or an unknown one (a start override fails the reset instead)."""
    for p in params:
        if p.name == "task_pool":
            try:
                pool_tasks(p.value)
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
    return SetParametersResult(successful=True)


class ChainServices:
    """``~/begin_subtask`` and ``~/resume``: the services of a chain episode (CALVIN's protocol over ROS)."""

    def _on_begin_subtask(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._env_lock:
            error = self.episodes.begin_subtask(self.env, self._param("subtask"))
            if not error:
                self.commands.clear()
                self.outputs.publish_instruction(self.episode.instruction)
        response.success = not error
        response.message = json.dumps({"error": error} if error else {**self.episode.started(),
                                                                      "frame_stamp_ns": self.frame_stamp_ns})
        return response

    def _on_resume(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._env_lock:
            resumed = self.episodes.resume()
            if resumed == "resumed":
                self.commands.clear()
                self._publish_tick(self.env.observe())
        response.success = bool(resumed)
        response.message = json.dumps({"resumed": resumed} if resumed else {"error": "no chain episode"})
        return response


class SimNode(ChainServices, CommandedStepping, diagnostics.RejectionCounting, Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "sim_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_table(self, parameters())
        self.add_on_set_parameters_callback(_refuse_bad_task_pool)
        self.add_post_set_parameters_callback(self._after_set_parameters)

        self.env = CalvinSceneEnv(self._param("static_size"), self._param("gripper_size"),
                                  render_gripper=self._param("publish_gripper_camera"), scene=self._param("scene"))
        self.counters = Counters()
        self.step_rate = RateMeter()
        self.step_ms = LatencyWindow()
        self.episodes = Episodes()
        self.frame_stamp_ns = -1  # header stamp of the latest observation published (-1: none yet)
        self._last_error = ""
        self._env_lock = threading.Lock()  # env and publishing: worker steps vs reset service
        self.commands = commands.CommandSlot(CONTROL_HZ)  # command state; wakes the lockstep wait

        self.outputs = SimOutputs(self, qos.profile(self._param("output_qos"), self._param("output_qos_depth")),
                                  self.env.camera_info(), {n: self._param(f"{n}_camera_frame") for n in CAMERA_TOPICS},
                                  self._param("world_frame"))
        self._pubs = self.outputs.pubs
        cmd_qos = qos.profile(self._param("command_qos"), 10)
        self._subs = []
        for topic, msg_type, callback in (("action", Float64MultiArray, self._on_action),
                                          ("delta_twist_cmds", TwistStamped, self._on_twist),
                                          ("gripper_cmd", Float64, self._on_gripper)):
            events = qos.subscription_events(self.get_logger(), topic, "command_qos", self._count_qos)
            self._subs.append(self.create_subscription(msg_type, topic, callback, cmd_qos, event_callbacks=events))
        self._own_services = [self.create_service(Trigger, "~/reset", self._on_reset),
                              self.create_service(Trigger, "~/get_success", self._on_get_success),
                              self.create_service(Trigger, "~/begin_subtask", self._on_begin_subtask),
                              self.create_service(Trigger, "~/resume", self._on_resume)]
        self._diag_timer = self.create_timer(self._param("diagnostics_period"), self.publish_diagnostics)

        self.reset_episode()
        self._running = True
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._loop, name="ivm_sim_worker", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------------------------------ parameters

    def _param(self, name: str) -> Any:
        return self.get_parameter(name).value

    def _after_set_parameters(self, params: list[rclpy.Parameter]) -> None:
        if any(p.name == "seed" for p in params):
            self.episodes.seeds.restart()
        self.commands.wake()  # lockstep switched off, for example

    # ----------------------------------------------------------------------------------------- episodes

    @property
    def episode(self) -> Episode | None:
        return self.episodes.current

    def reset_episode(self) -> tuple[bool, str]:
        """Resets the env from the parameters and publishes the instruction and the first observation.
        Returns (ok, JSON message)."""
        with self._env_lock:
            if self._param("chain") >= 0:
                obs, self._last_error = self.episodes.start_chain(self.env, self._param("chain"),
                                                                  self._param("distraction"), self._param("seed"))
            else:
                obs, self._last_error = self.episodes.start(
                    self.env, self._param("task"), self._param("seed"), self._param("seed_increment"),
                    self._param("distraction"), self._param("sentence_split"), self._param("task_pool"))
            if obs is None:
                self.counters.add("reset_failures")
                self.get_logger().error(self._last_error)
                return False, json.dumps({"error": self._last_error})
            self.counters.add("resets")
            self.commands.clear()
            self.outputs.publish_instruction(self.episode.instruction)
            self._publish_tick(obs)
        e = self.episode
        self.get_logger().info(f"episode: task={e.task} seed={e.seed} distraction={e.distraction} "
                               f"instruction={e.instruction!r}")
        return True, json.dumps(e.started())

    def _on_get_success(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        episode = self.episode
        if episode is None:
            response.success, response.message = False, json.dumps({"error": self._last_error or "no episode"})
        else:
            response.success, response.message = episode.success, json.dumps(episode.report())
        return response

    def _episode_running(self) -> Episode | None:
        """The episode, while it has steps left."""
        episode = self.episode
        return None if episode is None or episode.stops(self._param("max_steps")) else episode

    # ------------------------------------------------------------------------------------------ commands

    def ticks(self) -> int:
        """Control periods of sim time so far (env steps plus one per reset); stamps are ticks / 30 s."""
        return self.env.control_ticks + self.episodes.resets

    def control_hz(self) -> float:
        return CONTROL_HZ

    def _put(self, action: np.ndarray) -> None:
        self.commands.put(action, self.ticks())
        self.counters.add("commands")

    def _on_action(self, msg: Float64MultiArray) -> None:
        a = np.asarray(msg.data, dtype=np.float64)
        problem = commands.action_problem(a)
        if problem:
            self._reject(*problem)
        else:
            self._put(a)

    def _on_twist(self, msg: TwistStamped) -> None:
        t = msg.twist
        lin = np.array([t.linear.x, t.linear.y, t.linear.z])
        ang = np.array([t.angular.x, t.angular.y, t.angular.z])
        problem = commands.twist_problem(msg.header.frame_id, self._param("world_frame"), lin, ang)
        if problem:
            self._reject(*problem)
            return
        gripper = self.commands.gripper
        gripper = gripper if gripper is not None else self.env.scene.gripper_action
        action, clipped = commands.twist_action(lin, ang, gripper, 1.0 / CONTROL_HZ)
        if clipped:
            self.counters.add("clipped_twist")
        self._put(action)

    # -------------------------------------------------------------------------------------------- worker

    def _step(self, granted: int) -> None:
        """One control step, unless a reset published a newer observation since the step was granted."""
        with self._env_lock:
            episode = self._episode_running()
            if episode is None or granted != self.commands.published:
                return
            self.env.render_gripper = self._param("publish_gripper_camera")
            action = self.commands.select(self.ticks(), self._param("action_timeout"))
            if action is None:
                self.counters.add("holds")
                action = commands.hold_action(self.env.scene.gripper_action)
            start = time.monotonic()
            obs, _, _, _, info = self.env.step(action)
            self.step_ms.add((time.monotonic() - start) * 1e3)
            episode.steps, episode.success = info["steps"], bool(info["success"])
            episode.over(self._param("max_steps"))
            self._publish_tick(obs)
        self.step_rate.tick()
        self.counters.add("steps")

    def _publish_tick(self, obs: dict[str, np.ndarray]) -> None:
        """Publishes one observation; called with the env lock held."""
        self.commands.observation_begins()
        self.frame_stamp_ns = stamp_ns(self.ticks())
        success = bool(self.episode.success) if self.episode else False
        self.outputs.publish_tick(self.ticks(), obs, self.env.scene, self.env.render_gripper, success)
        self.commands.observation_published()

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
        """One status on /diagnostics: the last error or no episode (ERROR), else rejected commands (WARN), else
        OK."""
        values = self.stats()
        condition = (diagnostics.ERROR, "no episode") if self.episode is None else None
        level, message = diagnostics.summarize(values, self._last_error, condition, "simulating", "command(s)")
        diagnostics.publish(self, self._pubs["diagnostics"], "simulator", level, message, values)

    # ------------------------------------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Stops the worker and closes the PyBullet client. Safe to call twice."""
        self._stop_worker()
        env = getattr(self, "env", None)  # either may be absent when __init__ failed part way
        if env is not None:
            with getattr(self, "_env_lock", None) or contextlib.nullcontext():
                env.close()


def main(args: list[str] | None = None) -> None:
    spin_node(SimNode, args)


if __name__ == "__main__":
    main()
