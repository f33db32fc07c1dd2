"""A subscription served by its own thread instead of the node's executor.

rclpy's Python executors rebuild their wait set in Python on every spin, holding the GIL: ~0.27 ms for
masking_node's 12 services and 14 event handlers on the 2-core machines here (more under load). A frame
therefore waits for that before its callback runs, and the worker the callback wakes waits for the next
rebuild to release the GIL. A thread that waits on the one subscription (the wait releases the GIL) takes
each message as soon as it arrives; in ``ivm-ros bench node`` this cut the camera -> masked-image latency by
~0.5 ms p50.

The executor never sees the subscription or its QoS event handlers: they sit in a callback group that refuses
them, and the thread serves both (one waiter per DDS reader: with the executor waiting on the reader's events
while the thread waited on its data, frames reached the thread ~2 ms late). The thread waits with rclpy's
wait-set binding, the one ``rclpy.wait_for_message`` uses; without it the executor serves them as usual.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile

_WAIT_NS = 200_000_000  # re-check the stop flag and the context this often (ns)


class _ServedElsewhere(ReentrantCallbackGroup):
    """Executors skip this group's entities: a :class:`DedicatedSubscription` thread serves them."""

    def can_execute(self, entity: Any) -> bool:
        return False


class DedicatedSubscription:
    """``node.create_subscription(...)`` whose callback runs on its own thread as messages arrive.

    ``on_error(exc)`` receives exceptions escaping ``callback`` (the thread keeps serving). :meth:`destroy`
    stops the thread and destroys the subscription.
    """

    def __init__(
        self,
        node: Node,
        msg_type: Any,
        topic: str,
        callback: Callable[[Any], None],
        qos_profile: QoSProfile,
        *,
        raw: bool = False,
        event_callbacks: Any = None,
        on_error: Callable[[Exception], None] | None = None,
        name: str = "ivm_ros_subscription",
    ) -> None:
        self._node, self._callback, self._on_error = node, callback, on_error
        threaded = hasattr(_rclpy, "WaitSet")
        self.subscription = node.create_subscription(
            msg_type,
            topic,
            callback,
            qos_profile,
            callback_group=_ServedElsewhere() if threaded else None,
            event_callbacks=event_callbacks,
            raw=raw,
        )
        self._running = threaded
        self._thread: threading.Thread | None = None
        if threaded:
            self._wake = GuardCondition(None, None, context=node.context)
            self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
            self._thread.start()

    @property
    def threaded(self) -> bool:
        """True when a thread serves the subscription (False: the executor does)."""
        return self._thread is not None

    def _serve(self) -> None:
        sub, context = self.subscription, self._node.context
        events = list(sub.event_handlers)
        try:
            with contextlib.ExitStack() as held:  # handles stay valid while waited on
                for entity in (sub.handle, self._wake.handle, context.handle, *events):
                    held.enter_context(entity)
                wait_set = _rclpy.WaitSet(1, 1, 0, 0, 0, len(events), context.handle)
                while self._running and context.ok():
                    wait_set.clear_entities()
                    wait_set.add_subscription(sub.handle)
                    wait_set.add_guard_condition(self._wake.handle)
                    for event in events:
                        event.add_to_wait_set(wait_set)
                    wait_set.wait(_WAIT_NS)
                    if not self._running:
                        break
                    for event in events:
                        if event.is_ready(wait_set):
                            self._call(event.callback, event.take_data)
                    if sub.handle.pointer in wait_set.get_ready_entities("subscription"):
                        self._call(self._callback, lambda: self._take(sub))
        except Exception as exc:  # the context went away under the wait (shutdown without destroy)
            if self._running and context.ok() and self._on_error is not None:
                self._on_error(exc)

    @staticmethod
    def _take(sub: Any) -> Any:
        taken = sub.handle.take_message(sub.msg_type, sub.raw)
        return None if taken is None else taken[0]

    def _call(self, callback: Callable[[Any], None], take: Callable[[], Any]) -> None:
        """``callback(take())`` unless nothing was taken; a failure is reported, never raised."""
        try:
            data = take()
            if data is not None:
                callback(data)
        except Exception as exc:  # a failed take or callback must not stop the subscription
            if self._on_error is not None:
                self._on_error(exc)

    def destroy(self) -> None:
        """Stops the thread (wakes it and waits for it), then destroys the subscription."""
        if self._thread is not None:
            self._running = False
            try:
                self._wake.trigger()
            except Exception:  # context already shut down: the wait times out within _WAIT_NS
                pass
            self._thread.join(timeout=5.0)
            self._thread = None
            self._wake.destroy()
        self._node.destroy_subscription(self.subscription)
