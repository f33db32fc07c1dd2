"""``ivm-ros calvin-compare``: runs scored on their common chains, paired differences, errors for folders that are
not runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ivm_ros_sim.eval import compare


def _run(folder, settings, completed):
    folder.mkdir()
    (folder / "settings.json").write_text(json.dumps(settings))
    lines = [json.dumps({"index": i, "subtasks": ["open_drawer"] * 5, "completed": c, "steps": [10]})
             for i, c in completed.items()]
    (folder / "chains.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_rows_are_paired_on_the_common_chains(tmp_path, capsys):
    clean = _run(tmp_path / "clean", {"policy": "embedded", "masking": False, "distraction": "none"},
                 {0: 2, 1: 1, 2: 0, 3: 3, 4: 5})
    large = _run(tmp_path / "large", {"policy": "embedded", "masking": True, "model": "lite", "distraction": "large"},
                 {0: 1, 1: 1, 2: 0, 3: 1})  # interrupted: chain 4 missing
    assert compare.main([str(clean), str(large), "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["chains"] == 4 and result["last_chain"] == 3
    ref, other = result["rows"]
    assert ref["run"] == "embedded, masking off, none" and other["run"] == "embedded, masking lite, large"
    assert ref["avg_len"] == pytest.approx(1.5) and other["avg_len"] == pytest.approx(0.75)
    diff = np.array([-1, 0, 0, -2], float)
    assert other["paired_diff"] == pytest.approx(diff.mean())
    assert other["paired_diff_stderr"] == pytest.approx(diff.std(ddof=1) / 2)
    assert other["relative"] == pytest.approx(0.5) and other["success_at"] == [0.75, 0.0, 0.0, 0.0, 0.0]
    assert "| embedded, masking lite, large | 0.75 +- 0.25 |" in out and "50 %" in out
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_runs_of_two_policy_files_are_told_apart():
    settings = {"policy": "embedded", "masking": True, "model": "lite", "distraction": "none"}
    assert compare.label(settings) == "embedded, masking lite, none"
    weights = "ivm_ros/policies/embedded/weights/policy_calvin_raw_v7.msgpack"
    named = settings | {"policy_config": {"checkpoint": weights}}
    assert compare.label(named) == "embedded policy_calvin_raw_v7, masking lite, none"
    diag = {**named, "distraction": "appearance", "distraction_cameras": "static"}
    assert compare.label(diag) == "embedded policy_calvin_raw_v7, masking lite, appearance (static camera only)"
    hidden = {**named, "distraction": "paper-large", "distraction_cameras": "static-all"}
    assert compare.label(hidden).endswith("paper-large (gripper camera sees none of it)")
    assert compare.label(hidden | {"distraction_cameras": "none"}).endswith("paper-large (no camera sees it)")


def test_per_task_counts_attempts_up_to_the_first_failure(tmp_path, capsys):
    chain = ["open_drawer", "lift_red_block_table", "open_drawer", "turn_on_led", "stack_block"]
    a = tmp_path / "a"
    a.mkdir()
    (a / "settings.json").write_text(json.dumps({"policy": "expert"}))
    rows = [{"index": 0, "subtasks": chain, "completed": 2}, {"index": 1, "subtasks": chain, "completed": 5},
            {"index": 2, "subtasks": chain[::-1], "completed": 0}]
    (a / "chains.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    b = _run(tmp_path / "b", {"policy": "expert"}, {0: 0, 1: 1, 3: 2})
    assert compare.main([str(a), str(b), "--per-task", "--names", "a,b"]) == 0
    out = capsys.readouterr().out
    table = json.loads(out.strip().splitlines()[-1])["per_task"]
    # a: chain 0 tries drawer (won), lift (won), drawer (lost); chain 1 all five won; b (its own file says
    # open_drawer x5, but the chains' subtasks are read from the first run): chain 0 lost drawer, chain 1 won drawer,
    # lost lift
    assert table["open_drawer"] == [[3, 4], [1, 2]]
    assert table["lift_red_block_table"] == [[2, 2], [0, 1]]
    assert table["stack_block"] == [[1, 1], [0, 0]]
    assert "| stack_block | 1/1 | - |" in out and "| task | a | b |" in out


def test_errors_are_one_line_and_status_2(tmp_path, capsys):
    a = _run(tmp_path / "a", {"policy": "expert"}, {0: 5})
    b = _run(tmp_path / "b", {"policy": "expert"}, {7: 5})
    assert compare.main([str(a), str(b)]) == 2
    assert "share no chain" in capsys.readouterr().err
    assert compare.main([str(a), str(tmp_path)]) == 2
    assert "is not a calvin-eval run" in capsys.readouterr().err
    (b / "chains.jsonl").write_text('{"index": 0}\n')
    assert compare.main([str(a), str(b)]) == 2
    assert "chains.jsonl:1: not a chain result" in capsys.readouterr().err
    assert compare.main([str(a), str(a), "--names", "x"]) == 2
    assert "1 names for 2 runs" in capsys.readouterr().err


def test_arms_summarise_runs_with_a_run_level_error(tmp_path, capsys):
    settings = {"policy": "embedded", "masking": False, "distraction": "none"}
    m = [_run(tmp_path / f"m{k}", settings, {0: a, 1: b}) for k, (a, b) in enumerate([(1, 0), (2, 1), (0, 0)])]
    r = [_run(tmp_path / f"r{k}", settings, {0: a, 1: b, 2: 5}) for k, (a, b) in enumerate([(2, 2), (1, 1)])]
    single = _run(tmp_path / "s", settings, {0: 3, 1: 3})
    argv = ["--arm", "masked=" + ",".join(map(str, m)), "--arm", "raw=" + ",".join(map(str, r)),
            "--arm", f"one={single}"]
    assert compare.main(argv) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["chains"] == 2  # chain 2 only in the raw runs
    assert [row["run"] for row in result["rows"]][:2] == ["masked: m0", "masked: m1"]
    masked, raw, one = result["arms"]
    lens = np.array([0.5, 1.5, 0.0])
    assert masked["runs"] == 3 and masked["avg_len_mean"] == pytest.approx(lens.mean())
    assert masked["avg_len_std"] == pytest.approx(lens.std(ddof=1))
    assert masked["avg_len_stderr"] == pytest.approx(lens.std(ddof=1) / np.sqrt(3))
    assert masked["diff"] == 0 and masked["diff_stderr"] is None
    raw_lens = np.array([2.0, 1.0])
    assert raw["diff"] == pytest.approx(raw_lens.mean() - lens.mean())
    se = (lens.std(ddof=1) / np.sqrt(3), raw_lens.std(ddof=1) / np.sqrt(2))
    assert raw["diff_stderr"] == pytest.approx(np.hypot(*se))
    assert raw["diff_dof"] == pytest.approx((se[0] ** 2 + se[1] ** 2) ** 2 / (se[0] ** 4 / 2 + se[1] ** 4 / 1))
    assert one["avg_len_std"] is None and one["diff_stderr"] is None and one["diff_dof"] is None
    assert one["diff"] == pytest.approx(3 - lens.mean())
    assert "| raw | 2 | 1.50 | 0.71 |" in out and "(one run: no error)" in out and "| reference |" in out


def test_arm_errors_are_one_line_and_status_2(tmp_path, capsys):
    a = _run(tmp_path / "a", {"policy": "expert"}, {0: 5})
    for bad in ("masked", "masked=", f"={a}"):
        assert compare.main(["--arm", bad]) == 2
        assert "expected NAME=RUN[,RUN...]" in capsys.readouterr().err
    assert compare.main([]) == 2
    assert "no runs" in capsys.readouterr().err
    assert compare.main(["--arm", f"x={a},{tmp_path}"]) == 2
    assert "is not a calvin-eval run" in capsys.readouterr().err
