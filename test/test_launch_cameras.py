"""Several cameras with one instruction (ivm_ros/cameras.py) and what manipulation.launch.py builds from its
`cameras`, `camera_params` and `viewer` arguments, run against stand-in launch modules (launch_ros is not on
PyPI; test/support/launch_stub.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.launch_stub import load, opaque_nodes

from ivm_ros.cameras import camera_name, plain_section, plan_cameras, resolve

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "manipulation.launch.py"
CONFIG = str(ROOT / "config" / "masking_node.yaml")


def test_camera_names_and_topics():
    assert camera_name("/wrist/image_raw") == "wrist"
    assert camera_name("/camera/color/image_raw/compressed") == "camera_color"
    assert camera_name("/image_raw") == "" and camera_name("/3d-cam/image") == "cam_3d_cam"
    assert resolve("camera/image_raw", "/robot/") == "/robot/camera/image_raw"
    assert resolve("/instruction", "robot") == "/instruction" and resolve("instruction", "") == "/instruction"
    with pytest.raises(ValueError, match="plain names"):
        resolve("~/image", "")


def test_plan_one_node_per_camera_on_one_instruction():
    front, wrist, other = plan_cameras("[/cam_front/image_raw, /wrist/image_raw, /image_raw]",
                                       "[{}, {model: keep_all}, /tmp/extra.yaml]", "robot", "instruction")
    assert [c.node for c in (front, wrist, other)] == ["/robot/cam_front/masking_node", "/robot/wrist/masking_node",
                                                        "/robot/camera2/masking_node"]
    assert {c.instruction for c in (front, wrist, other)} == {"/robot/instruction"}  # one command for all
    assert wrist.remappings == [("image_raw", "/wrist/image_raw"), ("image_raw/compressed",
                                "/wrist/image_raw/compressed"), ("instruction", "/robot/instruction")]
    assert (front.parameters, wrist.parameters, other.parameters) == ((), ({"model": "keep_all"},),
                                                                      ("/tmp/extra.yaml",))
    twice = plan_cameras("[/a/image_raw, /a/image]")
    assert [c.name for c in twice] == ["a", "a_1"]
    assert plan_cameras("") == [] and plan_cameras("/cam/image_raw")[0].name == "cam"


def test_plan_refuses_malformed_lists():
    with pytest.raises(ValueError, match="YAML list"):
        plan_cameras("{a: 1}")
    with pytest.raises(ValueError, match="2 items for 1 cameras"):
        plan_cameras("[/a/image_raw]", "[{}, {}]")
    with pytest.raises(ValueError, match=r"camera_params\[0\]"):
        plan_cameras("[/a/image_raw]", "[3]")


def test_plain_section_is_what_ros_would_skip_for_a_namespaced_node(tmp_path):
    assert plain_section(CONFIG) == {}  # the shipped file is keyed /**/masking_node: ROS applies it everywhere
    user = tmp_path / "mine.yaml"  # a user's file written the old way
    user.write_text("masking_node:\n  ros__parameters:\n    model: lite\n    fill_color: [255, 255, 255]\n")
    section = plain_section(str(user))
    assert section["model"] == "lite" and section["fill_color"] == [255, 255, 255]


def test_launch_without_cameras_keeps_the_single_masking_node(monkeypatch):
    description, arguments = load(LAUNCH, monkeypatch)
    assert arguments["cameras"]["default_value"] == "" and arguments["camera_params"]["default_value"] == ""
    nodes = [e for e in description.entities if type(e).__name__ == "Node"]
    masking = next(n for n in nodes if n.kwargs["executable"] == "masking_node")
    condition = masking.kwargs["condition"].args[0]  # IfCondition(EqualsSubstitution(cameras, ""))
    assert type(condition).__name__ == "EqualsSubstitution" and condition.args[0].args == ("cameras",)
    assert condition.args[1] == ""
    assert opaque_nodes(description, arguments) == []  # no cameras, no viewer: nothing more


def test_launch_with_two_cameras_builds_two_namespaced_masking_nodes(monkeypatch):
    description, arguments = load(LAUNCH, monkeypatch)
    nodes = opaque_nodes(description, arguments, cameras="[/cam_front/image_raw,/wrist/image_raw]",
                         camera_params="[{}, {model: keep_all, mode: blur}]", params_file=CONFIG)
    assert [(n["executable"], n["namespace"], n["name"]) for n in nodes] == [
        ("masking_node", "/cam_front", "masking_node"), ("masking_node", "/wrist", "masking_node")]
    front, wrist = nodes
    assert dict(front["remappings"])["image_raw"] == "/cam_front/image_raw"
    assert dict(wrist["remappings"])["image_raw"] == "/wrist/image_raw"
    assert {dict(n["remappings"])["instruction"] for n in nodes} == {"/instruction"}
    base, path, flags, *extra = wrist["parameters"]
    assert base == {} and path == CONFIG  # the shared file (keyed /**/masking_node) has no plain section
    assert flags == {"use_sim_time": False, "exit_on_failure": False}
    assert extra == [{"model": "keep_all", "mode": "blur"}] and len(front["parameters"]) == 3


@pytest.mark.parametrize("cameras", ["", "[/cam_front/image_raw,/wrist/image_raw]"], ids=["single", "cameras"])
def test_launch_viewer_follows_the_masking_node(monkeypatch, cameras):
    description, arguments = load(LAUNCH, monkeypatch)
    assert arguments["viewer"]["default_value"] == "none"
    assert arguments["viewer"]["choices"] == ["none", "web", "foxglove"]
    assert arguments["viewer_host"]["default_value"] == "127.0.0.1"  # never every interface unless asked
    nodes = opaque_nodes(description, arguments, cameras=cameras, viewer="foxglove", namespace="robot",
                         camera_topic="/camera/color/image_raw", foxglove_port="9000", params_file=CONFIG)
    viewer = nodes[-1]
    assert (viewer["executable"], viewer["namespace"]) == ("viewer_node", "robot")
    assert viewer["parameters"] == [{"viewer": "foxglove", "host": "127.0.0.1", "web_port": 8080,
                                     "foxglove_port": 9000}]
    remap = dict(viewer["remappings"])
    if cameras:
        assert remap == {"image_raw": "/cam_front/image_raw", "image_raw/compressed": "/cam_front/image_raw/compressed",
                         "masking_node/mask": "/robot/cam_front/masking_node/mask",
                         "masking_node/masked_image": "/robot/cam_front/masking_node/masked_image",
                         "instruction": "/instruction"}
    else:  # the single masking node is /robot/masking_node: the viewer's relative names already point at it
        assert remap == {"image_raw": "/camera/color/image_raw", "instruction": "/instruction",
                         "image_raw/compressed": "/camera/color/image_raw/compressed"}
    sim = opaque_nodes(description, arguments, viewer="web", sim="true")[-1]
    assert dict(sim["remappings"])["image_raw"] == "/camera/image_raw"  # the simulator's camera
