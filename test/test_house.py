"""The house rules of DESIGN.md, checked on the source: imports point down only, and rooms stay small enough
for one person to hold (classes <= 250 lines under ivm_ros/ros and sim/, functions <= 60 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60
#: Library packages: they may import each other (downward) but never the pipeline, ROS or commands above them.
LIBRARY = ("ivm_ros/masking", "ivm_ros/models", "ivm_ros/policies")
UPWARD = ("ivm_ros.pipeline", "ivm_ros.ros", "ivm_ros.commands", "ivm_ros_sim")


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", _modules(*LIBRARY), ids=lambda p: str(p.relative_to(ROOT)))
def test_library_modules_import_nothing_above_them(path: Path) -> None:
    imported = _imported(ast.parse(path.read_text()))
    upward = sorted(n for n in imported if any(_is_under(n, up) for up in UPWARD))
    assert not upward, f"{path.relative_to(ROOT)} imports {upward}: library packages must not import upward"


@pytest.mark.parametrize("path", _modules("ivm_ros"), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_ros_and_commands_import_rclpy(path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    if rel.startswith(("ivm_ros/ros/", "ivm_ros/commands/")):
        return
    imported = _imported(ast.parse(path.read_text()))
    ros = sorted(n for n in imported if _is_under(n, "rclpy") or n.split(".")[0].endswith("_msgs"))
    assert not ros, f"{rel} imports {ros}: only ivm_ros/ros (and commands) may import ROS"


def test_ivm_ros_never_imports_the_simulation_package() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _modules("ivm_ros")
        if any(_is_under(n, "ivm_ros_sim") for n in _imported(ast.parse(p.read_text())))
    ]
    assert not offenders, f"sim/ depends on ivm_ros, never the reverse: {offenders}"


def _sizes(folders: tuple[str, ...], kind: type | tuple[type, ...]) -> list[tuple[str, int]]:
    found = []
    for path in _modules(*folders):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, kind):
                found.append((f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node.end_lineno - node.lineno + 1))
    return found


def test_classes_under_ros_and_sim_stay_small() -> None:
    big = [(where, n) for where, n in _sizes(("ivm_ros/ros", "sim"), ast.ClassDef) if n > MAX_CLASS_LINES]
    assert not big, f"classes over {MAX_CLASS_LINES} lines: {big}"


def test_functions_under_ros_and_sim_stay_small() -> None:
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    big = [(where, n) for where, n in _sizes(("ivm_ros/ros", "sim"), kinds) if n > MAX_FUNCTION_LINES]
    assert not big, f"functions over {MAX_FUNCTION_LINES} lines: {big}"
