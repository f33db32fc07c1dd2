"""The closed-loop harness over real topics and processes: sim_node (lockstep) -> masking_node -> policy_node ->
sim_node, with a test-double policy (what is tested here is the loop, not a policy)."""

from __future__ import annotations

import argparse
import json
import os

from ivm_ros_sim.eval import closed_loop
from support import TEST_ROOT
from support.ros import AnswersFromTryClientForTest


def test_closed_loop_runs_both_conditions_and_writes_results(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TEST_ROOT), os.environ.get("PYTHONPATH", "")]))
    rc = closed_loop.main(["--tasks", "open_drawer", "--levels", "none", "--masking", "on,off", "--seeds", "1",
                           "--max-steps", "6", "--policy", "support.policies:PixelPolicyForTest", "--model", "keep_all",
                           "--gifs", "1", "--out", str(tmp_path), "--startup-timeout", "90"])
    assert rc == 0
    episodes = json.loads((tmp_path / "episodes.json").read_text())
    # the seed the sim ran is the one asked for (the settling reset before each episode replays it)
    assert [(e["masking"], e["task"], e["seed"], e["steps"]) for e in episodes] == [("on", "open_drawer", 1000, 6),
                                                                                    ("off", "open_drawer", 1000, 6)]
    assert not any(e["success"] for e in episodes)  # a +x push never opens the drawer
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["overall"]) == {"clean / masking on", "clean / masking off"}
    assert results["realtime_factor"] > 0
    assert (tmp_path / "success.png").is_file()
    gifs = sorted(p.name for p in (tmp_path / "gifs").iterdir())
    assert gifs == ["open_drawer_none_mask-off_seed1000.gif", "open_drawer_none_mask-on_seed1000.gif"]

    # --resume with everything already recorded starts no node and keeps the episodes as they are
    def popen_must_not_run(*a, **k):
        raise AssertionError("--resume started nodes although every episode was recorded")

    monkeypatch.setattr(closed_loop.subprocess, "Popen", popen_must_not_run)
    before = (tmp_path / "episodes.json").read_text()
    rc = closed_loop.main(["--tasks", "open_drawer", "--levels", "none", "--masking", "on,off", "--seeds", "1",
                           "--out", str(tmp_path), "--resume"])
    assert rc == 0
    assert (tmp_path / "episodes.json").read_text() == before
    assert json.loads((tmp_path / "results.json").read_text())["episodes"] == 2


def test_resume_refuses_a_file_it_did_not_write(tmp_path):
    (tmp_path / "episodes.json").write_text(json.dumps([{"task": "open_drawer"}]))
    try:
        closed_loop.main(["--out", str(tmp_path), "--resume"])
    except SystemExit as e:
        assert "not an episodes list written by sim-eval-policy" in str(e)
    else:
        raise AssertionError("a foreign episodes.json was accepted")


def _ros_args(cmd: list[str], flag: str) -> dict[str, str]:
    """The ``-p``/``-r`` NAME:=VALUE pairs of a node's command line."""
    return dict(cmd[i + 1].split(":=", 1) for i in range(len(cmd) - 1) if cmd[i] == flag)


def test_masking_on_feeds_the_policy_masked_frames_and_off_the_raw_camera():
    """The wiring behind the closed-loop table, without running the loop."""
    args = argparse.Namespace(max_steps=6, policy="embedded", model="lite")
    on, off = closed_loop.node_commands(True, args), closed_loop.node_commands(False, args)
    assert set(on) == {"sim_node", "masking_node", "policy_node"} and set(off) == {"sim_node", "policy_node"}
    masking = on["masking_node"]
    assert masking[masking.index("-m") + 1] == "ivm_ros.ros.masking_node"
    assert _ros_args(masking, "-r") == {"image_raw": "camera/image_raw"}  # its default name: /masking_node/...
    assert _ros_args(masking, "-p")["model"] == "lite"
    policy_on, policy_off = _ros_args(on["policy_node"], "-r"), _ros_args(off["policy_node"], "-r")
    assert policy_on["image"] == "masking_node/masked_image"  # masking on: the masked observation ...
    assert _ros_args(on["policy_node"], "-p")["policy_config.variant"] == "masked"  # ... for the masked policy
    assert policy_off["image"] == "camera/image_raw"  # masking off: the raw camera for the raw policy
    assert _ros_args(off["policy_node"], "-p")["policy_config.variant"] == "raw"
    # everything else is the same in both conditions
    assert on["sim_node"] == off["sim_node"]
    assert {k: v for k, v in policy_on.items() if k != "image"} == {k: v for k, v in policy_off.items() if k != "image"}
    params_on, params_off = _ros_args(on["policy_node"], "-p"), _ros_args(off["policy_node"], "-p")
    assert {k: v for k, v in params_on.items() if k != "policy_config.variant"} == \
        {k: v for k, v in params_off.items() if k != "policy_config.variant"}
    assert params_on["policy"] == "embedded"


def test_service_calls_are_sent_again_when_an_answer_is_lost():
    import pytest
    import rclpy

    rclpy.init()
    try:
        harness = closed_loop.Harness(record=False)
        harness.retry_s = 0.2
        client = AnswersFromTryClientForTest(lost=2)
        assert harness.call_resending(client, "req", timeout=5.0) == ("answer", "req")
        assert (client.sent, client.removed, harness.resent) == (3, 2, 2)
        never = AnswersFromTryClientForTest(lost=10**6)
        with pytest.raises(TimeoutError, match="sim_node/set_parameters: no answer within 1 s"):
            harness.call_resending(never, "req", timeout=1.0, retry_s=0.3)
        assert never.sent >= 3 and never.removed == never.sent
        harness.node.destroy_node()
    finally:
        rclpy.shutdown()
