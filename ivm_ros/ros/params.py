"""Declaring typed, documented parameters with ranges in one line each."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.node import Node

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] | None = None,
    read_only: bool = False,
) -> Any:
    """Declares ``name`` with a descriptor (type, description, range, choices) and returns its value."""
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if isinstance(default, (list, tuple)):
        desc.type = {
            int: ParameterType.PARAMETER_INTEGER_ARRAY,
            float: ParameterType.PARAMETER_DOUBLE_ARRAY,
            str: ParameterType.PARAMETER_STRING_ARRAY,
            bool: ParameterType.PARAMETER_BOOL_ARRAY,
        }[type(default[0]) if default else str]
        default = list(default)
    else:
        desc.type = _TYPES[type(default)]
    if choices:
        desc.additional_constraints = "one of: " + ", ".join(choices)
    if lo is not None and hi is not None:
        if isinstance(default, float):
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        elif isinstance(default, int) and not isinstance(default, bool):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    return node.declare_parameter(name, default, desc).value


def declare_settings(node: Node, prefix: str, fields: dict[str, Any], owner: str) -> None:
    """Declares ``<prefix>.<name>`` for each of a plugin's settings (name -> default) not declared yet; the
    description names ``owner`` (e.g. "predictor 'lite'")."""
    for key, value in fields.items():
        if not node.has_parameter(f"{prefix}.{key}"):
            declare(node, f"{prefix}.{key}", list(value) if isinstance(value, tuple) else value,
                    f"setting '{key}' of {owner}")
