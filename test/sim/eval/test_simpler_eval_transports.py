"""``simpler-eval`` gives the same per-episode outcomes in this process, on a local Ray with 2 workers and through
real nodes (``--transport ros``: simpler_node -> masking_node -> policy_node, separate processes), on
SimplerEnvDouble with the stand-ins of simpler_standins.py (what is tested is the fan-out and the transport).
The Ray run is a separate ``simpler-eval`` process."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ivm_ros_sim.eval import simpler_eval
from ivm_ros_sim.eval.simpler_jobs import SimplerSettings
from ivm_ros_sim.eval.simpler_ros import simpler_node_commands, takes_proprio
from ivm_ros_sim.eval.simpler_workers import check_settings

HERE = Path(__file__).resolve().parent
RUN = ["--backend", "double", "--policy", "simpler_standins:PlusXPolicyStandIn", "--model",
       "simpler_standins:SourcePredictorStandIn", "--max-steps", "15"]


def _outcomes(out: Path) -> dict[str, tuple[bool, bool, int]]:
    rows = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    return {r["key"]: (r["success"], r["ever_success"], r["steps"]) for r in rows}


@pytest.fixture
def standins_on_path(monkeypatch):
    """Node and Ray worker processes import the stand-ins by ``module:Class``."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


def test_two_ray_workers_give_the_in_process_outcomes(tmp_path, ray_env, standins_on_path):
    pytest.importorskip("ray")
    jobs = [*RUN, "--tasks", "widowx_carrot_on_plate,widowx_stack_cube", "--episodes", "4", "--gifs", "1"]
    assert simpler_eval.main([*jobs, "--workers", "0", "--out", str(tmp_path / "inproc")]) == 0
    # Ray in its own process: a Ray session started and shut down in this pytest process keeps global state that
    # stops the next test's Ray (test_calvin_ray) from starting its GCS
    subprocess.run([sys.executable, "-m", "ivm_ros_sim.eval.simpler_eval", *jobs, "--workers", "2", "--out",
                    str(tmp_path / "ray")], check=True, timeout=300, env=os.environ.copy())
    reference = _outcomes(tmp_path / "inproc")
    assert len(reference) == 16 and len({o[0] for o in reference.values()}) == 2  # successes and failures
    assert _outcomes(tmp_path / "ray") == reference
    workers = {json.loads(line)["worker"] for line in (tmp_path / "ray" / "episodes.jsonl").read_text().splitlines()}
    assert len(workers) == 2 and len(list((tmp_path / "ray" / "gifs").iterdir())) == 4


def test_ros_transport_gives_the_direct_outcomes(tmp_path, capsys, standins_on_path):
    jobs = [*RUN, "--tasks", "widowx_carrot_on_plate", "--start", "1", "--episodes", "2", "--masking", "both",
            "--gifs", "1", "--workers", "0"]
    for transport in ("direct", "ros"):
        assert simpler_eval.main([*jobs, "--transport", transport, "--out", str(tmp_path / transport)]) == 0
        assert len(list((tmp_path / transport / "gifs").iterdir())) == 2
    direct = _outcomes(tmp_path / "direct")
    assert len(direct) == 4 and {o[0] for o in direct.values()} == {True, False}  # ep 1 raw fails, the rest succeed
    assert _outcomes(tmp_path / "ros") == direct
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["settings"]["transport"] == "ros"


def test_ros_node_commands():
    s = SimplerSettings(policy="simpler_standins:PlusXPolicyStandIn", model="lite", backend="double", max_steps=7,
                        policy_config=(("k", 2), ("ckpt", "p_{masked}")), model_config=(("threshold", 0.3),))
    on, off = simpler_node_commands(s, True), simpler_node_commands(s, False)
    assert set(on) == {"sim_node", "masking_node", "policy_node"} and set(off) == {"sim_node", "policy_node"}
    assert "policy_config.ckpt:=p_masked" in on["policy_node"] and "policy_config.ckpt:=p_raw" in off["policy_node"]
    assert "image:=masking_node/masked_image" in on["policy_node"] and "image:=camera/image_raw" in off["policy_node"]
    assert "model_config.threshold:=0.3" in on["masking_node"] and "max_steps:=7" in on["sim_node"]
    assert "backend:=double" in on["sim_node"] and "lockstep:=true" in on["sim_node"]
    assert not any("proprio" in arg for arg in on["policy_node"])  # the stand-in states no proprio_spec


def test_a_policy_stating_proprio_gets_simpler_nodes_and_is_refused_on_google_robot_tasks():
    s = SimplerSettings(policy="support.policies:PixelPolicyForTest", backend="double", transport="ros")
    assert takes_proprio(s.policy) and not takes_proprio("simpler_standins:PlusXPolicyStandIn")
    policy = simpler_node_commands(s, False)["policy_node"]
    for arg in ("proprio:=sim_node/proprio", "use_proprio:=true", "proprio_timeout:=0.0", "proprio_limits:='off'"):
        assert arg in policy
    check_settings(s, ["widowx_carrot_on_plate"], False)
    with pytest.raises(ValueError, match=r"takes proprio, but \['google_robot_pick_coke_can'\] publish none"):
        check_settings(s, ["widowx_carrot_on_plate", "google_robot_pick_coke_can"], False)
    # direct: the agent refuses at run time, on the first frame without proprio
    check_settings(dataclasses.replace(s, transport="direct"), ["google_robot_pick_coke_can"], False)
