"""calvin-sensitivity: only appearance levels accepted; the four streams take each camera from the right render (the
camera jitter moves only the static camera, so the gripper-only stream stays the clean one to the last bit)."""

import json

import numpy as np
import pytest
from ivm_ros_sim.calvin.chains import load_chains
from ivm_ros_sim.eval import appearance_sensitivity as S
from ivm_ros_sim.eval.workers import EvalSettings


@pytest.mark.parametrize("level", ["none", "clutter", "lookalike", "paper-large", "large"])
def test_levels_that_add_objects_are_refused(level, capsys):
    with pytest.raises(ValueError, match="appearance-only"):
        S.check_appearance_level(level)
    assert S.main(["--level", level, "--chains", "1"]) == 2
    assert "texture" in capsys.readouterr().err


def test_unknown_level_and_expert_refused(capsys):
    with pytest.raises(ValueError, match="valid"):
        S.check_appearance_level("sunset")
    assert S.main(["--level", "texture", "--policy", "expert"]) == 2
    assert "nothing to probe" in capsys.readouterr().err


def test_compose_takes_the_static_camera_from_one_and_the_rest_from_the_other():
    a = {"rgb_static": 1, "seg_static": 2, "rgb_gripper": 3, "robot_obs": 4}
    b = {"rgb_static": 5, "seg_static": 6, "rgb_gripper": 7, "robot_obs": 8}
    assert S.compose(a, b) == {"rgb_static": 1, "seg_static": 2, "rgb_gripper": 7, "robot_obs": 8}


def test_stats_measure_distance_flips_and_agreement():
    st = S.StreamStats()
    clean, expert = np.array([0.0] * 6 + [1.0]), np.array([1.0, 0, 0, 0, 0, 0, 1.0])
    st.add(np.array([0.3, 0.4, 0, 0, 0, 0.5, -1.0]), clean, expert)
    st.add(clean, clean, np.zeros(7))  # the expert holds still: no cosine
    s = st.summary()
    assert s["dev_xyz"] == pytest.approx(0.25) and s["dev_rot"] == pytest.approx(0.25)
    assert s["gripper_flip"] == 0.5 and s["cos_expert"] == pytest.approx(0.6) and s["steps"] == 2


def test_camera_jitter_reaches_the_policy_through_the_static_camera_only():
    settings = EvalSettings(policy="embedded", masking=False, distraction="camera_jitter")
    out = S.run(settings, "camera_jitter", load_chains(1), subtasks=1, max_steps=4)
    s = out["streams"]
    assert {k: s[k]["steps"] for k in S.STREAMS} == dict.fromkeys(S.STREAMS, 4)
    assert s["clean"]["dev_xyz"] == 0.0 and s["gripper"]["dev_xyz"] == 0.0 and s["gripper"]["dev_rot"] == 0.0
    assert s["static"] == s["both"] and s["static"]["dev_xyz"] + s["static"]["dev_rot"] > 0.0
    assert out["expert_completed"] == [0] and out["n_chains"] == 1  # 4 steps: the expert has not finished


def test_calvin_eval_distraction_cameras_option():
    from ivm_ros_sim.eval import calvin_eval
    from ivm_ros_sim.eval.workers import check_settings

    args = calvin_eval.parser().parse_args(["--distraction", "appearance"])
    assert "distraction_cameras" not in calvin_eval.settings_json(calvin_eval.settings_from(args))  # old folders
    args = calvin_eval.parser().parse_args(["--distraction", "appearance", "--distraction-cameras", "static"])
    settings = calvin_eval.settings_from(args)
    assert calvin_eval.settings_json(settings)["distraction_cameras"] == "static"
    check_settings(settings)
    import dataclasses

    with pytest.raises(ValueError, match="diagnostic of the direct transport"):
        check_settings(dataclasses.replace(settings, transport="ros"))
    with pytest.raises(ValueError, match="one of"):
        check_settings(dataclasses.replace(settings, distraction_cameras="wrist"))


def test_wrist_masks_for_a_policy_that_learnt_on_them(tmp_path, capsys):
    """A policy that learnt on masked wrist views is probed with the gripper camera's ground truth, or refused."""
    from support.embedded_files import untrained_policy_file

    path = untrained_policy_file(tmp_path / "p.msgpack", {"masking": "lite", "wrist_masking": "groundtruth"})
    common = ["--level", "texture", "--policy-config", f"checkpoint={path}", "--model", "keep_all", "--chains", "1",
              "--subtasks", "1", "--max-steps", "2"]
    assert S.main(common) == 2 and "--wrist-model groundtruth" in capsys.readouterr().err
    assert S.main([*common, "--wrist-model", "groundtruth"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["streams"]["both"]["steps"] == 2
