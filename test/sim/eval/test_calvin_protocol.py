"""CALVIN's protocol: the official chains, chain rules (subtask start states, stop at the first failure), the
summary, the masking agent behind CALVIN's model interface, and ``ivm-ros calvin-eval`` with --resume."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.chains import load_chains
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.masks import mask_from_segmentation, relevant_parts
from ivm_ros_sim.eval import calvin_eval
from ivm_ros_sim.eval.compare import label
from ivm_ros_sim.eval.protocol import ChainResult, ExpertAgent, run_chain, summarize
from ivm_ros_sim.eval.workers import EvalSettings, GroundTruthMasked, GroundTruthPredictor, build_agent
from support.policies import FixedActionPolicyForTest
from support.predictors import ConstantPredictorForTest

from ivm_ros.calvin_agent import IvmCalvinModel, camera_images
from ivm_ros.pipeline import FailSafeSettings, MaskingPipeline


def test_official_chains_load_in_order():
    chains = load_chains()
    assert len(chains) == 1000 and [c.index for c in chains[:3]] == [0, 1, 2]
    assert chains[0].subtasks == ("rotate_blue_block_right", "move_slider_right", "lift_red_block_slider",
                                  "place_in_slider", "turn_off_lightbulb")  # PROVENANCE.md's first chain
    assert all(len(c.subtasks) == 5 and set(c.subtasks) <= set(T.all_tasks()) for c in chains)
    assert chains[0].robot_obs.shape == (15,) and chains[0].scene_obs.shape == (24,)
    assert [c.index for c in load_chains(2, start=998)] == [998, 999]
    with pytest.raises(ValueError, match="start must be"):
        load_chains(1, start=1000)


def test_summary_counts_tasks_in_a_row():
    r = [ChainResult(0, list("abcde"), 5, [1] * 5), ChainResult(1, list("abcde"), 2, [1, 1, 360]),
         ChainResult(2, list("bacde"), 0, [360])]
    s = summarize(r)
    assert s["avg_len"] == pytest.approx(7 / 3) and s["n_chains"] == 3
    assert s["success_at"] == pytest.approx([2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3])
    assert s["per_task"] == {"a": 1.0, "b": pytest.approx(2 / 3), "c": 0.5, "d": 1.0, "e": 1.0}
    assert s["per_task_attempts"]["c"] == 2 and s["avg_len_stderr"] > 0


class ExpertThenHoldForTest:
    """Test double: the expert for the chain's first subtask only, then holds still."""

    def __init__(self, env):
        self.expert, self.env, self.resets = ExpertAgent(env), env, 0

    def reset(self):
        self.resets += 1
        self.expert.reset()

    def step(self, obs, goal):
        if self.resets == 1:
            return self.expert.step(obs, goal)
        return np.array([0.0] * 6 + [self.env.scene.gripper_action])


def test_chain_stops_at_first_failure_and_scores_each_subtask_from_its_start(fast_env):
    chain = load_chains(1, start=1)[0]  # turn_off_led, push_into_drawer, ...: the LED starts on
    agent = ExpertThenHoldForTest(fast_env)
    result = run_chain(fast_env, agent, chain, max_steps=40)
    assert result.completed == 1 and len(result.steps) == 2 and result.steps[1] == 40
    assert agent.resets == 2  # the agent is reset before every subtask, as CALVIN does
    assert fast_env.start_state.scene_obs[5] == 0.0  # the second subtask started from the LED-off state


