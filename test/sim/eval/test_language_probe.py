"""``ivm-ros sim-language-probe``: an embedded checkpoint replayed on the expert's frames with the recorded and the
evaluation sentence. The policy files are untrained (tiny arch, seed-0 weights): what is tested is that each
sentence reaches the policy (and the masking) and the agreement measures, not what a policy has learnt."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ivm_ros_sim.data.chain_demos import generate_chain_demos
from ivm_ros_sim.eval import language_probe
from support.embedded_files import TINY, untrained_policy_file


def test_agreement_measures_direction_and_sign():
    expert = np.zeros((4, 7), np.float32)
    expert[:, 0], expert[:2, 5] = 0.5, 1.0  # frames 0-1: yaw is the largest motion, 2-3: x
    same = language_probe.agreement(expert, expert)
    assert same["cos"] == pytest.approx(1.0, abs=1e-3) and same["sign"] == 1.0 and same["xyz"] == [0.5, 0, 0]
    flipped = language_probe.agreement(-expert, expert)
    assert flipped["cos"] == pytest.approx(-1.0, abs=1e-3) and flipped["sign"] == 0.0 and flipped["yaw"] == -0.5


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "chains"
    index = generate_chain_demos(out, 1, seed=3, scenes=("D",), length=2, static_size=48, gripper_size=24,
                                 progress=False)
    return out, index["episodes"]


def test_each_sentence_reaches_the_policy(demos, tmp_path, capsys):
    folder, episodes = demos
    raw = untrained_policy_file(tmp_path / "raw.msgpack", {"masking": "none"})
    masked = untrained_policy_file(tmp_path / "masked.msgpack", {"masking": "lite", "lite": "lite_v2"})
    task = episodes[0]["task"]
    assert language_probe.main(["--demos", str(folder), "--checkpoint", f"{raw},{masked}", "--tasks", task,
                                "--episodes", "1"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [(r["masking"], r["sentence"]) for r in rows] == [("none", "recorded"), ("none", "eval"),
                                                              ("lite", "recorded"), ("lite", "eval")]
    assert all(r["frames"] == episodes[0]["steps"] and -1 <= r["cos"] <= 1 and 0 <= r["sign"] <= 1 for r in rows)
    assert rows[0]["xyz"] != rows[1]["xyz"] and rows[2]["xyz"] != rows[3]["xyz"]  # the sentences differ
    # the recorded instruction given as --sentence: both rows are the same run
    assert language_probe.main(["--demos", str(folder), "--checkpoint", str(raw), "--tasks", task,
                                "--sentence", episodes[0]["instruction"]]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [r["sentence"] for r in again] == ["recorded", "given"]
    assert {k: v for k, v in again[0].items() if k != "sentence"} == {k: v for k, v in again[1].items()
                                                                      if k != "sentence"}


def test_bad_arguments_are_refused_by_name(demos, tmp_path, capsys):
    folder, episodes = demos
    raw = untrained_policy_file(tmp_path / "raw.msgpack", {"masking": "none"})
    assert language_probe.main(["--demos", str(folder), "--checkpoint", str(raw), "--tasks", "fly_away"]) == 2
    assert "unknown task 'fly_away'" in capsys.readouterr().err
    assert language_probe.main(["--demos", str(folder), "--checkpoint", str(tmp_path / "none.msgpack"),
                                "--tasks", episodes[0]["task"]]) == 2
    assert "no checkpoint file" in capsys.readouterr().err
    absent = next(t for t in ("open_drawer", "close_drawer", "stack_block") if t not in {e["task"] for e in episodes})
    assert language_probe.main(["--demos", str(folder), "--checkpoint", str(raw), "--tasks", absent]) == 2
    assert f"no successful episode of ['{absent}']" in capsys.readouterr().err
    widowx = untrained_policy_file(tmp_path / "widowx.msgpack", {"masking": "none"},
                                   TINY.replaced([("robot", "widowx"), ("proprio_index", tuple(range(8)))]))
    assert language_probe.main(["--demos", str(folder), "--checkpoint", str(widowx), "--tasks",
                                episodes[0]["task"]]) == 2
    assert "drives the widowx robot; the probe replays CALVIN demonstrations" in capsys.readouterr().err
