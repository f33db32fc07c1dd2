"""``calvin-eval --transport ros`` against ``--transport direct``: the same chain through sim_node -> masking_node ->
policy_node (separate processes, real topics) ends with the same outcome and the same steps per subtask. The
policy is a test double that replays the expert's actions for the chain's first subtask (what is tested here is
the transport: subtask starts, holds, the stop at the first success, step counting)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from ivm_ros_sim.calvin.chains import load_chains
from ivm_ros_sim.calvin.expert import Expert
from ivm_ros_sim.eval import calvin_eval
from ivm_ros_sim.eval.ros_transport import ros_node_commands
from ivm_ros_sim.eval.workers import EvalSettings
from support import TEST_ROOT
from support.ros import AnswersFromTryClientForTest


def _expert_actions(env, chain_index: int) -> np.ndarray:
    chain = load_chains(1, start=chain_index)[0]
    env.reset_to_state(chain.robot_obs, chain.scene_obs)
    env.begin_subtask(chain.subtasks[0])
    actions = []
    for a in Expert(env).plan(chain.subtasks[0]):
        actions.append(a)
        if env.step(a)[2]:
            break
    assert env.succeeded
    return np.array(actions)


def test_ros_transport_gives_the_direct_outcome(tmp_path, fast_env, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TEST_ROOT), os.environ.get("PYTHONPATH", "")]))
    actions = _expert_actions(fast_env, 1)  # chain 1 starts with turn_off_led
    np.save(tmp_path / "actions.npy", actions)
    common = ["--policy", "support.policies:ReplayPolicyForTest", "--policy-config",
              f"actions_file={tmp_path / 'actions.npy'}", "--model", "keep_all", "--chains", "1", "--start", "1",
              "--max-steps", "30", "--workers", "0", "--gifs", "1", "--static-size", "64", "--gripper-size", "32"]
    outcomes = {}
    for transport in ("direct", "ros"):
        out = tmp_path / transport
        assert calvin_eval.main([*common, "--transport", transport, "--out", str(out)]) == 0
        row = json.loads((out / "chains.jsonl").read_text())
        outcomes[transport] = (row["completed"], row["steps"])
        assert len(list((out / "gifs").iterdir())) == 1
    # the replay solves turn_off_led, not push_into_drawer (its float32 actions may take a step more or less)
    completed, steps = outcomes["direct"]
    assert completed == 1 and abs(steps[0] - len(actions)) <= 2 and steps[1] == 30
    assert outcomes["ros"] == outcomes["direct"]


def test_ros_transport_refuses_what_only_runs_in_process():
    with pytest.raises(ValueError, match="expert"):
        ros_node_commands(EvalSettings(policy="expert"))
    with pytest.raises(ValueError, match="groundtruth"):
        ros_node_commands(EvalSettings(policy="embedded", model="groundtruth"))
    cmds = ros_node_commands(EvalSettings(policy="my.mod:Policy", masking=False, policy_config=(("k", 2),)))
    assert "masking_node" not in cmds and "policy_config.k:=2" in cmds["policy_node"]
    assert not any("variant" in arg for arg in cmds["policy_node"])


def test_only_idempotent_chain_services_are_sent_again():
    """A lost answer to a reset is sent again (``resend_s``); ``begin_subtask`` (a frame per call) gets one try."""
    import rclpy
    from ivm_ros_sim.eval.ros_transport import ChainHarness
    from std_srvs.srv import Trigger

    rclpy.init()
    try:
        harness = ChainHarness(record=False)
        ok = Trigger.Response(success=True, message="done")
        reset = AnswersFromTryClientForTest(lost=1, srv_name="sim_node/reset", answer=ok)
        assert harness.call(reset, "reset", timeout=5.0, resend_s=0.2) == "done"
        assert (reset.sent, harness.resent) == (2, 1)
        begin = AnswersFromTryClientForTest(lost=1, srv_name="sim_node/begin_subtask", answer=ok)
        with pytest.raises(TimeoutError):
            harness.call(begin, "begin_subtask", timeout=0.3)
        assert begin.sent == 1
        refused = AnswersFromTryClientForTest(lost=0, answer=Trigger.Response(success=False, message="no chain"))
        with pytest.raises(RuntimeError, match="sim_node reset failed: no chain"):
            harness.call(refused, "reset", timeout=1.0, resend_s=0.2)
        harness.node.destroy_node()
    finally:
        rclpy.shutdown()
