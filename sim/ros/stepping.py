"""What sim_node and simpler_node share: the worker loop that steps the simulator (lockstep turns, pacing, a step
that fails is counted and the loop keeps serving) and the gripper command. ROS types only as message fields."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from ivm_ros_sim.ros import commands


class CommandedStepping:
    """Mixin for a simulator bridge node. The node provides ``commands`` (:class:`commands.CommandSlot`), ``counters``,
    ``_running``, ``_stop`` (threading.Event), ``_param(name)``, ``_reject(reason, detail)``, ``_episode_running()``
    (None when no episode has steps left), ``_step(granted)``, ``ticks()`` (control periods of sim time so far),
    ``control_hz()`` (its control rate, Hz), ``reset_episode()`` -> (ok, JSON message), ``_worker`` (the thread
    running :meth:`_loop`) and ``close()``."""

    commands: commands.CommandSlot
    counters: Any
    _running: bool
    _stop: threading.Event
    _last_error: str

    def _on_gripper(self, msg: Any) -> None:
        """std_msgs/Float64: > 0 opens, <= 0 closes; NaN/inf rejected."""
        if not np.isfinite(msg.data):
            self._reject("non_finite", f"gripper_cmd is {msg.data}")
            return
        self.commands.put_gripper(1.0 if msg.data > 0 else -1.0, self.ticks(), self._param("action_timeout"))
        self.counters.add("gripper_commands")

    def _on_reset(self, request: Any, response: Any) -> Any:
        """std_srvs/Trigger ``~/reset``: the node's ``reset_episode()`` -> (success, JSON message)."""
        response.success, response.message = self.reset_episode()
        return response

    def _stop_worker(self) -> None:
        """Ends the loop and joins the worker thread (safe when __init__ failed before starting it)."""
        if getattr(self, "_running", False):
            self._running = False
            self._stop.set()
            self.commands.wake()
            self._worker.join(timeout=10.0)

    def on_shutdown(self, state: Any) -> None:
        """What :func:`~ivm_ros.ros.worker_node.spin_node` calls before ``destroy_node``: the node's ``close()``."""
        self.close()

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()

    def _loop(self) -> None:
        pacer = commands.Pacer(self.control_hz())
        while self._running:
            if self._episode_running() is None:
                self.commands.idle(0.1)
                continue
            granted, timed_out = self.commands.wait_turn(lambda: self._running, lambda: self._param("lockstep"),
                                                         lambda: self._param("lockstep_timeout"))
            if timed_out:
                self.counters.add("lockstep_timeouts")
            if granted is None:
                continue
            pacer.control_hz = self.control_hz()
            if not pacer.wait(self._param("real_time_factor"), self._stop):
                break
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
