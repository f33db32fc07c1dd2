"""Runs launch/manipulation.launch.py without ROS's `launch` / `launch_ros` (not on PyPI): stand-in modules whose
actions record their arguments, and a context that answers LaunchConfiguration(...).perform() from a dict. So a
test can see which nodes the launch description (and its OpaqueFunction) builds, with which namespaces,
parameters and remappings."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any


class Recorded:
    """Any launch action or substitution: its positional and keyword arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.args}, {self.kwargs})"


class LaunchConfiguration(Recorded):
    def perform(self, context: dict[str, str]) -> str:
        return context[self.args[0]]


class LaunchDescription(Recorded):
    @property
    def entities(self) -> list[Any]:
        return list(self.args[0])


_NAMES = {
    "launch.actions": ["DeclareLaunchArgument", "OpaqueFunction", "SetEnvironmentVariable"],
    "launch.conditions": ["IfCondition"],
    "launch.substitutions": ["EqualsSubstitution", "PathJoinSubstitution", "PythonExpression"],
    "launch_ros.actions": ["Node"],
    "launch_ros.substitutions": ["FindPackageShare"],
}


def stub_modules(monkeypatch) -> None:
    """Puts the stand-in modules into sys.modules for the test (monkeypatch undoes it)."""
    for package in ("launch", "launch_ros"):
        monkeypatch.setitem(sys.modules, package, types.ModuleType(package))
    launch = sys.modules["launch"]
    launch.LaunchDescription, launch.LaunchContext = LaunchDescription, dict
    for name, classes in _NAMES.items():
        module = types.ModuleType(name)
        for cls in classes:
            setattr(module, cls, type(cls, (Recorded,), {}))
        module.LaunchConfiguration = LaunchConfiguration
        monkeypatch.setitem(sys.modules, name, module)
        setattr(sys.modules[name.split(".")[0]], name.split(".")[1], module)


def load(path: Path, monkeypatch) -> tuple[LaunchDescription, dict[str, dict[str, Any]]]:
    """(the launch description, each declared argument's keyword arguments by name)."""
    stub_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location("manipulation_launch_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    arguments = {e.args[0]: e.kwargs for e in description.entities if type(e).__name__ == "DeclareLaunchArgument"}
    return description, arguments


def opaque_nodes(description: LaunchDescription, arguments: dict[str, dict[str, Any]],
                 **values: str) -> list[dict[str, Any]]:
    """The keyword arguments of each Node the launch's OpaqueFunction builds for these argument ``values`` (the
    others at their plain-string defaults)."""
    context = {name: kw["default_value"] for name, kw in arguments.items() if isinstance(kw["default_value"], str)}
    context["use_sim_time"] = "false"
    context.update(values)
    opaque = [e for e in description.entities if type(e).__name__ == "OpaqueFunction"]
    assert len(opaque) == 1
    return [node.kwargs for node in opaque[0].kwargs["function"](context)]
