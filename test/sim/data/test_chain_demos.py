"""``ivm-ros sim-data chains``: expert demonstrations along random chains, in the demos format the policy
training reads, resumable."""

from __future__ import annotations

import json

import pytest
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.data import engine
from ivm_ros_sim.data.chain_demos import expert_rates, generate_chain_demos

from ivm_ros.policies.embedded.data import load_demos


def test_chain_demos_are_training_data_and_resume(tmp_path):
    out = tmp_path / "chains"
    kw = dict(seed=3, scenes=("D", "A"), length=2, static_size=48, gripper_size=24, progress=False)
    index = generate_chain_demos(out, 2, **kw)
    assert index["chains_done"] == 2 and index["episodes"]
    first = index["episodes"][0]
    assert first["chain"] == 0 and first["position"] == 0 and first["scene"] == "D"
    assert {e["scene"] for e in index["episodes"] if e["chain"] == 1} <= {"A"}  # chain k: scenes[k % 2]
    assert all(e["instruction"] in T.paraphrases(e["task"], "train") for e in index["episodes"])
    assert set(expert_rates(index)) <= set(T.all_tasks())
    demos = load_demos(out, 32, 16, progress=False)
    assert demos.static.shape[1:] == (32, 32, 3) and len(demos.actions) == sum(e["steps"] for e in index["episodes"])
    with pytest.raises(SystemExit, match="--resume"):
        generate_chain_demos(out, 3, **kw)
    again = generate_chain_demos(out, 3, resume=True, **kw)
    assert again["chains_done"] == 3 and again["episodes"][:len(index["episodes"])] == index["episodes"]
    with pytest.raises(SystemExit, match="other settings"):
        generate_chain_demos(out, 4, resume=True, **{**kw, "length": 3})


def test_sim_data_chains_command(tmp_path, capsys):
    out = tmp_path / "c"
    assert engine.main(["chains", "--chains", "1", "--length", "1", "--out", str(out)]) == 0
    assert json.loads((out / "index.json").read_text())["chains_done"] == 1
    assert "expert success from chain states" in capsys.readouterr().out
