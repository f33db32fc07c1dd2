"""``calvin-eval --transport ros``: the same chains through real nodes and topics, one node set per worker.

    sim_node (lockstep, chain mode) --camera/image_raw--> masking_node --masked_image--> policy_node --action-->
                                    --gripper_camera/image_raw, sim_node/robot_obs---------------^

Each node runs in its own process (``python -m``), in the worker's own ROS domain. Per chain the worker sets
sim_node's ``chain``, ``distraction`` and ``seed`` and calls ``~/reset``; per subtask it sets ``subtask``, calls
``~/begin_subtask`` (the sentence goes out; the sim holds), waits for the sentence to reach the masking and policy
nodes, resets the policy, calls ``~/resume`` and polls ``~/get_success`` until the subtask succeeded (sim_node
stops stepping at the first success) or used its ``max_steps``. "Reached" is what the nodes' ``/diagnostics``
statuses report (a fixed wait loses the race on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from ivm_ros_sim.calvin.chains import Chain
from ivm_ros_sim.eval.closed_loop import Harness, node_commands
from ivm_ros_sim.eval.protocol import ChainResult, chain_outcome
from ivm_ros_sim.eval.workers import EvalSettings, worker_id

from ivm_ros.paths import use_fastdds_profile


def ros_node_commands(settings: EvalSettings) -> dict[str, list[str]]:
    """``python -m`` command lines of the node set for ``settings`` (the closed loop's nodes in chain mode)."""
    if settings.policy == "expert":
        raise ValueError("--transport ros needs a policy that runs in policy_node; the expert reads the simulator's "
                         "state and runs only with --transport direct")
    if settings.ground_truth_masks:
        raise ValueError("--model groundtruth runs only with --transport direct (masks from the simulator's state)")
    ns = argparse.Namespace(max_steps=settings.max_steps, policy=settings.policy, model=settings.model)
    cmds = node_commands(settings.masking, ns)
    cmds["sim_node"] += ["-p", f"static_size:={settings.static_size}", "-p", f"gripper_size:={settings.gripper_size}",
                         "-p", "lockstep_timeout:=30.0", "-p", f"scene:={settings.scene}"]
    for name in ("policy_node", "masking_node"):  # the harness waits for their statuses to report each instruction
        if name in cmds:
            cmds[name] += ["-p", "diagnostics_period:=0.2"]
    policy = cmds["policy_node"]
    i = next(k for k, arg in enumerate(policy) if arg.startswith("policy_config.variant:="))
    del policy[i - 1:i + 1]  # node_commands' embedded variant: the settings' policy config says it (or not)
    for key, value in settings.policy_settings().items():
        policy += ["-p", f"policy_config.{key}:={value}"]
    if settings.masking:
        for key, value in settings.model_config:
            cmds["masking_node"] += ["-p", f"model_config.{key}:={value}"]
    return cmds


class ChainHarness(Harness):
    """The evaluating node of one worker: the closed loop's harness plus chain mode's services."""

    def __init__(self, record: bool, masking: bool = True) -> None:
        super().__init__(record)
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        from std_msgs.msg import Float64MultiArray
        from std_srvs.srv import Trigger

        from ivm_ros.ros import qos

        self.begin = self.node.create_client(Trigger, "sim_node/begin_subtask")
        self.resume = self.node.create_client(Trigger, "sim_node/resume")
        self.listeners = ("/masking_node", "/policy_node") if masking else ("/policy_node",)
        self.heard: dict[str, str] = {}  # node -> the instruction its latest /diagnostics status reports
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.published = self.answered = 0  # camera frames sim_node published / actions policy_node sent
        self.latest_frame_ns = -1  # header stamp of the newest camera frame received
        self.unanswered = 0  # subtasks begun before every earlier frame was answered (wait_answered gave up)
        self.node.create_subscription(Image, "camera/image_raw", self._on_frame, qos.profile("reliable", 50))
        self.node.create_subscription(Float64MultiArray, "action", self._on_action, qos.profile("reliable", 50))

    def _on_action(self, _msg: Any) -> None:
        self.answered += 1

    def _on_frame(self, msg: Any) -> None:
        from rclpy.time import Time

        self.published += 1
        self.latest_frame_ns = max(self.latest_frame_ns, Time.from_msg(msg.header.stamp).nanoseconds)

    def wait_answered(self, frame_stamp_ns: int, timeout: float = 20.0) -> bool:
        """Spins until this node has received sim_node's frame stamped ``frame_stamp_ns`` (its latest) and
        policy_node has answered every frame received (one action per frame in lockstep), so no frame of the
        previous subtask is acted on after the next one's policy reset (a frame still on its way would consume the
        reset). Gives up after ``timeout`` s (a frame the masking fail-safe dropped is never answered): False, and
        counted in :attr:`unanswered`."""
        end = time.monotonic() + timeout
        while self.latest_frame_ns < frame_stamp_ns or self.answered < self.published:
            if time.monotonic() > end:
                self.unanswered += 1
                return False
            self.rclpy.spin_once(self.node, timeout_sec=0.05)
        return True

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            node = status.name.split(":")[0]
            if node in self.listeners:
                values = {kv.key: kv.value for kv in status.values}
                if "instruction" in values:
                    self.heard[node] = values["instruction"]

    def wait_instruction(self, text: str, timeout: float = 60.0) -> None:
        """Spins until the masking and policy nodes report ``text`` as their instruction (a fixed settle time
        loses the race on a loaded machine: a frame masked or acted on for the previous subtask)."""
        end = time.monotonic() + timeout
        while not all(self.heard.get(n) == text for n in self.listeners):
            if time.monotonic() > end:
                raise TimeoutError(f"{self.listeners} did not report the instruction {text!r} within {timeout:.0f} s "
                                   f"(they report {self.heard})")
            self.rclpy.spin_once(self.node, timeout_sec=0.05)

    def call(self, client: Any, what: str, timeout: float = 60.0, resend_s: float | None = None) -> str:
        """``client``'s Trigger answer; with ``resend_s`` the request is sent again every ``resend_s`` s until
        ``timeout`` (only for services where a repeat changes nothing: resets, the policy reset, ``begin_subtask``
        and ``resume``, see sim_node). RuntimeError when the service answers failure."""
        from std_srvs.srv import Trigger

        answer = self.call_resending(client, Trigger.Request(), timeout, retry_s=resend_s or timeout)  # None: one try
        if not answer.success:
            raise RuntimeError(f"sim_node {what} failed: {answer.message}")
        return answer.message

    def set_sim(self, **values: Any) -> None:
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        msgs = [Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        request = SetParameters.Request(parameters=msgs)
        result = self.call_resending(self.set_params, request, 30)
        if not all(r.successful for r in result.results):
            raise RuntimeError(f"sim_node refused parameters: {[r.reason for r in result.results]}")

    def subtask(self, task: str, max_steps: int, wall_timeout: float) -> tuple[bool, int]:
        """Runs one subtask of the current chain: (success, steps)."""
        self.set_sim(subtask=task)
        begun = json.loads(self.call(self.begin, "begin_subtask", resend_s=10))
        if not self.wait_answered(begun["frame_stamp_ns"]):
            self.node.get_logger().warning(f"subtask {task}: begun before every earlier frame was answered "
                                           f"({self.answered} of {self.published}); the policy reset may meet a "
                                           f"stale frame (unanswered: {self.unanswered})")
        self.wait_instruction(begun["instruction"])
        self.call(self.reset_policy, "policy reset", 30, resend_s=10)
        self.call(self.resume, "resume", resend_s=10)
        report = self.poll_success(lambda r: bool(r.get("success")) or r.get("steps", 0) >= max_steps,
                                   wall_timeout, f"subtask {task}")
        return bool(report.get("success")), int(report.get("steps", 0))

    def poll_success(self, done: Callable[[dict[str, Any]], bool], wall_timeout: float, what: str) -> dict[str, Any]:
        """Asks the sim node's ``~/get_success`` while spinning until ``done(report)``; that report (a dict).
        TimeoutError after ``wall_timeout`` s."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < wall_timeout:
            self.rclpy.spin_once(self.node, timeout_sec=0.1)
            report = json.loads(self.call_resending(self.get_success, _trigger(), 30).message)
            if done(report):
                return report
        raise TimeoutError(f"{what} took more than {wall_timeout:.0f} s of wall time")


def stop_processes(procs: list[subprocess.Popen], timeout: float = 15.0) -> None:
    """Terminates the node processes, waits up to ``timeout`` s for each and kills what is still running."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()


def _trigger() -> Any:
    from std_srvs.srv import Trigger

    return Trigger.Request()


class RosChainWorker:
    """Starts the node set (in ROS domain ``domain`` when given) and runs chains through it."""

    def __init__(self, settings: EvalSettings, domain: int | None = None, startup_timeout: float = 120.0,
                 subtask_timeout: float = 600.0) -> None:
        import rclpy

        self.settings, self.subtask_timeout = settings, subtask_timeout
        use_fastdds_profile()
        if domain is not None:
            os.environ["ROS_DOMAIN_ID"] = str(domain)
        self.procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
                      for cmd in ros_node_commands(settings).values()]
        rclpy.init()
        self.harness = ChainHarness(record=True, masking=settings.masking)
        try:
            self.harness.wait_ready(startup_timeout)
        except Exception:
            self.close()
            raise

    def run(self, chain: Chain, record: bool = False) -> tuple[ChainResult, list[np.ndarray]]:
        """(result, frames): frames are camera | what the policy saw, when ``record``."""
        s, h = self.settings, self.harness
        t0 = time.perf_counter()
        h.set_sim(chain=chain.index, distraction=s.distraction, seed=s.seed)
        h.call(h.reset_sim, "reset", 90, resend_s=30)
        for v in h.frames.values():
            v.clear()
        h.record = record
        result = chain_outcome(chain, lambda task, _i: h.subtask(task, s.max_steps, self.subtask_timeout))
        h.record = False
        result.seconds, result.worker = time.perf_counter() - t0, worker_id()
        cam, seen = h.frames["camera"], h.frames["seen"] if s.masking else h.frames["camera"]
        frames = [np.concatenate([c, v], axis=1) for c, v in zip(cam, seen) if c.shape == v.shape] if record else []
        return result, frames

    def close(self) -> None:
        import rclpy

        harness = getattr(self, "harness", None)
        if harness is not None:
            harness.node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        stop_processes(self.procs)
