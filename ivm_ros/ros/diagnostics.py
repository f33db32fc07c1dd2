"""Building diagnostic_msgs/DiagnosticArray messages from plain key/value facts."""

from __future__ import annotations

import math
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)
