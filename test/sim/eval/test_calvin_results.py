"""The CALVIN-protocol results kept in the repository (``results/calvin/<condition>``, continued across sessions by
``tools/calvin_results.sh`` with ``calvin-eval --resume``) are what their folder names say and hold only sound rows:
official chains with their own subtasks, outcomes consistent with the step counts, a summary that matches."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ivm_ros_sim.calvin.chains import load_chains

REPO = Path(__file__).resolve().parents[3]
ROOT = REPO / "results" / "calvin"
FOLDERS = sorted(p for p in ROOT.iterdir() if p.is_dir()) if ROOT.is_dir() else []
#: runs of checkpoints that are not shipped (results/experiments/README.md): rows and summaries checked alike
EXPERIMENTS = sorted(p for p in (REPO / "results" / "experiments").glob("*/") if p.is_dir())
SCRIPT = REPO / "tools" / "calvin_results.sh"
#: The MASKS part of a masked condition's name -> the lite checkpoint tools/calvin_results.sh pins for it.
LITE_CHECKPOINTS = {"lite": "lite_v2", "litev3": "lite_v3", "liteabc": "lite_v2_abc"}
#: The split before a condition's scene ('' for D->D, ABC for ABC-D) -> the policy files it pins.
POLICY_FILES = {"": "policy_calvin_{}_v8.msgpack", "ABC": "policy_calvin_abc_{}_v3.msgpack"}


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "chains.jsonl").read_text().splitlines() if line.strip()]


def test_there_are_committed_results() -> None:
    assert FOLDERS, f"no result folders under {ROOT}"


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_settings_are_what_the_folder_name_says(folder: Path) -> None:
    s = json.loads((folder / "settings.json").read_text())
    scene, policy, *rest = folder.name.split("_")
    masks, level = ("none", "_".join(rest)) if policy == "raw" else (rest[0], "_".join(rest[1:]))
    split, _, scene = scene.rpartition("-")  # ABC-D: the ABC->D split's policies in scene D
    assert (s["policy"], s["scene"], s["distraction"], s["transport"]) == ("embedded", scene, level, "direct")
    assert s["masking"] is (policy == "masked")
    assert s["policy_config"]["checkpoint"].endswith(POLICY_FILES[split].format(policy))
    if masks in LITE_CHECKPOINTS:
        assert (s["model"], s["model_config"]) == ("lite", {"checkpoint": LITE_CHECKPOINTS[masks]})
    elif masks == "gt":
        assert s["model"] == "groundtruth"
    else:
        assert "model" not in s


@pytest.mark.parametrize("folder", FOLDERS + EXPERIMENTS, ids=lambda p: p.name)
def test_rows_are_sound_official_chains(folder: Path) -> None:
    max_steps = json.loads((folder / "settings.json").read_text())["max_steps"]
    rows = _rows(folder)
    index = [r["index"] for r in rows]
    assert len(set(index)) == len(index), "a chain is in the file twice"
    official = {c.index: c.subtasks for c in load_chains(max(index) + 1)}
    for r in rows:
        assert tuple(r["subtasks"]) == official[r["index"]], r["index"]
        assert 0 <= r["completed"] <= 5
        assert len(r["steps"]) == min(r["completed"] + 1, 5), r["index"]
        assert all(1 <= s <= max_steps for s in r["steps"]), r["index"]
        if r["completed"] < 5:  # the failed subtask ran to its limit
            assert r["steps"][-1] == max_steps, r["index"]


@pytest.mark.parametrize("folder", FOLDERS + EXPERIMENTS, ids=lambda p: p.name)
def test_summary_matches_the_rows(folder: Path) -> None:
    rows = _rows(folder)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n_chains"] == len(rows)
    assert summary["avg_len"] == pytest.approx(np.mean([r["completed"] for r in rows]))


def test_runner_lists_conditions_and_refuses_unknown_ones() -> None:
    out = subprocess.run([str(SCRIPT), "list"], capture_output=True, text=True, check=True).stdout
    for folder in FOLDERS:
        rows = _rows(folder)
        avg_len = np.mean([r["completed"] for r in rows])
        assert f"{folder.name}: {len(rows)} chains, avg len {avg_len:.2f}" in out
    for cond in ("D_octo_lite_none", "AB-D_raw_none", "E_raw_none"):
        bad = subprocess.run([str(SCRIPT), cond], capture_output=True, text=True)
        assert bad.returncode == 2 and f"unknown condition {cond}" in bad.stderr


@pytest.mark.parametrize("cond, masking, level", [("D_raw_fixture_lookalike", "off", "fixture_lookalike"),
                                                  ("D_masked_lite_fixture_lookalike", "on", "fixture_lookalike"),
                                                  ("ABC-D_raw_paper-large", "off", "paper-large")])
def test_runner_passes_levels_whose_names_hold_underscores(cond: str, masking: str, level: str) -> None:
    """The calvin-eval command the runner would run (``IVM_ROS_BIN=echo`` prints it instead)."""
    out = subprocess.run([str(SCRIPT), cond, "3"], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "IVM_ROS_BIN": "echo"}).stdout.split()
    assert out[out.index("--masking") + 1] == masking and out[out.index("--distraction") + 1] == level
    assert out[out.index("--chains") + 1] == "3" and out[out.index("--out") + 1] == f"results/calvin/{cond}"
