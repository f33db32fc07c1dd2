"""The tree is a ROS 2 package (fast checks on the source): package.xml, console scripts, launch files and
parameter YAML against the nodes."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
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


#: rosdep keys of package.xml -> the pip distribution each one installs (apt keys install the distro's build).
ROSDEP_PIP_NAMES = {
    "python3-numpy": "numpy", "python3-opencv": "opencv-python-headless", "python3-yaml": "pyyaml",
    "python3-tqdm": "tqdm", "python3-matplotlib": "matplotlib", "python3-transforms3d": "transforms3d",
    "python3-scipy": "scipy", "python3-pybullet-pip": "pybullet", "python3-gymnasium-pip": "gymnasium",
    "python3-transformers-pip": "transformers",
}
#: Keys that ros/rosdistro (8468e88) lacks or has only as end-of-life aliases: rosdep fails or pip-installs
#: unpinned torch + torchvision. `rclpy_lifecycle` is no ROS package (lifecycle nodes are part of rclpy).
ROSDEP_KEYS_THAT_FAIL = {"python3-safetensors-pip", "python3-pytorch-pip", "rclpy_lifecycle", "python3-jax-pip",
                         "python3-flax-pip", "python3-peft-pip"}


def _setup_requirements() -> set[str]:
    """Every pip requirement of setup.py but the ROS wheels and the test tools, as bare lower-case names."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            found |= {ast.literal_eval(e) for e in node.value.elts}
        if isinstance(node, ast.keyword) and node.arg == "extras_require":
            extras = ast.literal_eval(node.value)
            found |= {r for name in ("sim", "models", "policy") for r in extras[name]}
    return {re.split(r"[<>=\[; ]", r)[0].lower() for r in found} - {"setuptools"}


def test_every_python_dependency_has_a_rosdep_key_or_a_pip_line():
    """A ROS install gets each of setup.py's requirements from package.xml (rosdep) or requirements/ros.txt
    (pip), and package.xml names no key that rosdep cannot resolve."""
    deps = {e.text for e in ET.parse(ROOT / "package.xml").getroot().findall("exec_depend")}
    assert not deps & ROSDEP_KEYS_THAT_FAIL, deps & ROSDEP_KEYS_THAT_FAIL
    python_keys = {d for d in deps if d.startswith("python3-")}
    assert python_keys <= set(ROSDEP_PIP_NAMES), f"unknown key, check it against ros/rosdistro: {python_keys}"
    lines = (ROOT / "requirements" / "ros.txt").read_text().splitlines()
    pip_lines = {line.split("#")[0].strip().lower() for line in lines} - {""}
    by_rosdep = {ROSDEP_PIP_NAMES[k] for k in python_keys}
    missing = _setup_requirements() - by_rosdep - pip_lines
    assert not missing, f"neither rosdep nor requirements/ros.txt installs {sorted(missing)}"
    assert not by_rosdep & pip_lines, "installed twice (rosdep and pip)"


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

    params = _flatten(yaml.safe_load((ROOT / "config" / f"{file}.yaml").read_text())[f"/**/{name}"]["ros__parameters"])
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


def test_rosdep_key_checker_flags_what_rosdep_cannot_resolve(tmp_path):
    """tools/check_rosdep_keys.py on a small rosdistro tree: a released package and resolvable apt / pip keys
    pass; an unknown key, a key without a noble rule and a package of another distro are problems."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from check_rosdep_keys import check
    finally:
        sys.path.remove(str(ROOT / "tools"))
    (tmp_path / "rosdep").mkdir()
    (tmp_path / "kilted").mkdir()
    (tmp_path / "rosdep" / "base.yaml").write_text("{}\n")
    (tmp_path / "rosdep" / "python.yaml").write_text(yaml.safe_dump({
        "python3-numpy": {"debian": ["python3-numpy"], "ubuntu": ["python3-numpy"]},
        "python3-x-pip": {"debian": {"pip": {"packages": ["x"]}}, "ubuntu": {"pip": {"packages": ["x"]}}},
        "python3-old": {"debian": ["python3-old"], "ubuntu": {"*": ["python3-old"], "noble": None}},
    }))
    (tmp_path / "kilted" / "distribution.yaml").write_text(yaml.safe_dump({"repositories": {
        "rclpy": {"release": {"packages": ["rclpy", "rclpy_components"]}}, "std_msgs": {"release": {}}}}))
    deps = ["rclpy", "python3-numpy", "python3-x-pip", "python3-old", "rclpy_lifecycle", "std_msgs"]
    xml = tmp_path / "package.xml"
    xml.write_text("<package format='3'>" + "".join(f"<exec_depend>{d}</exec_depend>" for d in deps) + "</package>")
    problems = check(tmp_path, ["kilted"], xml)
    assert sorted(problems) == [
        "python3-old: does not resolve on ubuntu noble",
        "rclpy_lifecycle: neither a released package of ['kilted'] nor a rosdep key",
        "std_msgs: neither a released package of ['kilted'] nor a rosdep key",
    ]


@pytest.mark.parametrize("file, name", [("masking_node", "masking_node"), ("sim_node", "sim_node"),
                                        ("policy_node", "policy_node"), ("policy_node_octo", "policy_node")])
def test_parameter_files_apply_in_any_namespace(file, name):
    """`namespace:=robot` (or one node per camera) must not silently drop the params file: rcl applies a bare
    ``masking_node:`` section only to the node in the root namespace, ``/**/masking_node:`` to every one."""
    import rclpy
    from rclpy.node import Node

    path = ROOT / "config" / f"{file}.yaml"
    keys = _flatten(yaml.safe_load(path.read_text())[f"/**/{name}"]["ros__parameters"])
    context = rclpy.Context()
    rclpy.init(context=context, args=["--ros-args", "--params-file", str(path)])
    try:
        for ns in ("", "robot", "/cam_front"):
            node = Node(name, namespace=ns, context=context, automatically_declare_parameters_from_overrides=True)
            missing = [k for k in keys if not node.has_parameter(k)]
            node.destroy_node()
            assert not missing, f"{path.name} does not reach /{ns.strip('/')}/{name}: {missing[:3]}"
    finally:
        rclpy.shutdown(context=context)