def test_masking_agent_on_official_observation_layout():
    obs = {"rgb_obs": {"rgb_static": np.full((20, 20, 3), 200, np.uint8), "rgb_gripper": np.zeros((8, 8, 3), np.uint8)},
           "robot_obs": np.zeros(15)}
    policy = FixedActionPolicyForTest()
    model = IvmCalvinModel(policy, MaskingPipeline(ConstantPredictorForTest(0.0)))
    a = model.step(obs, "open the drawer")
    assert a.shape == (7,) and a[6] in (-1.0, 1.0)
    assert model.last_result.fail_safe  # nothing passed: the whole frame is kept (IVM's fail-safe)
    np.testing.assert_array_equal(model.last_seen, obs["rgb_obs"]["rgb_static"])
    drop = FailSafeSettings("drop")
    dropping = IvmCalvinModel(policy, MaskingPipeline(ConstantPredictorForTest(0.0), fail_safe=drop))
    obs["robot_obs"][14] = -1.0
    np.testing.assert_array_equal(dropping.step(obs, "open the drawer"), [0, 0, 0, 0, 0, 0, -1])  # holds still
    assert dropping.last_seen is None
    with pytest.raises(KeyError, match="rgb_static"):
        camera_images({"robot_obs": np.zeros(15)})


def test_ground_truth_masking_keeps_only_the_task_pixels(env):
    env.segmentation = True
    try:
        chain = load_chains(1, start=1)[0]
        predictor = GroundTruthPredictor()
        inner = IvmCalvinModel(FixedActionPolicyForTest(), MaskingPipeline(predictor))
        agent = GroundTruthMasked(inner, env, predictor)
        result = run_chain(env, agent, chain, max_steps=2)
        assert result.completed == 0
        mask = predictor.mask
        assert 0 < mask.mean() < 0.2  # button + LED for turn_off_led, nothing else
        assert np.abs(inner.last_seen.astype(int) - env.observe()["rgb_static"].astype(int)).sum() > 0
    finally:
        env.segmentation = False


