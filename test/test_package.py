"""The tree works as a ROS 2 package: package.xml, setup.py data files, launch files, parameter YAML."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import threading
import time
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
    from ivm_ros_sim.sim_node import SimNode
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


def _copy_tree(dest: Path) -> None:
    """The files git would commit (tracked and untracked-not-ignored), or the tree less build outputs."""
    try:
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                                capture_output=True, check=True, timeout=30).stdout.decode().split("\0")
    except (OSError, subprocess.SubprocessError):
        heavy = (".git", ".venv", "out", "build", "install", "log", "__pycache__", "*.egg-info", ".*_cache")
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*heavy))
        return
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)


@pytest.fixture(scope="module")
def colcon_install(tmp_path_factory) -> Path | None:
    """install/ivm_ros of `colcon build` of a copy of this tree (as a workspace's src/ivm_ros), or None without
    colcon on PATH. colcon runs setup.py with its own Python: the one the installed executables will use."""
    colcon = shutil.which("colcon")
    if colcon is None:
        return None
    ws = tmp_path_factory.mktemp("colcon_ws")
    _copy_tree(ws / "src" / "ivm_ros")
    listed = subprocess.run([colcon, "--log-base", "log", "list", "--base-paths", "src"], cwd=ws,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "(ros.ament_python)" in listed.stdout, f"colcon does not see an ament_python package: {listed.stdout}"
    built = subprocess.run([colcon, "--log-base", "log", "build", "--base-paths", "src", "--build-base", "build",
                            "--install-base", "install"], cwd=ws, capture_output=True, text=True,
                           timeout=300)
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    return ws / "install" / "ivm_ros"


def test_colcon_build_installs_the_package(colcon_install):
    """What `ros2 run` / `ros2 launch` look for: executables in lib/ivm_ros, launch and config files and
    package.xml in share/ivm_ros, the ament index marker, and every module and data file of the tree."""
    if colcon_install is None:
        pytest.skip("colcon is not installed (pip install colcon-core colcon-ros)")
    for name in ("masking_node", "policy_node", "sim_node", "ivm-ros"):
        exe = colcon_install / "lib" / "ivm_ros" / name
        assert exe.is_file() and os.access(exe, os.X_OK), f"lib/ivm_ros/{name} missing"
    share = colcon_install / "share"
    assert (share / "ament_index" / "resource_index" / "packages" / "ivm_ros").is_file()
    assert (share / "ivm_ros" / "package.xml").read_bytes() == (ROOT / "package.xml").read_bytes()
    for sub, patterns in (("launch", ["*.launch.py"]), ("config", ["*.yaml", "*.xml"])):
        files = {p.name for pattern in patterns for p in (ROOT / sub).glob(pattern)}
        assert files and files <= {p.name for p in (share / "ivm_ros" / sub).iterdir()}, sub
    (site,) = colcon_install.glob("lib/python3*/site-packages")
    for folder, package in (("ivm_ros", "ivm_ros"), ("sim", "ivm_ros_sim")):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".safetensors", ".msgpack") and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT / folder)
                assert (site / package / rel).is_file(), f"{folder}/{rel} is not installed"


@pytest.fixture(scope="module")
def ivm_ros_prefix(colcon_install) -> Path:
    """The install prefix of ivm_ros: this tree built by colcon, else the one the environment points at (a
    sourced workspace); skip without either."""
    if colcon_install is not None:
        return colcon_install
    try:
        from ament_index_python.packages import get_package_prefix

        return Path(get_package_prefix("ivm_ros"))
    except (ImportError, LookupError, OSError):
        pytest.skip("no ivm_ros install: neither colcon nor a sourced workspace")


class _LaunchProbe:
    """From a thread: waits for the launched nodes (lifecycle ones active, others in the graph) and for
    messages on the given topics, records what it saw, then shuts the launch down. `on_exit` (an OnProcessExit
    handler) records every process exit, and whether it came while the nodes were still being checked."""

    def __init__(self, service, lifecycle: list[str], plain: list[str], topics: dict, timeout: float) -> None:
        self.service, self.lifecycle, self.plain, self.topics, self.timeout = service, lifecycle, plain, topics, timeout
        self.states: dict[str, str] = {}
        self.seen: set[str] = set()
        self.received: set[str] = set()
        self.error: BaseException | None = None
        self.checking = True  # a process exiting meanwhile died on its own
        self.exits: list[tuple[str, int, bool]] = []
        self._subs: list = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def on_exit(self, event, _context) -> None:
        self.exits.append((event.action.name, event.returncode, self.checking))

    def _run(self) -> None:
        import rclpy
        from launch.events import Shutdown
        from lifecycle_msgs.srv import GetState
        from rclpy.executors import SingleThreadedExecutor

        context = rclpy.Context()
        rclpy.init(context=context)
        node = rclpy.create_node("launch_probe", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        try:
            clients = {n: node.create_client(GetState, f"/{n}/get_state") for n in self.lifecycle}
            self._subs = [node.create_subscription(t, topic, lambda _m, topic=topic: self.received.add(topic), 10)
                          for topic, t in self.topics.items()]
            pending: dict = {}
            end = time.monotonic() + self.timeout
            while time.monotonic() < end and not self.exits:
                executor.spin_once(timeout_sec=0.1)
                names = {n for n, ns in node.get_node_names_and_namespaces() if ns == "/"}
                self.seen |= names & set(self.plain)
                for name, client in clients.items():
                    if self.states.get(name) == "active":
                        continue
                    future, sent = pending.get(name, (None, 0.0))
                    if future is not None and future.done():
                        self.states[name] = future.result().current_state.label
                        del pending[name]
                    elif future is not None and time.monotonic() - sent > 2.0:
                        # a request sent before discovery has matched both ways may never be answered
                        client.remove_pending_request(future)
                        del pending[name]
                    elif future is None and client.service_is_ready():
                        pending[name] = (client.call_async(GetState.Request()), time.monotonic())
                if (all(self.states.get(n) == "active" for n in self.lifecycle) and self.seen == set(self.plain)
                        and self.received == set(self.topics)):
                    break
                time.sleep(0.2)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.checking = False
            executor.shutdown()
            node.destroy_node()
            rclpy.shutdown(context=context)
            self.service.emit_event(Shutdown(reason="launch probe done"))


@pytest.mark.skipif(
    importlib.util.find_spec("launch_ros") is None, reason="launch_ros is not on PyPI; needs a ROS install"
)
@pytest.mark.parametrize("sim, policy", [("false", "false"), ("true", "true")], ids=["camera", "sim-policy"])
def test_launch_file_runs(ivm_ros_prefix, sim, policy):
    """manipulation.launch.py starts every node it names from the install: masking_node (and policy_node) reach
    `active`, sim_node joins the graph, frames flow (simulator -> masked image -> policy action), no process
    exits before the launch is shut down, and all exit cleanly on SIGINT."""
    from launch.actions import IncludeLaunchDescription, RegisterEventHandler, Shutdown, TimerAction
    from launch.event_handlers import OnProcessExit
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float64MultiArray

    from launch import LaunchDescription, LaunchService

    saved = dict(os.environ)  # the launch sets FASTDDS_DEFAULT_PROFILES_FILE in this process's environment
    lifecycle, plain, topics = ["masking_node"], [], {}
    if sim == "true":
        pytest.importorskip("pybullet")
        from ivm_ros_sim.scene import shared_dir

        try:
            os.environ["IVM_ROS_SHARED"] = str(shared_dir().parent)  # an installed sim_node cannot guess it
        except FileNotFoundError as exc:
            pytest.skip(str(exc))
        plain.append("sim_node")
        topics["/masking_node/masked_image"] = Image
    if policy == "true":
        pytest.importorskip("jax")
        lifecycle.append("policy_node")
        if sim == "true":
            topics["/action"] = Float64MultiArray
    sites = [*ivm_ros_prefix.glob("lib/python3*/site-packages"), *ivm_ros_prefix.glob("local/lib/python3*/dist-*")]
    for var, paths in (("AMENT_PREFIX_PATH", [ivm_ros_prefix]), ("PYTHONPATH", sites)):  # as install/setup.bash
        os.environ[var] = os.pathsep.join([*map(str, paths), *filter(None, [os.environ.get(var)])])

    service = LaunchService()
    probe = _LaunchProbe(service, lifecycle, plain, topics, timeout=40.0)
    service.include_launch_description(
        LaunchDescription(
            [
                RegisterEventHandler(OnProcessExit(on_exit=probe.on_exit)),
                IncludeLaunchDescription(
                    PythonLaunchDescriptionSource(str(ROOT / "launch" / "manipulation.launch.py")),
                    launch_arguments=[("sim", sim), ("policy", policy)],
                ),
                TimerAction(period=55.0, actions=[Shutdown(reason="test timeout")]),
            ]
        )
    )
    try:
        probe.thread.start()
        rc = service.run()
        probe.thread.join(timeout=10)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert probe.error is None, repr(probe.error)
    assert rc == 0
    exits = probe.exits
    early = [(name, code) for name, code, checking in exits if checking]
    assert not early, f"processes exited while the nodes were being checked: {early}"
    assert {n: probe.states.get(n) for n in lifecycle} == dict.fromkeys(lifecycle, "active")
    assert probe.seen == set(plain)
    assert probe.received == set(topics), f"no messages on {set(topics) - probe.received}"
    assert {name.rsplit("-", 1)[0] for name, _, _ in exits} == {*lifecycle, *plain}, exits  # e.g. masking_node-1
    assert all(code == 0 for _, code, _ in exits), f"unclean exits: {exits}"
