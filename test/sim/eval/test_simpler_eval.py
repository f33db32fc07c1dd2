"""``simpler-eval`` end to end on SimplerEnvDouble (``--backend double``) with stand-ins (simpler_standins.py): the
outputs, masking on/off, the ground-truth predictor, variants, the expert's lazy import, resume, bad options."""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from ivm_ros_sim.eval import simpler_eval
from ivm_ros_sim.eval.simpler_jobs import Job, SimplerSettings
from ivm_ros_sim.eval.simpler_workers import SimplerWorker, build_agent
from ivm_ros_sim.simpler import double as D
from simpler_standins import plus_x_steps

POLICY = ["--backend", "double", "--policy", "simpler_standins:PlusXPolicyStandIn"]
SOURCE = ["--model", "simpler_standins:SourcePredictorStandIn"]


def _rows(out: Path) -> dict[str, dict]:
    return {r["key"]: r for r in map(json.loads, (out / "episodes.jsonl").read_text().splitlines())}


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_masking_both_outputs_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    common = [*POLICY, *SOURCE, "--tasks", "widowx_carrot_on_plate,widowx_stack_cube", "--max-steps", "15",
              "--out", str(out), "--gifs", "1"]
    assert simpler_eval.main([*common, "--episodes", "2"]) == 0
    first = _last_json(capsys)
    assert first["n_episodes"] == 8 and first["settings"]["backend"] == "double"
    rows = _rows(out)
    for r in rows.values():  # the stand-in's speed is set by the placement and by whether the view is masked
        assert r["success"] == (plus_x_steps(r["episode"], r["masking"]) <= 15), r
        assert r["steps"] == 15 and r["instruction"] == D.DOUBLE_TASKS[r["task"]][3]
    assert first["per_masking"] == {"on": 1.0, "off": 0.0}
    assert first["per_task"] == {"widowx_carrot_on_plate": 0.5, "widowx_stack_cube": 0.5}
    assert {(c["task"], c["masking"], c["n"]) for c in first["conditions"]} == {
        (t, m, 2) for t in ("widowx_carrot_on_plate", "widowx_stack_cube") for m in ("on", "off")}
    assert (out / "success.png").stat().st_size > 0
    assert json.loads((out / "summary.json").read_text())["n_episodes"] == 8
    gifs = sorted(p.name for p in (out / "gifs").iterdir())
    assert len(gifs) == 4 and all("_ep000_" in g for g in gifs)  # the first episode of each task and condition


def test_resume_runs_only_the_missing_episodes(tmp_path, capsys):
    out = tmp_path / "run"
    common = [*POLICY, "--masking", "off", "--tasks", "widowx_carrot_on_plate", "--max-steps", "16", "--gifs", "0",
              "--out", str(out)]
    assert simpler_eval.main([*common, "--episodes", "2"]) == 0
    before = (out / "episodes.jsonl").read_text().splitlines()
    with pytest.raises(SystemExit, match="--resume"):
        simpler_eval.main([*common, "--episodes", "4"])
    with pytest.raises(SystemExit, match="other settings"):
        simpler_eval.main([*common, "--episodes", "4", "--seed", "7", "--resume"])
    assert simpler_eval.main([*common, "--episodes", "4", "--resume"]) == 0
    after = (out / "episodes.jsonl").read_text().splitlines()
    assert after[:2] == before and len(after) == 4  # the two done episodes were not run again
    summary = _last_json(capsys)
    assert summary["n_episodes"] == 4
    assert summary["success"] == np.mean([plus_x_steps(e, False) <= 16 for e in range(4)])


