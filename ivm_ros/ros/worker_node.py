"""The lifecycle skeleton shared by masking_node and policy_node: one worker thread fed by a one-slot mailbox.

The base owns the skeleton: ``counters``, the ``mailbox`` callbacks put the newest frame into, the ``_pubs``
dict (name -> publisher; "diagnostics" publishes /diagnostics), the worker loop and the last error. A node
implements the hooks: :meth:`_process` (one frame, on the worker thread), :meth:`_on_error` (a frame that
raised; the default counts ``ERROR_COUNTER`` and logs), :meth:`_on_rejected` (a frame found bad while
processing), :meth:`stats`, :meth:`_status`, :meth:`_unsubscribe` and :meth:`_release`.

Lifecycle: configure loads the model (the node), activate subscribes and starts the worker
(:meth:`_start_worker`), deactivate undoes activate (:meth:`_unsubscribe`), cleanup undoes configure
(:meth:`_release`), shutdown does both.
"""

from __future__ import annotations

import abc
import os
import sys
import threading
import weakref
from typing import Any

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from ivm_ros import doctor, install_hints
from ivm_ros.inputs import InputRejected
from ivm_ros.plugins import PluginLoadError, Registry
from ivm_ros.ros import diagnostics
from ivm_ros.ros.diagnostics import RejectionCounting
from ivm_ros.ros.params import declare, declare_settings, invalid_parameters
from ivm_ros.runtime import Counters, LatestMailbox, ignore_further_interrupts, quiet_progress_bars


