"""``simpler-eval --transport ros``: the same episodes through real nodes and topics, one node set per worker and
masking condition (restarted when the condition changes; jobs come masking-major).

    simpler_node (lockstep, named sim_node) --camera/image_raw--> masking_node --masked_image--> policy_node --action-->
                                            --sim_node/proprio (WidowX; when the policy takes proprio)---^

A policy takes proprio when its class overrides :meth:`~ivm_ros.policies.base.Policy.proprio_spec` (decided from
the class, which the driver resolves anyway, not from an instance: the weights load in policy_node only). That is
the direct transport's answer (``proprio_spec()`` not None) for every policy here: the embedded policy (each
checkpoint reads its robot's proprio vector) takes it; octo and the test stand-ins do not. (A class that overrides
it yet answers None for some settings is sent the vector and ignores it.) policy_node then runs with
``use_proprio``, ``proprio_timeout`` 0 (in lockstep every tick publishes the proprio before its frame, so the
newest is the frame's; a node-clock watchdog has nothing to catch) and ``proprio_limits`` off (the direct transport
gives the policy the vector unchecked: an arm outside the training range is evaluated, not held). Google-robot
tasks carry no proprio: such a policy is refused for them (:func:`check_ros_policy`).

Each node runs in its own process (``python -m``), in the worker's own ROS domain; their output goes to
``<tmp>/simpler_eval_nodes_*/<node>.log``. Once the nodes are up, the worker drives the loop until an action
answered a frame (every subscription matched: a frame published before that is lost and its lockstep step waits for
the timeout). Per episode it disables actuation (``policy_node/enable`` false: nothing is published from then on),
sets sim_node's ``task``, ``seed``, ``episode_id`` and ``variant`` and calls ``~/reset`` (the instruction goes out,
latched), waits until the masking and policy nodes report that instruction on ``/diagnostics`` and the masking
node has passed the reset's frame on, resets the policy, enables it and calls ``~/reset`` again
(``seed_increment`` 0: the same episode from its first frame), then polls ``~/get_success`` until the episode is
truncated (the env's time limit or ``max_steps``). Lockstep: each step waits for the policy's action on the latest
frame, so the outcome is the direct transport's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
from ivm_ros_sim.eval.ros_transport import ChainHarness, stop_processes
from ivm_ros_sim.eval.runs import worker_id
from ivm_ros_sim.eval.simpler_jobs import EpisodeResult, Job, SimplerSettings

from ivm_ros.paths import use_fastdds_profile


def _param(key: str, value: Any) -> list[str]:
    """``-p key:=value``: ROS reads the value as YAML, so a string that YAML would read otherwise (a JSON object,
    "true", "1") is single-quoted, and anything else is written as JSON."""
    import yaml

    text = json.dumps(value) if not isinstance(value, str) else value
    if isinstance(value, str):
        try:
            same = yaml.safe_load(value) == value
        except yaml.YAMLError:
            same = False
        text = value if same else "'" + value.replace("'", "''") + "'"
    return ["-p", f"{key}:={text}"]


def takes_proprio(policy: str) -> bool:
    """Whether ``policy`` (a registered name or ``module:Class``) is fed the WidowX proprio: its class overrides
    :meth:`~ivm_ros.policies.base.Policy.proprio_spec` (the base's answer, None, means it takes none)."""
    from ivm_ros.policies.base import Policy
    from ivm_ros.policies.registry import resolve_class

    return getattr(resolve_class(policy), "proprio_spec", Policy.proprio_spec) is not Policy.proprio_spec


def check_ros_policy(settings: SimplerSettings, tasks: list[str]) -> None:
    """ValueError for a policy that takes proprio on a Google-robot task (its frames carry none)."""
    google = [t for t in tasks if t.startswith("google_robot")]
    if google and not settings.privileged and takes_proprio(settings.policy):
        raise ValueError(f"--policy {settings.policy} takes proprio, but {google} publish none (WidowX tasks only)")


def simpler_node_commands(settings: SimplerSettings, masking: bool, first: Job | None = None) -> dict[str, list[str]]:
    """``python -m`` command lines of the node set of one masking condition; sim_node starts with ``first``'s
    task and variant (the env it makes at start is the one the first job needs)."""
    if settings.privileged:
        raise ValueError("--transport ros needs a policy that runs in policy_node; the expert reads the simulator's "
                         "state and runs only with --transport direct")
    if settings.ground_truth(masking):
        raise ValueError("--model groundtruth runs only with --transport direct (masks from the simulator's state)")
    py = [sys.executable, "-m"]
    sim = [*py, "ivm_ros_sim.ros.simpler_node", "--ros-args", "-r", "__node:=sim_node"]
    for key, value in (("backend", settings.backend), ("lockstep", True), ("lockstep_timeout", 30.0),
                       ("seed_increment", 0), ("real_time_factor", 0.0), ("max_steps", settings.max_steps),
                       ("publish_base_camera", False),
                       *((("task", first.task), ("variant", first.variant_kwargs)) if first else ())):
        sim += _param(key, value)
    proprio = takes_proprio(settings.policy)
    policy = [*py, "ivm_ros.ros.policy_node", "--ros-args",
              "-r", f"image:={'masking_node/masked_image' if masking else 'camera/image_raw'}",
              "-r", "policy_node/action:=action", *(("-r", "proprio:=sim_node/proprio") if proprio else ())]
    for key, value in (("policy", settings.policy), ("act_on_every_frame", True), ("start_enabled", False),
                       ("on_disable", "silent"), ("use_sim_time", True), ("observation_timeout", 0.0),
                       ("image_qos", "reliable"), ("diagnostics_period", 0.2),
                       *((("use_proprio", True), ("proprio_timeout", 0.0), ("proprio_limits", "off")) if proprio
                         else ()),
                       *((f"policy_config.{k}", v) for k, v in settings.policy_settings(masking).items())):
        policy += _param(key, value)
    cmds = {"sim_node": sim, "policy_node": policy}
    if masking:
        mask = [*py, "ivm_ros.ros.masking_node", "--ros-args", "-r", "image_raw:=camera/image_raw"]
        for key, value in (("model", settings.model), ("use_sim_time", True), ("image_qos", "reliable"),
                           ("diagnostics_period", 0.2), *((f"model_config.{k}", v) for k, v in settings.model_config)):
            mask += _param(key, value)
        cmds["masking_node"] = mask
    return cmds


class SimplerHarness(ChainHarness):
    """The evaluating node of one worker and masking condition: CALVIN's chain harness (services, instruction and
    frame counting) plus ``policy_node/enable`` and a count of the masked frames."""

    def __init__(self, masking: bool) -> None:
        super().__init__(record=True, masking=masking)
        from sensor_msgs.msg import Image
        from std_srvs.srv import SetBool

        from ivm_ros.ros import qos

        self.masking = masking
        self.enable = self.node.create_client(SetBool, "policy_node/enable")
        self.stamps = {"camera": -1, "masked": -1}  # ns: the newest frame each topic brought
        for kind, topic in (("camera", "camera/image_raw"), ("masked", "masking_node/masked_image")):
            if kind == "camera" or masking:
                self.node.create_subscription(Image, topic, lambda m, k=kind: self._stamp(k, m),
                                              qos.profile("reliable", 50))

    def _stamp(self, kind: str, msg: Any) -> None:
        self.stamps[kind] = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    def wait_ready(self, timeout: float) -> None:
        """Services up and the masking and policy nodes active (reporting on /diagnostics), so the first frame of
        an episode reaches them."""
        super().wait_ready(timeout)
        if not self.enable.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {self.enable.srv_name} not available after {timeout} s")
        end = time.monotonic() + timeout
        while not all(n in self.heard for n in self.listeners):
            if time.monotonic() > end:
                raise TimeoutError(f"{self.listeners} not on /diagnostics after {timeout} s (heard {list(self.heard)})")
            self.rclpy.spin_once(self.node, timeout_sec=0.05)

    def warm_up(self, timeout: float) -> None:
        """Drives the loop until policy_node answered a frame (DDS has matched sim -> masking -> policy -> sim:
        a frame published before that would be lost and its step wait for the lockstep timeout), then disables
        actuation. Resets the sim again every 2 s without an answer."""
        self.set_enabled(True)
        before, end = self.answered, time.monotonic() + timeout
        while self.answered == before:
            if time.monotonic() > end:
                raise TimeoutError(f"no action answered a frame within {timeout:.0f} s of the nodes starting")
            self.call(self.reset_sim, "reset", 60, resend_s=10)
            retry = time.monotonic() + 2.0
            while self.answered == before and time.monotonic() < retry:
                self.rclpy.spin_once(self.node, timeout_sec=0.05)
        self.set_enabled(False)

    def set_enabled(self, on: bool) -> None:
        from std_srvs.srv import SetBool

        self.call_resending(self.enable, SetBool.Request(data=on), 30)

    def wait_passed(self, before: int, timeout: float = 20.0) -> None:
        """Spins until the camera frame published after sim time ``before`` (ns) arrived and, with masking, the
        masking node passed it on (so no frame is left to reach the policy once it is enabled); gives up after
        ``timeout`` s (a frame the fail-safe dropped)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            cam = self.stamps["camera"]
            if cam > before and (not self.masking or self.stamps["masked"] == cam):
                break
            self.rclpy.spin_once(self.node, timeout_sec=0.05)
        end = time.monotonic() + 0.1  # policy_node drops what it gets while disabled
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.02)

    def episode(self, job: Job, seed: int, record: bool, wall_timeout: float) -> dict[str, Any]:
        """Runs one episode (see the module docstring); returns sim_node's final report."""
        self.set_enabled(False)
        self.set_sim(task=job.task, seed=seed, episode_id=job.episode, variant=job.variant_kwargs)
        before = self.stamps["camera"]
        self.wait_instruction(json.loads(self.call(self.reset_sim, "reset", 90, resend_s=30))["instruction"])
        self.wait_passed(before)
        self.call(self.reset_policy, "policy reset", 30, resend_s=10)
        self.set_enabled(True)
        for v in self.frames.values():
            v.clear()
        self.record = record
        self.call(self.reset_sim, "reset", 90, resend_s=30)  # a repeat restarts the same seeded episode
        report = self.poll_success(lambda r: bool(r.get("truncated")), wall_timeout, f"episode {job.key}")
        self.record = False
        if report.get("seed") != seed or report.get("episode_id") != job.episode:
            raise RuntimeError(f"sim_node ran {report} when asked for seed {seed} episode {job.episode}")
        return report


class RosSimplerWorker:
    """Runs jobs through a node set (in ROS domain ``domain`` when given), started for the job's masking condition."""

    def __init__(self, settings: SimplerSettings, domain: int | None = None, startup_timeout: float = 120.0,
                 episode_timeout: float = 900.0) -> None:
        import rclpy

        self.settings, self.startup_timeout, self.episode_timeout = settings, startup_timeout, episode_timeout
        use_fastdds_profile()
        if domain is not None:
            os.environ["ROS_DOMAIN_ID"] = str(domain)
        rclpy.init()
        self.logs = tempfile.mkdtemp(prefix="simpler_eval_nodes_")
        self.procs: list[subprocess.Popen] = []
        self.harness: SimplerHarness | None = None

    def _start(self, job: Job) -> SimplerHarness:
        """The harness of the node set of ``job``'s masking condition, (re)starting the nodes when it changed."""
        masking = job.masking
        if self.harness is not None and self.harness.masking == masking:
            return self.harness
        self._stop()
        for name, cmd in simpler_node_commands(self.settings, masking, job).items():
            with open(os.path.join(self.logs, f"{name}.log"), "a") as log:
                self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()))
        self.harness = SimplerHarness(masking)
        try:
            self.harness.wait_ready(self.startup_timeout)
            self.harness.warm_up(self.startup_timeout)
        except TimeoutError as exc:
            self._stop()
            raise TimeoutError(f"{exc}; node logs in {self.logs}") from None
        return self.harness

    def run(self, job: Job, record: bool = False) -> tuple[EpisodeResult, list[np.ndarray]]:
        """(result, frames): frames are camera | what the policy saw, when ``record``."""
        h = self._start(job)
        seed, t0 = job.seed(self.settings.seed), time.perf_counter()
        rep = h.episode(job, seed, record, self.episode_timeout)
        result = EpisodeResult(job.key, job.task, job.variant, job.variant_kwargs, job.masking, job.episode, seed,
                               rep["instruction"], bool(rep["success"]), bool(rep["ever_success"]), int(rep["steps"]),
                               None, time.perf_counter() - t0, worker_id())
        cam, seen = h.frames["camera"], h.frames["seen"] if job.masking else h.frames["camera"]
        frames = [np.concatenate([c, v], axis=1) for c, v in zip(cam, seen) if c.shape == v.shape] if record else []
        return result, frames

    def _stop(self) -> None:
        if self.harness is not None:
            self.harness.node.destroy_node()
            self.harness = None
        stop_processes(self.procs)
        self.procs = []

    def close(self) -> None:
        import rclpy

        self._stop()
        if rclpy.ok():
            rclpy.shutdown()
