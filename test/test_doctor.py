"""The ROS-free checks of ``ivm-ros doctor`` (ivm_ros/doctor.py): each situation gives a specific level and advice."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivm_ros import doctor
from ivm_ros.doctor import Finding

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config" / "fastdds.xml"
KILTED = {"ROS_DISTRO": "kilted"}
JAZZY = {"ROS_DISTRO": "jazzy"}
BEST_EFFORT = {"node": "/camera", "type": "sensor_msgs/msg/Image", "reliability": "best_effort",
               "durability": "volatile"}
RELIABLE = {**BEST_EFFORT, "reliability": "reliable"}


def _profile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "profile.xml"
    path.write_text(f'<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">{body}</profiles>')
    return path


def _by_check(findings: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in findings}


def test_finding_rejects_unknown_levels_and_prints_advice_indented():
    with pytest.raises(ValueError, match="level"):
        Finding("x", "fatal", "m")
    assert Finding("rate", "warn", "lost", "do this").line() == "WARN  rate: lost\n      -> do this"
    assert doctor.worst([Finding("a", "ok", ""), Finding("b", "error", ""), Finding("c", "warn", "")]) == "error"
    assert doctor.worst([]) == "ok"


def test_the_shipped_profile_has_a_segment_for_a_frame(tmp_path):
    assert doctor.shm_segment_size(SHIPPED) == 16 * 1024 * 1024
    udp_only = _profile(tmp_path, "<transport_descriptors><transport_descriptor><transport_id>u</transport_id>"
                        "<type>UDPv4</type></transport_descriptor></transport_descriptors><participant "
                        'profile_name="p" is_default_profile="true"><rtps><userTransports><transport_id>u'
                        "</transport_id></userTransports><useBuiltinTransports>false</useBuiltinTransports>"
                        "</rtps></participant>")
    assert doctor.shm_segment_size(udp_only) is None
    builtin = _profile(tmp_path, '<participant profile_name="p" is_default_profile="true"><rtps/></participant>')
    assert doctor.shm_segment_size(builtin) == doctor.FASTDDS_DEFAULT_SEGMENT


def test_transport_ok_with_the_shipped_profile():
    found = _by_check(doctor.transport_findings({**KILTED, "FASTDDS_DEFAULT_PROFILES_FILE": str(SHIPPED)}))
    assert found["transport"].level == "ok" and "16384 KiB" in found["transport"].message
    assert found["discovery"].level == "ok" and "ROS_DOMAIN_ID=0" in found["discovery"].message


def test_transport_warns_on_fast_dds_defaults_with_the_export_line():
    found = doctor.transport_findings(KILTED, SHIPPED)[0]
    assert found.level == "warn" and "default profile" in found.message
    assert found.advice.startswith(f"export FASTDDS_DEFAULT_PROFILES_FILE={SHIPPED}")


def test_jazzy_ignores_the_new_variable_name():
    """Fast DDS 2 (Humble, Jazzy) reads only FASTRTPS_DEFAULT_PROFILES_FILE (ros2/rmw_fastrtps#862)."""
    found = doctor.transport_findings({**JAZZY, "FASTDDS_DEFAULT_PROFILES_FILE": str(SHIPPED)}, SHIPPED)[0]
    assert found.level == "warn" and "Fast DDS 2 reads only FASTRTPS_DEFAULT_PROFILES_FILE" in found.message
    assert found.advice.startswith(f"export FASTRTPS_DEFAULT_PROFILES_FILE={SHIPPED}")
    assert doctor.transport_findings({**JAZZY, "FASTRTPS_DEFAULT_PROFILES_FILE": str(SHIPPED)})[0].level == "ok"


def test_kilted_takes_the_old_name_with_a_note():
    found = doctor.transport_findings({**KILTED, "FASTRTPS_DEFAULT_PROFILES_FILE": str(SHIPPED)})[0]
    assert found.level == "ok" and "deprecation" in found.message


def test_transport_errors_on_a_missing_or_broken_profile_and_warns_on_a_small_segment(tmp_path):
    missing = doctor.transport_findings({**KILTED, "FASTDDS_DEFAULT_PROFILES_FILE": str(tmp_path / "no.xml")})[0]
    assert missing.level == "error" and "does not exist" in missing.message and "export" in missing.advice
    broken = tmp_path / "broken.xml"
    broken.write_text("<profiles>")
    assert doctor.transport_findings({**KILTED, "FASTDDS_DEFAULT_PROFILES_FILE": str(broken)})[0].level == "error"
    small = _profile(tmp_path, "<transport_descriptors><transport_descriptor><transport_id>s</transport_id><type>SHM"
                     "</type><segment_size>262144</segment_size></transport_descriptor></transport_descriptors>"
                     '<participant profile_name="p" is_default_profile="true"><rtps><userTransports><transport_id>'
                     "s</transport_id></userTransports><useBuiltinTransports>false</useBuiltinTransports></rtps>"
                     "</participant>")
    found = doctor.transport_findings({**KILTED, "FASTDDS_DEFAULT_PROFILES_FILE": str(small)})[0]
    assert found.level == "warn" and "262144 B" in found.message


def test_another_rmw_is_reported_not_judged():
    found = doctor.transport_findings({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"})[0]
    assert found.level == "ok" and "not Fast DDS" in found.message


@pytest.mark.parametrize("environ, advice", [({"ROS_LOCALHOST_ONLY": "1"}, "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST"),
                                             ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}, "LOCALHOST")])
def test_discovery_settings_that_hide_the_camera_warn(environ, advice):
    found = doctor.discovery_findings(environ)[0]
    assert found.level == "warn" and advice in found.advice


def test_humble_has_only_localhost_only():
    found = doctor.discovery_findings({"ROS_DISTRO": "humble", "ROS_LOCALHOST_ONLY": "1"})[0]
    assert found.level == "ok" and "ROS_LOCALHOST_ONLY=1" in found.message


def test_no_publisher_is_an_error_that_says_how_to_name_the_topic():
    found = doctor.qos_findings("/camera/image_raw", [])
    assert [f.level for f in found] == ["error"] and "camera_topic:=" in found[0].advice


def test_a_best_effort_camera_against_a_reliable_subscription_is_an_error_with_the_fix():
    assert doctor.qos_findings("/c", [BEST_EFFORT], "sensor_data")[0].level == "ok"
    found = doctor.qos_findings("/c", [BEST_EFFORT], "reliable")[0]
    assert found.level == "error" and "receives nothing" in found.message and "image_qos:=sensor_data" in found.advice
    assert doctor.qos_findings("/c", [RELIABLE], "reliable")[0].level == "ok"


def test_a_publisher_of_another_type_is_an_error():
    found = doctor.qos_findings("/c", [{**RELIABLE, "type": "std_msgs/msg/String"}])[0]
    assert found.level == "error" and "sensor_msgs/msg/Image" in found.message


def test_stamp_rate_is_robust_to_loss_and_jitter():
    period = 100_000_000  # 10 Hz
    every = [i * period for i in range(1, 31)]
    assert doctor.stamp_rate(every) == pytest.approx(10.0)
    some_lost = [s for i, s in enumerate(every) if i % 3 != 1]  # a third lost: gaps of 1 and 2 periods
    assert doctor.stamp_rate(some_lost) == pytest.approx(10.0)
    jitter = [s + (3_000_000 if i % 2 else -3_000_000) for i, s in enumerate(every)]
    assert doctor.stamp_rate(jitter) == pytest.approx(10.0, rel=0.07)
    assert doctor.stamp_rate([0, 0, 0, 0]) is None and doctor.stamp_rate(every[:2]) is None


def test_measured_loss_takes_the_larger_evidence():
    assert doctor.measured_loss(30, 0, 3.0, 10.0) == pytest.approx(0.0)
    assert doctor.measured_loss(3, 0, 3.0, 10.0) == pytest.approx(0.9)
    assert doctor.measured_loss(3, 27, 3.0, None) == pytest.approx(0.9)
    assert doctor.measured_loss(0, 0, 3.0, None) is None


def test_rate_ok_when_every_frame_arrives_and_the_reliable_zero_is_explained():
    found = doctor.rate_findings("/c", 3.0, 30, 0, 10.0, [BEST_EFFORT])[0]
    assert found.level == "ok" and "reliable gets nothing from a best-effort publisher" in found.message
    assert "frame loss 0%" in found.message


def test_rate_warns_on_frame_loss_and_errs_on_most_frames_lost():
    found = doctor.rate_findings("/c", 3.0, 4, 30, 10.0, [RELIABLE], lost=26)[0]
    assert found.level == "error" and "87% of the frames" in found.message and "DDS counted 26 lost" in found.message
    assert "camera side" in found.advice
    some = doctor.rate_findings("/c", 3.0, 20, 30, 10.0, [RELIABLE])[0]
    assert some.level == "warn" and "33% of the frames" in some.message
    assert doctor.rate_findings("/c", 3.0, 26, 30, 10.0, [RELIABLE])[0].level == "ok"  # 13%: within jitter


def test_rate_says_why_the_camera_rate_is_unknown():
    assert "too few frames" in doctor.rate_findings("/c", 3.0, 1, 0, None, [BEST_EFFORT], lost=27)[0].message
    assert "no header stamps" in doctor.rate_findings("/c", 3.0, 30, 0, None, [BEST_EFFORT])[0].message


def test_rate_errors_when_nothing_arrives_and_tells_lost_from_silent():
    lost = doctor.rate_findings("/c", 3.0, 0, 0, None, [BEST_EFFORT], lost=28, major=3)[0]
    assert lost.level == "error" and "DDS counted 28 lost" in lost.message
    assert "export FASTDDS_DEFAULT_PROFILES_FILE=" in lost.advice and "FASTRTPS" not in lost.advice
    silent = doctor.rate_findings("/c", 3.0, 0, 0, None, [BEST_EFFORT])[0]
    assert silent.level == "error" and "may not be streaming" in silent.message and "ros2 topic hz" in silent.advice


def test_camera_side_is_read_from_its_environment_when_one_process_names_the_node():
    processes = {"/camera": [(42, {**KILTED})]}
    found = doctor.camera_side_findings([BEST_EFFORT], processes, loss=0.9)[0]
    assert found.level == "warn" and "pid 42" in found.message and "default profile" in found.message
    assert "restart the camera" in found.advice
    good = {"/camera": [(42, {**KILTED, "FASTDDS_DEFAULT_PROFILES_FILE": str(SHIPPED)})]}
    assert doctor.camera_side_findings([BEST_EFFORT], good, loss=0.0)[0].level == "ok"


def test_camera_side_says_it_cannot_know_and_judges_by_the_loss():
    lossy = doctor.camera_side_findings([BEST_EFFORT], {}, loss=0.9, major=3)[0]
    assert lossy.level == "warn" and "cannot be read from the ROS graph" in lossy.message and "90%" in lossy.message
    assert "export FASTDDS_DEFAULT_PROFILES_FILE" in lossy.advice
    fine = doctor.camera_side_findings([BEST_EFFORT], {"/camera": [(7, None)]}, loss=0.0)[0]
    assert fine.level == "ok" and "another user" in fine.message and "no frame loss" in fine.message


def test_node_processes_finds_a_process_by_its_node_remap():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--ros-args", "-r",
                              "__node:=doctor_test_cam", "-r", "__ns:=/doctor_ns"], env={"DOCTOR_TEST": "1"})
    try:
        time.sleep(0.2)
        found = doctor.node_processes("/doctor_ns/doctor_test_cam")
        assert [pid for pid, _ in found] == [child.pid] and found[0][1]["DOCTOR_TEST"] == "1"
        assert doctor.node_processes("/doctor_test_cam") == []  # another namespace
    finally:
        child.kill()
        child.wait()


