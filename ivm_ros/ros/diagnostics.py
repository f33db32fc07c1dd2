"""Building diagnostic_msgs/DiagnosticArray messages from plain key/value facts."""

from __future__ import annotations

import math
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from ivm_ros.inputs import InputRejected

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def status(
    name: str, level: bytes, message: str, values: dict[str, Any], hardware_id: str = "ivm_ros"
) -> DiagnosticStatus:
    """One DiagnosticStatus; floats are printed with 3 decimals, NaN as 'n/a'."""
    out = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id)
    out.values = [KeyValue(key=k, value=_fmt(v)) for k, v in values.items()]
    return out


def array(stamp, *statuses: DiagnosticStatus) -> DiagnosticArray:
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = list(statuses)
    return msg


def summarize(values: dict[str, Any], last_error: str = "", condition: tuple[bytes, str] | None = None,
              ok_message: str = "ok", rejected_what: str = "input(s)") -> tuple[bytes, str]:
    """(level, message) of a node's status: its last error (ERROR), else its own ``condition``, else the
    ``rejected_*`` counters in ``values`` (WARN), else OK with ``ok_message``."""
    rejected = sum(v for k, v in values.items() if k.startswith("rejected_"))
    if last_error:
        return ERROR, last_error
    if condition is not None:
        return condition
    if rejected:
        return WARN, f"{rejected} {rejected_what} rejected"
    return OK, ok_message


def publish(node, publisher, task: str, level: bytes, message: str, values: dict[str, Any]) -> None:
    """Publishes one status named ``"<fully qualified node name>: <task>"`` on ``publisher`` (/diagnostics),
    stamped with the node's clock."""
    name = f"{node.get_fully_qualified_name()}: {task}"
    publisher.publish(array(node.get_clock().now().to_msg(), status(name, level, message, values)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


class RejectionCounting:
    """Mixin for nodes with ``self.counters`` (:class:`ivm_ros.runtime.Counters`) and a ``log_throttle`` parameter:
    bad input is counted as ``rejected_<reason>`` and logged (throttled); incompatible QoS as
    ``qos_incompatible_<policy>`` (the handlers of :mod:`ivm_ros.ros.qos` log it)."""

    def _reject(self, reason: str, detail: str) -> None:
        self.counters.add(f"rejected_{reason}")  # type: ignore[attr-defined]
        self.get_logger().warning(  # type: ignore[attr-defined]
            f"rejected ({reason}): {detail}",
            throttle_duration_sec=self.get_parameter("log_throttle").value,  # type: ignore[attr-defined]
        )

    def _accepted(self, check, *args, prefix: str = "") -> bool:
        """Runs ``check(*args)``; an :class:`~ivm_ros.inputs.InputRejected` it raises is counted as
        ``rejected_<prefix><reason>`` and logged, and the result is False."""
        try:
            check(*args)
        except InputRejected as exc:
            self._reject(f"{prefix}{exc.reason}", exc.detail)
            return False
        return True

    def _count_qos(self, policy: str) -> None:
        self.counters.add(f"qos_incompatible_{policy.lower()}")  # type: ignore[attr-defined]
