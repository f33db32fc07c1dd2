"""The tree works as an installed ROS 2 package (slow; skipped where colcon or launch_ros are missing):
`colcon build` installs every module and data file, and `ros2 launch` brings the nodes up with frames flowing."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


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
    for name in ("masking_node", "policy_node", "sim_node", "viewer_node", "ivm-ros"):
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
        from ivm_ros_sim.calvin.scene import shared_dir

        try:
            os.environ["IVM_ROS_SHARED"] = str(shared_dir().parent)  # no shared/ beside the copy
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
