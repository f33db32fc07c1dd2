"""A node whose model or policy cannot load says so: an ERROR on /diagnostics with the install command, a loud
log line at autostart, and (``exit_on_failure``) exit status 1 for launch respawn or a supervisor."""

from __future__ import annotations

import os
import subprocess
import sys

from diagnostic_msgs.msg import DiagnosticStatus
from lifecycle_msgs.msg import State
from rclpy.parameter import Parameter
from support import TEST_ROOT
from support.ros import Probe, Spinner, wait_for

from ivm_ros.ros.masking_node import MaskingNode


def _statuses(probe: Probe, node_name: str) -> list[DiagnosticStatus]:
    return [s for msg in list(probe.diagnostics) for s in msg.status if s.name.startswith(f"/{node_name}:")]


def test_a_missing_package_is_an_error_status_with_the_pip_command_until_configure_succeeds(ros_context,
                                                                                           monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` -> ModuleNotFoundError
    node = MaskingNode(context=ros_context, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("diagnostics_period", value=0.1),
        Parameter("model", value="support.predictors:NeedsTransformersPredictorForTest")])
    probe = Probe(ros_context)
    probe.listen_diagnostics()
    spinner = Spinner(ros_context, node, probe)
    try:
        node.trigger_configure()
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        assert wait_for(lambda: len(_statuses(probe, "masking_node")) >= 3, 5), "no repeated ERROR status"
        status = _statuses(probe, "masking_node")[-1]
        values = {kv.key: kv.value for kv in status.values}
        assert status.level == DiagnosticStatus.ERROR
        assert "cannot load predictor" in status.message and "transformers" in status.message
        assert values["state"] == "unconfigured"
        assert values["fix"].startswith("pip install transformers (or, in a ROS workspace: rosdep install")

        assert node.set_parameters([Parameter("model", value="keep_all")])[0].successful
        node.trigger_configure()
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_INACTIVE
        probe.diagnostics.clear()
        assert wait_for(lambda: len(_statuses(probe, "masking_node")) >= 2, 5)
        assert all(s.level != DiagnosticStatus.ERROR for s in _statuses(probe, "masking_node"))
    finally:
        spinner.close()
        probe.destroy_node()
        node.on_shutdown(None)
        node.destroy_node()


def _run_node(module: str, *params: str, timeout: float = 90, drop_env: tuple[str, ...] = ()
              ) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TEST_ROOT), os.environ.get("PYTHONPATH", "")]))
    for name in drop_env:
        env.pop(name, None)
    args = [a for p in params for a in ("-p", p)]
    return subprocess.run([sys.executable, "-m", module, "--ros-args", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_exit_on_failure_ends_the_process_with_status_1_and_says_why():
    out = _run_node("ivm_ros.ros.masking_node", "model:=ivm_ros_module_absent_for_test:Predictor",
                    "exit_on_failure:=true")
    text = out.stdout + out.stderr
    assert out.returncode == 1, text[-3000:]
    assert "AUTOSTART FAILED: /masking_node is unconfigured" in text, text[-3000:]
    assert "No module named 'ivm_ros_module_absent_for_test'" in text
    assert "Exiting with status 1 (exit_on_failure)" in text


def test_policy_node_exits_too_when_its_policy_cannot_load():
    out = _run_node("ivm_ros.ros.policy_node", "policy:=ivm_ros_module_absent_for_test:Policy",
                    "exit_on_failure:=true")
    text = out.stdout + out.stderr
    assert out.returncode == 1, text[-3000:]
    assert "AUTOSTART FAILED: /policy_node is unconfigured" in text and "cannot load policy" in text, text[-3000:]


def test_a_frame_in_flight_when_ctrl_c_shuts_the_context_down_is_no_error(ros_context):
    """Ctrl-C: rclpy's signal handler shuts the context down while the worker may be publishing; that used to log
    'RCLError: publisher's context is invalid' as a dropped frame (1 of 3 launches)."""
    import numpy as np
    import rclpy

    from ivm_ros.ros.conversions import array_to_image
    from ivm_ros.ros.masking_node import MaskingFrame

    node = MaskingNode(context=ros_context, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("default_instruction", value="lift the block"),
        Parameter("model", value="support.predictors:SlowCenterPredictorForTest"),
        Parameter("model_config.delay_s", value=0.3)])
    try:
        node.trigger_configure()
        node.trigger_activate()
        msg = array_to_image(np.zeros((8, 8, 3), np.uint8), "rgb8")
        node.mailbox.put(MaskingFrame.from_message(msg, 0.0))
        taken = lambda: not np.isnan(node.meters.wait_ms.percentile(50))  # noqa: E731
        assert wait_for(taken, 5)  # the worker took the frame and is predicting
        rclpy.shutdown(context=ros_context)
        assert wait_for(lambda: node._worker is None or not node._worker.is_alive(), 5)
        assert node.counters.get("dropped_error") == 0 and node._last_error == ""
    finally:
        node._stop_worker()
        node.destroy_node()


def test_a_node_log_has_no_progress_bars():
    """transformers drew a 'Loading weights' tqdm bar into masking_node's start-up log."""
    from support.ros import stop_node_process

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TEST_ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    env.pop("TQDM_DISABLE", None)
    proc = subprocess.Popen([sys.executable, "-m", "ivm_ros.ros.masking_node", "--ros-args", "-p", "model:=lite"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        for line in proc.stdout:  # until the node is active (the model loaded)
            lines.append(line)
            if "active:" in line or len(lines) > 200:
                break
    finally:
        lines.append(stop_node_process(proc))
    text = "".join(lines)
    assert "configured: model=lite" in text, text[-2000:]
    assert "it/s]" not in text and "%|" not in text, text[:2000]


def test_a_node_started_without_the_fast_dds_profile_says_so_at_start():
    """The cheap checks of `ivm-ros doctor` run at node start: a missing profile is a WARN with the export line."""
    out = _run_node("ivm_ros.ros.masking_node", "model:=ivm_ros_module_absent_for_test:Predictor",
                    "exit_on_failure:=true",
                    drop_env=("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"))
    text = out.stdout + out.stderr
    warn = [line for line in text.splitlines() if "[WARN]" in line and "default profile" in line]
    assert warn and "export FAST" in warn[0] and "_DEFAULT_PROFILES_FILE=" in warn[0], text[-3000:]
    assert "ROS_DOMAIN_ID=" in text