class WorkerLifecycleNode(RejectionCounting, LifecycleNode, metaclass=abc.ABCMeta):
    """See the module docstring."""

    #: the diagnostics status is named "<fully qualified node name>: <DIAGNOSTIC_TASK>"; OK_MESSAGE when all is well
    DIAGNOSTIC_TASK = "worker"
    OK_MESSAGE = "working"
    #: counted when :meth:`_process` raises
    ERROR_COUNTER = "dropped_error"

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.counters = Counters()
        self.mailbox: LatestMailbox[Any] = LatestMailbox()
        self._pubs: dict[str, Any] = {}
        self._last_error = ""
        self._fix = ""
        self._unconfigured_timer = None
        self._worker: threading.Thread | None = None
        self._running = False

    # ------------------------------------------------------------------------------------------ hooks

    @abc.abstractmethod
    def _process(self, item: Any) -> None:
        """Handles one item taken from the mailbox (worker thread). May raise: see :meth:`_on_error`."""

    def _on_rejected(self, item: Any, exc: InputRejected) -> None:
        """After a rejection found while processing ``item`` was counted and logged."""

    def _on_error(self, exc: Exception) -> None:
        """``_process`` raised: the frame is dropped (counted ``ERROR_COUNTER``), the error is kept for
        diagnostics and logged (throttled); the worker serves the next frame."""
        self.counters.add(self.ERROR_COUNTER)
        self._last_error = f"{type(exc).__name__}: {exc}"
        self.get_logger().error(f"frame dropped: {self._last_error}",
                                throttle_duration_sec=self.get_parameter("log_throttle").value)

    @abc.abstractmethod
    def stats(self) -> dict:
        """The values published in diagnostics (key -> number or string)."""

    @abc.abstractmethod
    def _status(self, values: dict) -> tuple[bytes, str] | None:
        """(level, message) for a node-specific condition in ``values``, or None when there is none."""

    @abc.abstractmethod
    def _unsubscribe(self) -> None:
        """Undoes activate: stops the worker (:meth:`_stop_worker`) and drops subscriptions and timers."""

    @abc.abstractmethod
    def _release(self) -> None:
        """Undoes configure: publishers, services, the model."""

    # ------------------------------------------------------------------------------------- plug-in settings

    def _declare_plugin_settings(self, registry: Registry, prefix: str, spec: str) -> None:
        """Declares ``<prefix>.<setting>`` for each setting of the plug-in ``spec`` (a registered name or
        ``module:Class``) not declared yet; an unknown plug-in is logged (configure reports it)."""
        try:
            fields = registry.config_fields(spec)
        except PluginLoadError as exc:
            self.get_logger().error(str(exc))
            return
        declare_settings(self, prefix, fields, f"{registry.kind} {spec!r}")

    def _plugin_settings(self, registry: Registry, prefix: str, spec: str, sequence: type = list) -> dict[str, Any]:
        """The values of the plug-in's ``<prefix>.*`` parameters that it knows (arrays as ``sequence``)."""
        try:
            known = set(registry.config_fields(spec))
        except PluginLoadError:
            return {}
        return {key: sequence(p.value) if isinstance(p.value, (list, tuple)) else p.value
                for key, p in self.get_parameters_by_prefix(prefix).items() if key in known}

    @staticmethod
    def _refuse_while_loaded(params: list[rclpy.Parameter], loaded: bool, names: tuple[str, ...]
                             ) -> SetParametersResult | None:
        """A refusal for a change of a parameter in ``names`` (or under ``<name>.``) while the plug-in it
        chooses is ``loaded`` (they apply at configure), else None."""
        for p in params if loaded else ():
            if p.name.split(".")[0] in names:
                return SetParametersResult(successful=False, reason=f"{p.name} applies at configure: deactivate "
                                           "and clean up first")
        return None

    def _destroy(self, timers: list = (), services: list = (), subscriptions: list = ()) -> None:
        """Destroys the given timers, services and subscriptions (``None`` entries are skipped) and drops them
        from their callback groups (:func:`forget_entity`)."""
        for timer in timers:
            if timer is not None:
                self.destroy_timer(timer)
                forget_entity(timer)
        for service in services:
            self.destroy_service(service)
            forget_entity(service)
        for sub in subscriptions:
            self.destroy_subscription(sub)
            forget_entity(sub)

    def _destroy_publishers(self) -> None:
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
            forget_entity(pub)
        self._pubs = {}

    # ------------------------------------------------------------------------------------------ worker

    def _work(self) -> None:
        """The worker loop: takes from the mailbox while running; a bad or failing frame never ends it."""
        while self._running:
            item = self.mailbox.get(timeout=0.2)
            if item is None:
                continue
            try:
                self._process(item)
            except InputRejected as exc:
                self._reject(exc.reason, str(exc))
                self._on_rejected(item, exc)
            except Exception as exc:  # a failing model must not kill the worker
                if not self.context.ok():  # Ctrl-C shut the context down under us: publishers are gone, not broken
                    break
                self._on_error(exc)

    def _start_worker(self, name: str) -> None:
        self.mailbox.reopen()
        self._running = True
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._worker.start()

    def _stop_worker(self) -> None:
        self._running = False
        self.mailbox.close()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None

    # ------------------------------------------------------------------------------------- diagnostics

    def publish_diagnostics(self) -> None:
        """One DiagnosticStatus on ``/diagnostics``: the last error, else the node's own condition, else rejected
        inputs (WARN), else OK."""
        pub = self._pubs.get("diagnostics")
        if pub is None or self._unconfigured_timer is not None:
            return
        values = self.stats()
        level, message = diagnostics.summarize(values, self._last_error, self._status(values), self.OK_MESSAGE)
        diagnostics.publish(self, pub, self.DIAGNOSTIC_TASK, level, message, values)

    def diagnostics_timer(self, callback):
        """A timer calling ``callback`` every ``diagnostics_period`` wall-clock seconds: on a steady clock, not the
        node's, so a node on sim time keeps reporting while the simulation is paused."""
        return self.create_timer(self.get_parameter("diagnostics_period").value, callback,
                                 clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _diagnostics_publisher(self):
        """The /diagnostics publisher (created on first use; :meth:`_release` destroys it with the others)."""
        if "diagnostics" not in self._pubs:
            self._pubs["diagnostics"] = self.create_publisher(diagnostics.DiagnosticArray, "/diagnostics", 10)
        return self._pubs["diagnostics"]

    def _publish_unconfigured(self) -> None:
        """ERROR on /diagnostics: why the last configure failed and the fix (``state: unconfigured``)."""
        diagnostics.publish(self, self._diagnostics_publisher(), self.DIAGNOSTIC_TASK, diagnostics.ERROR,
                            self._last_error, {"state": "unconfigured", "fix": self._fix})

    # --------------------------------------------------------------------------------------- lifecycle

    def _start_when_asked(self) -> None:
        """Declares the read-only ``autostart`` and ``exit_on_failure`` parameters; with autostart the first spin
        configures and activates. Call at the end of ``__init__``."""
        declare(self, "exit_on_failure", False, "when autostart cannot configure or activate: exit with status 1 "
                "(for launch respawn or a supervisor) instead of staying up unconfigured", read_only=True)
        if declare(self, "autostart", True, "configure and activate on start", read_only=True):
            self._autostart_timer = self.create_timer(0.0, self._autostart)
        # the cheap checks of `ivm-ros doctor`: this process's transport profile and discovery settings
        doctor.log_findings(self.get_logger(), doctor.transport_findings(os.environ, who=self.get_name()))

    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        self._destroy(timers=[self._autostart_timer])
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            if self.trigger_activate() == TransitionCallbackReturn.SUCCESS:
                return
        state = self._state_machine.current_state[1]
        exits = self.get_parameter("exit_on_failure").value
        self.get_logger().error(
            f"AUTOSTART FAILED: {self.get_fully_qualified_name()} is {state} and publishes nothing but an ERROR on "
            f"/diagnostics. Cause: {self._last_error or 'see the log above'}. Fix: {self._fix or 'see above'}. "
            + ("Exiting with status 1 (exit_on_failure)." if exits else "Set exit_on_failure:=true to exit instead."))
        if exits:
            raise SystemExit(1)

    def _refuse_configure(self, message: str, exc: BaseException | None = None) -> TransitionCallbackReturn:
        """Fails the configure transition with ``message`` and the fix (for ``exc``: the install command of a
        missing module); logged, kept for diagnostics. The node stays up and unconfigured, publishing an ERROR
        status every ``diagnostics_period`` until a configure succeeds (:meth:`_configured`)."""
        self._last_error = message
        self._fix = install_hints.fix_for(exc) if exc is not None else "correct the parameters, then configure again"
        self.get_logger().error(f"{message}. Fix: {self._fix}")
        self._publish_unconfigured()
        if self._unconfigured_timer is None:
            self._unconfigured_timer = self.diagnostics_timer(self._publish_unconfigured)
        return TransitionCallbackReturn.FAILURE

    def _configured(self) -> None:
        """Call when configure succeeded: clears the error and stops the unconfigured ERROR status."""
        self._last_error = self._fix = ""
        if self._unconfigured_timer is not None:
            self._destroy(timers=[self._unconfigured_timer])
            self._unconfigured_timer = None

    def _parameters_error(self) -> str:
        """Why the parameters cannot be used to configure (start values outside their choices), or ""."""
        invalid = invalid_parameters(self)
        return "invalid parameters: " + "; ".join(invalid) if invalid else ""

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unsubscribe()
        self._release()
        return TransitionCallbackReturn.SUCCESS


def forget_entity(entity: Any) -> None:
    """Removes a destroyed entity (timer, service, subscription, publisher) and its QoS event handlers from their
    callback groups.

    rclpy's ``CallbackGroup.add_entity`` keeps a weak reference to every entity it is given in a set, and
    ``Node.destroy_*`` never removes it (ros2/rclpy#1356, open; rclpy 9.1.2 here): the dead references pile up,
    18 per policy_node configure/activate/deactivate/cleanup cycle (4 publishers with 2 QoS event handlers each,
    2 services, 2 timers, 2 subscriptions with 2 handlers each), ~2.7 KB of Python heap per cycle, forever. The set
    is only read by membership tests (``has_entity``, the groups' ``can_execute`` assertions), so dropping an
    entry for an entity that no longer exists changes nothing else. Call after ``destroy_*`` while ``entity`` is
    still referenced (a live object's weak reference compares equal to the one stored)."""
    for item in (entity, *getattr(entity, "event_handlers", ())):
        group = getattr(item, "callback_group", None)
        if group is not None:
            group.entities.discard(weakref.ref(item))


def spin_node(make_node, args: list[str] | None = None) -> None:
    """A node executable's main: init, build with ``make_node()``, spin a SingleThreadedExecutor until Ctrl-C or
    an external shutdown, then stop the node's threads (``on_shutdown``) and destroy it before the context goes
    away. A node that cannot start for a missing file (the simulator's assets, a config) says so in one line and
    exits with status 1; other failures to build are reported by their exception. The context is shut down all the
    same."""
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    quiet_progress_bars()
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:  # the signal handler shut the context down while the executor built its wait set
        if node is None or rclpy.ok():
            raise
    except FileNotFoundError as exc:
        if node is not None:
            raise
        print(f"[FATAL] cannot start: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    finally:
        ignore_further_interrupts()
        if node is not None:
            node.on_shutdown(None)
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
