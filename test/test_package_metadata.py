"""The tree is a ROS 2 package (fast checks on the source): package.xml, console scripts, launch files and
parameter YAML against the nodes."""

from __future__ import annotations

import ast
import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"[\w-]+ = [\w.]+:\w+", node.value)
        ):
            name, target = (s.strip() for s in node.value.split("="))
            scripts[name] = target
    return scripts


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "ivm_ros"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "diagnostic_msgs", "lifecycle_msgs", "launch_ros"} <= deps
    assert (ROOT / "resource" / "ivm_ros").is_file()
    assert "script_dir=$base/lib/ivm_ros" in (ROOT / "setup.cfg").read_text()


def test_console_scripts_resolve():
    scripts = _console_scripts()
    assert {"masking_node", "policy_node", "sim_node", "ivm-ros"} <= set(scripts)
    for name, target in scripts.items():
        module, func = target.split(":")
        assert importlib.util.find_spec(module) is not None, f"{name}: module {module} missing"
        assert hasattr(importlib.import_module(module), func), f"{name}: {target} missing"


def _launch_files() -> list[Path]:
    files = sorted((ROOT / "launch").glob("*.launch.py"))
    assert files
    return files


@pytest.mark.parametrize("path", _launch_files(), ids=lambda p: p.name)
def test_launch_file_names_only_things_that_exist(path):
    text = path.read_text()
    ast.parse(text)
    executables = re.findall(r'executable="([^"]+)"', text)
    assert executables, "no nodes in launch file"
    scripts = _console_scripts()
    for exe in executables:
        assert exe in scripts, f"{path.name} starts {exe!r}, which setup.py does not install"
    for cfg in re.findall(r'"config", "([^"]+)"', text):
        assert (ROOT / "config" / cfg).is_file(), f"{path.name} names missing config/{cfg}"


def _masking_node(context):
    from rclpy.parameter import Parameter

    from ivm_ros.ros.masking_node import MaskingNode

    return MaskingNode(context=context, parameter_overrides=[Parameter("autostart", value=False)])


def _policy_node(context):
    pytest.importorskip("jax")  # the octo policy's settings module imports jax (not octo)
    from rclpy.parameter import Parameter

    from ivm_ros.ros.policy_node import PolicyNode

    return PolicyNode(context=context, parameter_overrides=[Parameter("autostart", value=False)])


def _policy_node_octo(context):
    pytest.importorskip("jax")
    from rclpy.parameter import Parameter

    from ivm_ros.ros.policy_node import PolicyNode

    overrides = [Parameter("autostart", value=False), Parameter("policy", value="octo")]
    return PolicyNode(context=context, parameter_overrides=overrides)


def _flatten(params: dict, prefix: str = "") -> dict:
    """ROS parameter YAML nests dotted names (policy_config: {window: 2} is policy_config.window)."""
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _sim_node(context):
    pytest.importorskip("pybullet")
    from ivm_ros_sim.ros.sim_node import SimNode
    from rclpy.parameter import Parameter

    small = {"static_size": 32, "gripper_size": 16, "lockstep": True}
    return SimNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in small.items()])


@pytest.mark.parametrize(
    "file, name, make",
    [("masking_node", "masking_node", _masking_node), ("sim_node", "sim_node", _sim_node),
     ("policy_node", "policy_node", _policy_node), ("policy_node_octo", "policy_node", _policy_node_octo)],
    ids=["masking", "sim", "policy", "policy-octo"],
)
def test_parameter_yaml_matches_the_node(file, name, make):
    """Every key in config/<node>.yaml is a parameter the node declares (typos would be silently ignored), with the
    declared type, and each node's file sets every parameter it declares (the file documents them all)."""
    import rclpy

    params = _flatten(yaml.safe_load((ROOT / "config" / f"{file}.yaml").read_text())[name]["ros__parameters"])
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = make(context)
        for key, value in params.items():
            assert node.has_parameter(key), f"config/{name}.yaml sets unknown parameter {key!r}"
            declared = node.get_parameter(key).value
            assert type(declared) is type(value) or isinstance(value, list), f"{key}: {value!r} vs {declared!r}"
        if name in ("sim_node", "policy_node"):
            bare = rclpy.create_node("bare", context=context)  # rclpy's own parameters (use_sim_time ...)
            declared = set(node.list_parameters([], 0).names) - set(bare.list_parameters([], 0).names)
            bare.destroy_node()
            assert declared == set(params), f"config/{name}.yaml misses {declared - set(params)}"
        # rclpy keeps the node's services in Node._services: a subclass must not shadow it, or the parameter
        # (and lifecycle) services silently stop being served (`ros2 param set` would hang).
        served = {s.srv_name.lstrip("/") for s in node.services}
        for srv in ("set_parameters", "get_parameters", "list_parameters"):
            assert f"{name}/{srv}" in served, f"{name} does not serve ~/{srv}: {sorted(served)}"
        if name != "sim_node":
            assert f"{name}/change_state" in served
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_launch_sim_argument_drives_use_sim_time():
    """`sim` defaults to false, use_sim_time follows it, and the simulator only starts under it."""
    tree = ast.parse((ROOT / "launch" / "manipulation.launch.py").read_text())
    defaults = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            name = node.args[0].value
            default = next(k.value for k in node.keywords if k.arg == "default_value")
            defaults[name] = ast.unparse(default)
    assert defaults["sim"] == "'false'"
    assert defaults["use_sim_time"] == "LaunchConfiguration('sim')"
    text = (ROOT / "launch" / "manipulation.launch.py").read_text()
    assert 'executable="sim_node"' in text and "condition=IfCondition(sim)" in text


def test_launch_policy_argument_starts_policy_node_on_the_masked_image():
    """`policy` defaults to false; policy_node reads the masked image and, in simulation, drives `action`."""
    text = (ROOT / "launch" / "manipulation.launch.py").read_text()
    tree = ast.parse(text)
    defaults = {
        node.args[0].value: ast.unparse(next(k.value for k in node.keywords if k.arg == "default_value"))
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"
    }
    assert defaults["policy"] == "'false'"
    assert defaults["policy_image_topic"] == "'masking_node/masked_image'"
    assert 'executable="policy_node"' in text and 'condition=IfCondition(LaunchConfiguration("policy"))' in text
    assert '("~/action", action_topic)' in text and "'action' if '" in text
    assert """"start_enabled": PythonExpression(["'", sim, "' == 'true'"])""" in text  # enabled only in simulation
