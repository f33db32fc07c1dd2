"""Declaring typed, documented parameters with ranges and choices, one table row each.

A node lists its parameters as :class:`Param` rows and declares them with :func:`declare_table`. ``choices``
are enforced, not only described: a value outside them is refused on every set with a reason that names the
allowed values, and a start value outside them (a ``-p name:=value`` override) is logged and listed by
:func:`invalid_parameters`, which the nodes check before they configure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.node import Node

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_ARRAY_TYPES = {
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    str: ParameterType.PARAMETER_STRING_ARRAY,
    bool: ParameterType.PARAMETER_BOOL_ARRAY,
}
#: Per node: parameter name -> allowed values (kept on the node under this attribute).
_CHOICES_ATTR = "_ivm_ros_param_choices"
#: Per node: parameter name -> why its start value is outside its choices.
_INVALID_ATTR = "_ivm_ros_param_invalid"


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter: name, default (its type is the parameter's type), description, optional range
    (``lo``..``hi``, for numbers), allowed values (``choices``, for strings) and whether it is read-only."""

    name: str
    default: Any
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = False


def declare_table(node: Node, table: Iterable[Param]) -> None:
    """Declares every row of ``table`` (see :func:`declare`)."""
    for p in table:
        declare(node, p.name, p.default, p.description, lo=p.lo, hi=p.hi, choices=p.choices, read_only=p.read_only)


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
    """Declares ``name`` with a descriptor (type, description, range, choices) and returns its value.
    With ``choices`` another value is refused on every set; a start value outside them is recorded
    (:func:`invalid_parameters`)."""
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if isinstance(default, (list, tuple)):
        desc.type = _ARRAY_TYPES[type(default[0]) if default else str]
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
    value = node.declare_parameter(name, default, desc).value
    if choices:
        _enforce_choices(node, name, tuple(choices), value)
    return value


def invalid_parameters(node: Node) -> list[str]:
    """Why each parameter whose start value (a ``-p name:=value`` override) is outside its choices cannot be
    used; empty when all are valid. Setting a valid value clears its entry. Nodes refuse to configure while
    this is not empty, so the node stays up and the parameter can be fixed at runtime."""
    return list(node.__dict__.get(_INVALID_ATTR, {}).values())


def _enforce_choices(node: Node, name: str, choices: tuple[str, ...], value: Any) -> None:
    """Registers ``choices`` for ``name`` (the node's first choice-bearing parameter installs the check that
    refuses other values on every set) and records a start value outside them."""
    table: dict[str, tuple[str, ...]] | None = node.__dict__.get(_CHOICES_ATTR)
    invalid: dict[str, str] = node.__dict__.setdefault(_INVALID_ATTR, {})
    if table is None:
        table = {}
        setattr(node, _CHOICES_ATTR, table)

        def check(params: list) -> SetParametersResult:
            for p in params:
                allowed = table.get(p.name)
                if allowed is not None and p.value not in allowed:
                    return SetParametersResult(successful=False,
                                               reason=f"{p.name} must be one of {list(allowed)}, got {p.value!r}")
            for p in params:
                invalid.pop(p.name, None)
            return SetParametersResult(successful=True)

        node.add_on_set_parameters_callback(check)
    table[name] = choices
    if value not in choices:
        invalid[name] = f"{name} must be one of {list(choices)}, got {value!r}"
        node.get_logger().error(f"parameter {invalid[name]}: set a valid value")


def declare_settings(node: Node, prefix: str, fields: dict[str, Any], owner: str) -> None:
    """Declares ``<prefix>.<name>`` for each of a plugin's settings (name -> default) not declared yet; the
    description names ``owner`` (e.g. "predictor 'lite'")."""
    for key, value in fields.items():
        if not node.has_parameter(f"{prefix}.{key}"):
            declare(node, f"{prefix}.{key}", list(value) if isinstance(value, tuple) else value,
                    f"setting '{key}' of {owner}")
