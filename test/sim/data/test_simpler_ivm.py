"""``ivm-ros sim-data simpler-ivm`` on SimplerEnvDouble with a scripted expert stand-in: the ``ivm_ros_sim.ivm/1``
format (sim-train-lite's loader reads it), the instructions of each frame and that every mask is exactly the named
actors' pixels, the expert stages, determinism per seed, the machine-labeller option and the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ivm_ros_sim.data import engine
from ivm_ros_sim.data import simpler_ivm as S
from ivm_ros_sim.simpler import double as D
from ivm_ros_sim.simpler.distractors import choose_models

from ivm_ros.models.lite.data import load_set

TASKS = ("widowx_carrot_on_plate", "widowx_stack_cube", "widowx_put_eggplant_in_basket")
VARIANTS = ("visual_matching", "distractors_2")


class StageExpertStandIn:
    """A scripted expert stand-in for SimplerEnvDouble: +1 cm x per step, the gripper closed for its 3rd-6th
    actions, phase ``done`` at its 10th (so frames 1-2 are before, 3-6 during, 7-9 after the grasp)."""

    def __init__(self, task_env) -> None:
        self.env, self.n, self.phase = task_env, 0, "approach"

    def reset(self) -> None:
        self.n, self.phase = 0, "approach"

    def act(self, frame) -> np.ndarray:
        self.n += 1
        self.phase = "done" if self.n >= 10 else "approach"
        return np.array([0.01, 0, 0, 0, 0, 0, -1.0 if 3 <= self.n <= 6 else 1.0])


def _generate(out, samples=60, seed=2, **kw):
    """Seed 2, one episode per block: 60 samples hold all three tasks and both variants."""
    return S.generate_simpler_ivm(out, samples, seed, size=16, tasks=TASKS, variants=VARIANTS, backend="double",
                                  expert=StageExpertStandIn, progress=False, episodes_per_block=1, **kw)


def _expected_mask(row: dict, size: int) -> np.ndarray:
    """The named actors' pixels of the sample's frame, from a fresh double at its seed and placement."""
    env = D.SimplerEnvDouble(row["task"], distractors=2 if row["distraction"] == "distractors_2" else 0)
    obs, _ = env.reset(seed=int(row["seed"]), options={"obj_init_options": {"episode_id": int(row["placement"])}})
    seg = obs["image"]["3rd_view_camera"]["Segmentation"][..., 1]
    text = str(row["instruction"])
    if row["kind"] == "task":
        ids = [D.SOURCE_ID, D.TARGET_ID]
    elif row["kind"] in ("source", "target"):
        ids = [D.SOURCE_ID if row["kind"] == "source" else D.TARGET_ID]
    else:  # the one distractor whose noun the sentence uses
        ids = [a.id for a in env.distractor_objs if any(n in text for n in S.nouns(a.name))]
        assert len(ids) == 1, (text, [a.name for a in env.distractor_objs])
    return S.squash(np.isin(seg, ids), size)


def test_format_loader_and_exact_masks(tmp_path):
    out = tmp_path / "ivm"
    index = _generate(out)
    assert index == json.loads((out / "index.json").read_text())
    assert index["format"] == "ivm_ros_sim.ivm/1" and index["count"] == 60 and index["image_size"] == 16
    assert index["args"]["backend"] == "double" and index["args"]["placements"] == list(range(24))
    assert index["args"]["expert"].endswith(":StageExpertStandIn") and (out / "gallery.png").stat().st_size > 0
    cols = engine.load_ivm(out)
    assert set(cols) == set(engine.ShardWriter.FIELDS + S.EXTRA_FIELDS)
    assert cols["image"].shape == (60, 16, 16, 3) and cols["image"].dtype == np.uint8
    assert cols["mask"].shape == (60, 16, 16) and cols["mask"].dtype == np.uint8
    assert set(np.unique(cols["mask"])) == {0, 1}
    assert (cols["quality"] == 1).all() and (cols["degradation"] == "none").all() and (cols["camera"] == "static").all()
    assert set(cols["distraction"]) == set(VARIANTS) and set(cols["task"]) == set(TASKS)
    assert not ((cols["task"] == TASKS[2]) & (cols["distraction"] == "distractors_2")).any()  # no eggplant distractors
    for i in range(60):
        row = {k: v[i] for k, v in cols.items()}
        np.testing.assert_array_equal(cols["mask"][i], _expected_mask(row, 16), err_msg=str(row["instruction"]))
    # sim-train-lite's loader reads it unchanged (a stand-in sentence encoder keeps this test model-free)
    data = load_set(out, 8, lambda texts: torch.zeros(len(texts), 384), keep_full=True, progress=False)
    assert len(data) == 60 and data.images.shape == (60, 3, 8, 8) and data.targets.shape == (60, 1, 4, 4)
    assert set(data.meta["kind"]) == set(S.KINDS) and data.full_masks.shape == (60, 16, 16)


def test_instructions_and_stages_per_frame(tmp_path):
    _generate(tmp_path / "ivm", samples=200)
    cols = engine.load_ivm(tmp_path / "ivm")
    frames = np.unique(cols["frame"])[:-1]  # the last frame may be cut by the sample count
    for f in frames:
        rows = np.flatnonzero(cols["frame"] == f)
        task, variant = cols["task"][rows[0]], cols["distraction"][rows[0]]
        kinds = list(cols["kind"][rows])
        assert kinds == ["task", "source", "target"] + ["distractor"] * (2 if variant == "distractors_2" else 0)
        texts = dict(zip(kinds, cols["instruction"][rows]))
        source, target = D.DOUBLE_TASKS[task][4:6]
        assert any(n in texts["source"] for n in S.nouns(source)) and any(n in texts["target"] for n in S.nouns(target))
        own = D.DOUBLE_TASKS[task][3]
        assert texts["task"] == own or any(n in texts["task"] for n in S.nouns(source))
        if variant == "distractors_2":
            names = choose_models(task, int(cols["seed"][rows[0]]), 2)
            for text in cols["instruction"][rows[3:]]:
                assert sum(any(n in text for n in S.nouns(m)) for m in names) == 1
        assert len(set(cols["step"][rows])) == 1 and len(set(cols["stage"][rows])) == 1
    steps = {s: set(cols["step"][cols["stage"] == s]) for s in S.STAGES}
    assert steps["start"] == {0} and steps["before"] <= {1, 2} and steps["during"] <= {3, 4, 5, 6}
    assert steps["after"] <= {7, 8, 9} and all(steps.values())
    assert min(len(steps[s]) for s in ("before", "during", "after")) > 1  # drawn within each stage, not its first
    for ep in np.unique(cols["seed"]):  # every episode's frames: one per stage, in step order
        stages = [cols["stage"][i] for i in np.flatnonzero(cols["seed"] == ep) if cols["kind"][i] == "task"]
        assert stages == list(S.STAGES)[: len(stages)]
    assert set(cols["task"][cols["instruction"] == "put eggplant into yellow basket"]) <= {TASKS[2]}


def test_deterministic_per_seed_and_prefix(tmp_path):
    a, b = _generate(tmp_path / "a", 40), _generate(tmp_path / "b", 40)
    assert a["counts"] == b["counts"]
    ca, cb = engine.load_ivm(tmp_path / "a"), engine.load_ivm(tmp_path / "b")
    for k in ca:
        np.testing.assert_array_equal(ca[k], cb[k], err_msg=k)
    _generate(tmp_path / "c", 70)
    longer = engine.load_ivm(tmp_path / "c")
    for k in ca:  # a longer run with the same seed extends the shorter one
        np.testing.assert_array_equal(longer[k][:40], ca[k], err_msg=k)
    _generate(tmp_path / "d", 40, seed=3)
    other = engine.load_ivm(tmp_path / "d")
    assert not np.array_equal(other["seed"], ca["seed"])


def test_machine_labels_keep_frames_and_instructions(tmp_path):
    _generate(tmp_path / "exact", 40)
    _generate(tmp_path / "machine", 40, machine_fraction=1.0, machine_error=1.0)
    exact, machine = engine.load_ivm(tmp_path / "exact"), engine.load_ivm(tmp_path / "machine")
    for k in ("image", "instruction", "kind", "seed", "step"):
        np.testing.assert_array_equal(exact[k], machine[k])
    assert (machine["quality"] == 0).all() and set(machine["degradation"]) <= set(engine.DEGRADATIONS)
    assert (machine["mask"] != exact["mask"]).any(axis=(1, 2)).mean() > 0.5
    with pytest.raises(ValueError, match="independent"):
        _generate(tmp_path / "x", 5, machine_errors="systematic")


def test_frame_instructions_skip_hidden_objects():
    seg = np.zeros((40, 40), np.int64)
    seg[0:20, 0:20] = 16  # source: visible
    seg[30:31, 30:31] = 17  # target: one full-res pixel, gone at 20x20
    seg[20:40, 0:20] = 18  # a distractor
    objects = [("source", "baked_green_cube_3cm", (16,)), ("target", "baked_yellow_cube_3cm", (17,)),
               ("distractor", "ivm_cube_red", (18,))]
    items = S.frame_instructions("widowx_stack_cube", "stack it", objects, seg, 20, np.random.default_rng(0))
    assert [k for k, _, _ in items] == ["task", "source", "distractor"]
    task_mask = items[0][2]
    assert task_mask.sum() == 100 and task_mask[:10, :10].all()  # the target's one pixel does not survive
    assert "red" in items[2][1] and items[2][2][10:, :10].all() and items[2][2].sum() == 100


def test_command(tmp_path, capsys):
    base = ["simpler-ivm", "--backend", "double", "--expert", "test_simpler_ivm:StageExpertStandIn", "--size", "16",
            "--tasks", "widowx_spoon_on_towel", "--placements", "0-3,7", "--out", str(tmp_path / "out")]
    assert engine.main([*base, "--samples", "500", "--episodes", "2", "--variant", "distractors_4"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 56 samples (8 frames, 2 episodes)" in printed and "samples/s" in printed
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["args"]["placements"] == [0, 1, 2, 3, 7] and index["counts"]["kind"]["distractor"] == 32
    with pytest.raises(SystemExit):  # the eggplant scene has no distractors: nothing to generate
        engine.main([*base, "--tasks", "widowx_put_eggplant_in_basket", "--variant", "distractors_2"])
    assert "no task" in capsys.readouterr().err
    assert S.parse_ids("0-2,5") == (0, 1, 2, 5)