class MissingTransformersFinderForTest:
    """Stands in for importlib.util.find_spec: every module is there except transformers."""

    def __call__(self, name: str):
        return None if name == "transformers" else object()


def test_package_findings_give_the_install_line_for_a_missing_module():
    found = _by_check(doctor.package_findings(["model lite", "policy embedded", "model my.pkg:Mine"],
                                              find_spec=MissingTransformersFinderForTest()))
    assert set(found) == {"model lite packages", "policy embedded packages"}
    lite = found["model lite packages"]
    assert lite.level == "error" and "transformers" in lite.message
    assert "pip install transformers" in lite.advice and "python3-transformers-pip" in lite.advice
    assert found["policy embedded packages"].level == "ok"
    sim = doctor.package_findings(["simulator"], find_spec=lambda name: None)[0]
    assert sim.level == "warn" and "pip install pybullet" in sim.advice


def test_load_finding_names_the_fix():
    def missing():
        raise ImportError("cannot load predictor 'lite'") from ModuleNotFoundError("no jax", name="jax.numpy")

    error = doctor.load_finding("policy embedded", missing, "see the README")
    assert error.level == "error" and error.advice.startswith("pip install jax")
    other = doctor.load_finding("model x", lambda: (_ for _ in ()).throw(ValueError("bad size")), "see the README")
    assert other.level == "error" and "ValueError: bad size" in other.message and other.advice == "see the README"
    loaded = doctor.load_finding("model x", lambda: {"predictor": "X", "device": "cpu"})
    assert loaded.level == "ok" and loaded.message == "loads: predictor=X, device=cpu"


def test_assets_finding(tmp_path):
    assert doctor.assets_finding(lambda: tmp_path).message == f"CALVIN assets at {tmp_path}"

    def absent():
        raise FileNotFoundError("looked in /a, /b; run ivm-ros sim-assets --download")

    found = doctor.assets_finding(absent)
    assert found.level == "warn" and "looked in /a" in found.message and "sim-assets" in found.advice
    assert doctor.assets_finding(None, "no module").message == "skipped: no module"


class LoggerForTest:
    """Records (level, text) like a ROS logger's info/warning/error."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.info = lambda text: self.lines.append(("info", text))
        self.warning = lambda text: self.lines.append(("warning", text))
        self.error = lambda text: self.lines.append(("error", text))


def test_log_findings_maps_levels():
    logger = LoggerForTest()
    doctor.log_findings(logger, doctor.transport_findings(KILTED, SHIPPED))
    assert [level for level, _ in logger.lines] == ["warning", "info"]
    assert "-> export FASTDDS_DEFAULT_PROFILES_FILE=" in logger.lines[0][1]