def test_ground_truth_masks_reach_the_policy(tmp_path, capsys):
    out = tmp_path / "gt"
    assert simpler_eval.main([*POLICY, "--model", "groundtruth", "--masking", "on", "--tasks",
                              "widowx_spoon_on_towel", "--episodes", "2", "--max-steps", "12", "--out", str(out)]) == 0
    assert _last_json(capsys)["success"] == 1.0  # masked: the fast stand-in within 12 steps
    worker = SimplerWorker(SimplerSettings(policy="simpler_standins:PlusXPolicyStandIn", model="groundtruth",
                                           backend="double", max_steps=2))
    _, frames = worker.run(Job("widowx_spoon_on_towel", 5, True), record=True)
    worker.close()
    cam, seen = np.split(frames[0], 2, axis=1)
    objects = np.any(cam != cam[30, 0], axis=-1) & (np.arange(cam.shape[0]) >= cam.shape[0] // 8)[:, None]
    assert np.all(seen[objects] == cam[objects])  # source and target kept as they are
    assert np.all(seen[-1] == 255) and np.all(seen[:, -1] == 255)  # the rest overlaid (white)


def test_variants_reach_the_env(tmp_path, capsys):
    out = tmp_path / "variants"
    small = 'small={"size": [24, 32]}'
    assert simpler_eval.main([*POLICY, "--masking", "off", "--tasks", "widowx_carrot_on_plate", "--episodes", "1",
                              "--variant", "visual_matching", "--variant", small, "--gifs", "1",
                              "--out", str(out)]) == 0
    rows = _rows(out)
    assert {(r["variant"], r["variant_kwargs"]) for r in rows.values()} == {
        ("visual_matching", "{}"), ("small", '{"size": [24, 32]}')}
    assert {c["variant"] for c in _last_json(capsys)["conditions"]} == {"visual_matching", "small"}
    with pytest.raises(SystemExit, match="variant small"):
        simpler_eval.main([*POLICY, "--masking", "off", "--tasks", "widowx_carrot_on_plate", "--episodes", "1",
                           "--variant", "visual_matching", "--variant", 'small={"size": [16, 16]}', "--resume",
                           "--out", str(out)])


class PlusXExpertStandIn:
    """A stand-in for ivm_ros_sim.simpler.expert.SimplerExpert (its interface): privileged, moves +x 1 cm a step."""

    def __init__(self, task_env) -> None:
        self.env, self.resets = task_env, 0

    def reset(self) -> None:
        self.resets += 1

    def act(self, frame) -> np.ndarray:
        assert self.env.steps == frame.steps  # called with the env's latest frame
        return np.array([0.01, 0, 0, 0, 0, 0, 1.0])


@pytest.fixture
def expert_stand_in(monkeypatch):
    module = types.ModuleType("ivm_ros_sim.simpler.expert")
    module.__spec__ = importlib.util.spec_from_loader(module.__name__, loader=None)
    module.SimplerExpert = PlusXExpertStandIn
    monkeypatch.setitem(sys.modules, module.__name__, module)


def test_expert_runs_once_per_episode_without_masking(tmp_path, capsys, expert_stand_in):
    out = tmp_path / "expert"
    assert simpler_eval.main(["--backend", "double", "--policy", "expert", "--masking", "both", "--episodes", "2",
                              "--gifs", "0", "--out", str(out)]) == 0
    summary = _last_json(capsys)
    assert summary["success"] == 1.0 and summary["n_episodes"] == 8  # four WidowX tasks x 2, masking not applied
    assert summary["per_masking"] == {"off": 1.0} and "model" not in summary["settings"]
    assert all(r["first_success_step"] == 5 for r in _rows(out).values())


def test_agent_is_built_per_masking_condition():
    s = SimplerSettings(policy="simpler_standins:PlusXPolicyStandIn", model="keep_all", backend="double",
                        policy_config=(("speed", 0.002),))
    on, off = build_agent(s, True), build_agent(s, False)
    assert on.pipeline is not None and off.pipeline is None and on.policy.config.speed == 0.002
    assert SimplerSettings(policy_config=(("checkpoint", "p_{masked}.msgpack"),)).policy_settings(False) == {
        "checkpoint": "p_raw.msgpack"}


@pytest.mark.parametrize("args, message", [
    (["--tasks", "widowx_fly_to_the_moon"], "unknown task"),
    (["--variant", "foggy"], "unknown variant 'foggy'"),
    (["--variant", "x=[1]"], "JSON object"),
    (["--policy", "nowhere.module:Policy"], "nowhere"),
    (["--model", "groundtruth", "--transport", "ros"], "groundtruth runs only with --transport direct"),
    (["--episodes", "0"], "--episodes must be >= 1"),
    pytest.param(["--backend", "simpler"], "SimplerEnv is not installed", marks=pytest.mark.skipif(
        any(importlib.util.find_spec(m) for m in ("simpler_env", "mani_skill2_real2sim")), reason="it is installed")),
])
def test_bad_options_fail_clearly(tmp_path, capsys, args, message):
    base = ["--backend", "double", "--policy", "simpler_standins:PlusXPolicyStandIn", "--out", str(tmp_path / "x")]
    assert simpler_eval.main([*base, *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_expert_over_ros_and_missing_pieces_fail_clearly(tmp_path, capsys, expert_stand_in):
    assert simpler_eval.main(["--backend", "double", "--policy", "expert", "--transport", "ros",
                              "--out", str(tmp_path / "x")]) == 2
    assert "expert reads the simulator's state" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        simpler_eval.main([*POLICY, "--policy-config", "speed", "--out", str(tmp_path / "y")])


def test_a_frame_the_masking_fail_safe_drops_holds_the_arm_still():
    from ivm_ros_sim.eval.simpler_workers import SimplerAgent
    from ivm_ros_sim.simpler.env import SimplerTaskEnv
    from support.policies import ChunkPolicyForTest
    from support.predictors import ConstantPredictorForTest

    from ivm_ros.pipeline import FailSafeSettings, MaskingPipeline

    env = SimplerTaskEnv("widowx_carrot_on_plate", make=D.SimplerEnvDouble.make)
    frame = env.reset(0, 0)
    env.gripper_action = -1.0  # closed on the object: the hold keeps it closed
    policy = ChunkPolicyForTest([np.array([[0.5, 0, 0, 0, 0, 0, 1.0]])])  # +x, gripper open
    nothing_passes = ConstantPredictorForTest(0.0)  # every frame triggers the masking fail-safe
    agent = SimplerAgent(policy, MaskingPipeline(nothing_passes, fail_safe=FailSafeSettings("drop")))
    np.testing.assert_array_equal(agent.act(frame, env), [0, 0, 0, 0, 0, 0, -1.0])
    assert policy.calls == 0 and agent.last_seen is None  # the policy was not asked
    kept = SimplerAgent(policy, MaskingPipeline(nothing_passes))  # default fail-safe: the whole frame kept
    assert kept.act(frame, env)[0] > 0 and policy.calls == 1
