"""The lifecycle skeleton shared by masking_node and policy_node: one worker thread fed by a one-slot mailbox.

configure loads the model (subclass), activate subscribes and starts the worker (:meth:`_start_worker`),
deactivate undoes activate (:meth:`_unsubscribe`), cleanup undoes configure (:meth:`_release`), shutdown does both.
"""

from __future__ import annotations

import threading

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from ivm_ros.ros import diagnostics
from ivm_ros.ros.diagnostics import RejectionCounting
from ivm_ros.ros.params import declare
from ivm_ros.runtime import LatestMailbox, ignore_further_interrupts


class WorkerLifecycleNode(RejectionCounting, LifecycleNode):
    """Subclasses set ``self.mailbox``, ``self.counters``, ``self._pubs`` and ``self._last_error`` and implement
    :meth:`_work`, :meth:`_unsubscribe`, :meth:`_release`, :meth:`stats` and :meth:`_status`."""

    mailbox: LatestMailbox
    _worker: threading.Thread | None = None
    _running: bool = False
    _pubs: dict
    _last_error: str = ""
    #: the diagnostics status is named "<fully qualified node name>: <DIAGNOSTIC_TASK>"; OK_MESSAGE when all is well
    DIAGNOSTIC_TASK = "worker"
    OK_MESSAGE = "working"

    def stats(self) -> dict:
        """The values published in diagnostics (key -> number or string)."""
        raise NotImplementedError

    def _status(self, values: dict) -> tuple[bytes, str] | None:
        """(level, message) for a node-specific condition in ``values``, or None when there is none."""
        raise NotImplementedError

    def publish_diagnostics(self) -> None:
        """One DiagnosticStatus on ``/diagnostics``: the last error, else the node's own condition, else rejected
        inputs (WARN), else OK."""
        pub = self._pubs.get("diagnostics")
        if pub is None:
            return
        values = self.stats()
        rejected = sum(v for k, v in values.items() if k.startswith("rejected_"))
        if self._last_error:
            level, message = diagnostics.ERROR, self._last_error
        elif (own := self._status(values)) is not None:
            level, message = own
        elif rejected:
            level, message = diagnostics.WARN, f"{rejected} input(s) rejected"
        else:
            level, message = diagnostics.OK, self.OK_MESSAGE
        name = f"{self.get_fully_qualified_name()}: {self.DIAGNOSTIC_TASK}"
        pub.publish(diagnostics.array(self.get_clock().now().to_msg(), diagnostics.status(name, level, message,
                                                                                          values)))

    def _work(self) -> None:
        """The worker loop: takes from the mailbox while ``self._running``."""
        raise NotImplementedError

    def _unsubscribe(self) -> None:
        """Undoes activate: stops the worker (:meth:`_stop_worker`) and drops subscriptions and timers."""
        raise NotImplementedError

    def _release(self) -> None:
        """Undoes configure: publishers, services, the model."""
        raise NotImplementedError

    def _start_when_asked(self) -> None:
        """Declares the read-only ``autostart`` parameter; when true, the first spin configures and activates.
        Call at the end of ``__init__``."""
        if declare(self, "autostart", True, "configure and activate on start", read_only=True):
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

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


def spin_node(make_node, args: list[str] | None = None) -> None:
    """A node executable's main: init, build with ``make_node()``, spin a SingleThreadedExecutor until Ctrl-C or
    an external shutdown, then stop the worker (on_shutdown) before the context goes away."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=args)
    node = make_node()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        ignore_further_interrupts()
        node.on_shutdown(None)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
