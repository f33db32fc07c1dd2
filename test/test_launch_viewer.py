"""manipulation.launch.py's live view: `viewer` (none by default) starts viewer_node on the masking node's camera
and instruction topics, its host and ports as launch arguments (checked on the source: launch_ros is not on PyPI)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "manipulation.launch.py"


def _arguments() -> dict[str, dict[str, str]]:
    out = {}
    for node in ast.walk(ast.parse(LAUNCH.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            out[node.args[0].value] = {k.arg: ast.unparse(k.value) for k in node.keywords}
    return out


def test_viewer_arguments_and_defaults():
    args = _arguments()
    assert args["viewer"]["default_value"] == "'none'"
    assert args["viewer"]["choices"] == "['none', 'web', 'foxglove']"
    assert args["viewer_host"]["default_value"] == "'127.0.0.1'"  # never every interface unless asked
    assert (args["web_port"]["default_value"], args["foxglove_port"]["default_value"]) == ("'8080'", "'8765'")


def test_viewer_node_follows_the_masking_nodes_topics():
    text = LAUNCH.read_text()
    assert 'executable="viewer_node"' in text
    assert """condition=IfCondition(PythonExpression(["'", LaunchConfiguration("viewer"), "' != 'none'"]))""" in text
    assert 'remappings=[("image_raw", image_topic), ("instruction", LaunchConfiguration("instruction_topic"))]' in text
    from ivm_ros.ros.viewer_node import PARAMETERS

    names = {p.name for p in PARAMETERS}
    assert {"viewer", "host", "web_port", "foxglove_port"} <= names  # what the launch file sets