def test_calvin_eval_expert_writes_results_and_resumes(tmp_path, capsys):
    out = tmp_path / "ev"
    args = ["--policy", "expert", "--chains", "2", "--start", "1", "--workers", "0", "--out", str(out), "--gifs", "1"]
    assert calvin_eval.main(args) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["n_chains"] == 2 and len(last["success_at"]) == 5 and 0 <= last["avg_len"] <= 5
    assert last["settings"]["policy"] == "expert" and "model" not in last["settings"]
    lines = (out / "chains.jsonl").read_text().splitlines()
    assert [json.loads(x)["index"] for x in lines] == [1, 2]
    assert (out / "success.png").is_file() and len(list((out / "gifs").iterdir())) == 1
    with pytest.raises(SystemExit, match="--resume"):
        calvin_eval.main(args)
    assert calvin_eval.main(args[:3] + ["3"] + args[4:] + ["--resume"]) == 0  # one more chain, the two kept
    assert [json.loads(x)["index"] for x in (out / "chains.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_chains"] == 3
    with pytest.raises(SystemExit, match="other settings"):
        calvin_eval.main(args + ["--resume", "--distraction", "small"])


def test_calvin_eval_in_another_scene(tmp_path, capsys):
    assert calvin_eval.main(["--chains", "1", "--start", "3", "--workers", "0", "--gifs", "0", "--scene", "B",
                             "--out", str(tmp_path)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["settings"]["scene"] == "B" and last["n_chains"] == 1


def test_embedded_policy_defaults_to_the_variant_of_its_masking_condition():
    assert EvalSettings(policy="embedded", masking=False).policy_settings() == {"variant": "calvin_raw"}
    assert EvalSettings(policy="embedded").policy_settings() == {"variant": "calvin_masked"}
    assert EvalSettings(policy="embedded", policy_config=(("checkpoint", "p.msgpack"),)).policy_settings() == {
        "checkpoint": "p.msgpack"}
    assert EvalSettings(policy="embedded", policy_config=(("variant", "raw"),)).policy_settings()["variant"] == "raw"


def test_lite_masking_takes_the_lite_checkpoint_the_embedded_policy_learnt_on(tmp_path):
    from support.embedded_files import untrained_policy_file

    path = untrained_policy_file(tmp_path / "p.msgpack", {"masking": "lite", "lite": "lite_v3"})
    settings = EvalSettings(policy="embedded", policy_config=(("checkpoint", str(path)),))
    paired, note = settings.paired()
    assert dict(paired.model_config) == {"checkpoint": "lite_v3"} and "lite_v3" in note
    other, note = dataclasses.replace(settings, model_config=(("checkpoint", "lite_v2"),)).paired()
    assert dict(other.model_config) == {"checkpoint": "lite_v2"} and note.startswith("warning")
    shipped, note = EvalSettings(policy="embedded").paired()  # calvin_masked v6 records the lite it learnt on
    assert dict(shipped.model_config) == {"checkpoint": "lite_v2"} and "lite_v2" in note
    for unpaired in (dataclasses.replace(settings, masking=False),
                     dataclasses.replace(settings, model="groundtruth"), EvalSettings(policy="expert")):
        assert unpaired.paired() == (unpaired, "")
    missing = EvalSettings(policy="embedded", policy_config=(("checkpoint", str(tmp_path / "none.msgpack")),))
    assert calvin_eval.main(["--policy", "embedded", "--policy-config", f"checkpoint={tmp_path / 'none.msgpack'}",
                             "--out", str(tmp_path / "out")]) == 2
    with pytest.raises(ValueError, match="does not exist"):
        missing.paired()


def test_a_policy_that_learnt_on_masked_wrist_views_is_evaluated_with_them(tmp_path, capsys):
    """The gripper camera's ground-truth mask (what the checkpoint's ``wrist_masking`` asks for) follows the same
    task parts as the static one; without a source of wrist masks the evaluation refuses to start."""
    from support.embedded_files import untrained_policy_file

    path = untrained_policy_file(tmp_path / "p.msgpack", {"masking": "lite", "wrist_masking": "groundtruth"})
    common = ["--policy", "embedded", "--policy-config", f"checkpoint={path}", "--chains", "1", "--start", "1",
              "--max-steps", "3", "--workers", "0", "--gifs", "0", "--static-size", "64", "--gripper-size", "32"]
    assert calvin_eval.main([*common, "--model", "keep_all", "--out", str(tmp_path / "a")]) == 2
    assert "--wrist-model groundtruth" in capsys.readouterr().err
    assert calvin_eval.main([*common, "--model", "keep_all", "--wrist-model", "groundtruth", "--transport", "ros",
                             "--out", str(tmp_path / "b")]) == 2
    assert "direct transport" in capsys.readouterr().err
    assert calvin_eval.main([*common, "--model", "keep_all", "--wrist-model", "groundtruth",
                             "--out", str(tmp_path / "c")]) == 0
    settings = json.loads((tmp_path / "c" / "settings.json").read_text())
    assert settings["wrist_model"] == "groundtruth"
    assert label(settings).startswith("embedded p, masking keep_all + wrist groundtruth")
    assert "wrist_model" not in calvin_eval.settings_json(EvalSettings(policy="embedded"))  # old folders resume
    settings = EvalSettings(policy="embedded", policy_config=(("checkpoint", str(path)),), model="groundtruth",
                            static_size=64, gripper_size=32)
    env = CalvinSceneEnv(64, 32, segmentation=settings.segmentation)
    try:
        agent = build_agent(settings, env)
        chain = load_chains(1, start=1)[0]
        obs, _ = env.reset_to_state(chain.robot_obs, chain.scene_obs)
        env.begin_subtask(chain.subtasks[0])
        agent.reset()
        agent.step(obs, env.instruction)
        parts = relevant_parts(env.scene, env.task, env.start_state)
        assert np.array_equal(agent.wrist_predictor.mask, mask_from_segmentation(obs["seg_gripper"], parts))
        assert np.array_equal(agent.predictor.mask, mask_from_segmentation(obs["seg_static"], parts))
    finally:
        env.close()


@pytest.mark.parametrize(("args", "says"), [
    (["--chains", "0"], "n >= 1"), (["--start", "1000"], "start must be"), (["--policy", "nosuch"], "unknown policy"),
    (["--policy", "embedded", "--model", "nosuch"], "nosuch"), (["--workers", "-1"], "--workers"),
    (["--max-steps", "0"], "max_steps")])
def test_calvin_eval_refuses_bad_settings_before_running(tmp_path, capsys, args, says):
    assert calvin_eval.main([*args, "--out", str(tmp_path)]) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "chains.jsonl").exists()
