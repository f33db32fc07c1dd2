"""``ivm-ros lite-eval``: object-level mask metrics on hand-made masks, the evaluation sets, the ground-truth upper
bound, the swap test against an instruction-blind predictor, and the command's output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ivm_ros_sim.data.engine import generate_ivm, load_ivm
from ivm_ros_sim.eval import lite_eval, lite_sets
from ivm_ros_sim.eval import mask_metrics as M


def _mask(shape: tuple[int, int], *boxes: tuple[int, int, int, int]) -> np.ndarray:
    """(H, W) bool with the given (y0, y1, x0, x1) boxes set."""
    m = np.zeros(shape, bool)
    for y0, y1, x0, x1 in boxes:
        m[y0:y1, x0:x1] = True
    return m


# ---------------------------------------------------------------------------------------------- metric functions
def test_iou_is_the_lite_definition():
    truth = _mask((10, 10), (0, 2, 0, 5))  # 10 px
    pred = _mask((10, 10), (0, 1, 0, 10))  # 10 px, 5 of them on truth
    assert M.frame_iou(pred, truth) == pytest.approx(5 / 15)
    assert M.frame_iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0
    assert M.frame_iou(truth, np.zeros((10, 10), bool)) == 0.0


def test_coverage_and_wrong_mass_exact_values():
    named = _mask((10, 10), (0, 1, 0, 10))  # row 0: 10 px
    other = _mask((10, 10), (5, 6, 0, 10))  # row 5: 10 px
    pred = _mask((10, 10), (0, 1, 0, 4), (5, 6, 0, 1))  # 4 on named, 1 on other, 5 px in all
    assert M.coverage(pred, named) == pytest.approx(0.4)
    assert M.wrong_mass(pred, other, named) == pytest.approx(0.2)
    assert M.coverage(pred, np.zeros_like(named)) == 1.0  # nothing to cover
    assert M.wrong_mass(np.zeros_like(pred), other, named) == 0.0  # empty mask
    with_table = pred | _mask((10, 10), (7, 10, 0, 10))  # + 30 px on neither (robot, table, background)
    assert M.wrong_mass(with_table, other, named) == pytest.approx(0.2)  # the share of the mass on objects
    assert M.wrong_mass(with_table, other, None) == pytest.approx(1 / 35)  # the share of the whole mask
    row = M.score_frame(pred, named, named, other)
    assert row == {"iou": pytest.approx(4 / 11), "coverage": pytest.approx(0.4), "wrong": pytest.approx(0.2),
                   "wrong_frame": pytest.approx(0.2), "hit": 0.0, "hit_copy_neutral": 0.0, "copy": 0.0}


def test_hit_boundary_at_half_coverage():
    named = _mask((10, 10), (0, 1, 0, 10))  # 10 px
    other = _mask((10, 10), (9, 10, 0, 10))
    assert M.hit(_mask((10, 10), (0, 1, 0, 5)), named, other, named)  # exactly 50 % covered
    assert not M.hit(_mask((10, 10), (0, 1, 0, 4)), named, other, named)  # 40 %
    big = _mask((20, 20), (0, 2, 0, 10))  # 20 px named
    assert not M.hit(_mask((20, 20), (0, 1, 0, 9)), big, np.zeros_like(big), big)  # 9 / 20 = 45 %
    assert M.hit(_mask((20, 20), (0, 1, 0, 10)), big, np.zeros_like(big), big)  # 10 / 20


def test_hit_boundary_at_a_fifth_wrong_mass():
    named = _mask((10, 10), (0, 1, 0, 10))
    other = _mask((10, 10), (5, 6, 0, 10))
    on_named = (0, 1, 0, 8)  # 8 px on the named object
    assert M.hit(_mask((10, 10), on_named, (5, 6, 0, 2)), named, other, named)  # 2 / 10 = 20 % wrong: still a hit
    assert not M.hit(_mask((10, 10), on_named, (5, 6, 0, 3)), named, other, named)  # 3 / 11 = 27 % wrong
    # mass on the robot / table / background (neither named nor other) counts neither way
    assert M.hit(_mask((10, 10), on_named, (7, 10, 0, 10)), named, other, named)
    assert not M.hit(_mask((10, 10), on_named, (5, 6, 0, 3), (7, 10, 0, 10)), named, other, named)


def test_the_identical_copy_counts_neither_way_in_the_copy_neutral_hit():
    named, other = _mask((10, 10), (0, 1, 0, 10)), _mask((10, 10), (5, 7, 0, 10))
    copy = _mask((10, 10), (5, 6, 0, 10))  # one of the two other rows is the named block's identical copy
    both = _mask((10, 10), (0, 1, 0, 10), (5, 6, 0, 10))  # the named block and its copy
    s = M.score_frame(both, named, named, other, copy)
    assert (s["hit"], s["hit_copy_neutral"], s["copy"]) == (0.0, 1.0, 1.0)
    wrong = _mask((10, 10), (0, 1, 0, 10), (6, 7, 0, 10))  # the named block and the other (not identical) object
    assert M.score_frame(wrong, named, named, other, copy)["hit_copy_neutral"] == 0.0
    s = M.score_frame(both, named, named, other)  # no copy in the frame: the same as the hit
    assert (s["hit"], s["hit_copy_neutral"], s["copy"]) == (0.0, 0.0, 0.0)


def test_lookalike_frames_know_the_identical_copy():
    frames = list(lite_sets.set_frames("lookalike", 8))
    with_copy = [f for f in frames if f.twin is not None]
    assert with_copy, [f.task for f in frames]
    for f in with_copy:
        assert f.twin.any() and (f.twin <= f.other).all() and not (f.twin & f.named).any()
    assert all(f.twin is None for f in lite_sets.set_frames("clean", 4))


def test_a_mask_of_the_whole_frame_is_no_hit():
    """Other objects fill 10 % of this frame: the whole-frame mask puts only 10 % of its pixels on them, but half of
    its mass on objects."""
    named, other = _mask((10, 10), (0, 1, 0, 10)), _mask((10, 10), (5, 6, 0, 10))
    everything = np.ones((10, 10), bool)
    assert M.wrong_mass(everything, other, None) == pytest.approx(0.1)
    assert M.wrong_mass(everything, other, named) == pytest.approx(0.5)
    assert not M.hit(everything, named, other, named)


def test_argmax_block_and_swap():
    blocks = np.stack([_mask((10, 10), (0, 2, 0, 2)), _mask((10, 10), (4, 6, 4, 6)), _mask((10, 10), (8, 10, 8, 10))])
    assert M.argmax_block(blocks[1], blocks) == 1
    assert M.argmax_block(blocks[0] | blocks[1], blocks) == -1  # tie
    assert M.argmax_block(np.zeros((10, 10), bool), blocks) == -1  # empty
    assert M.swap_pass(list(blocks), blocks)
    assert M.swap_matches([blocks[0]] * 3, blocks) == [True, False, False]
    assert not M.swap_pass([blocks[0]] * 3, blocks)
    assert not M.swap_pass([blocks[0], blocks[2], blocks[2]], blocks)


def test_summarize_per_family():
    rows = [{"family": "lift", "iou": 1.0, "hit": 1.0, "wrong": 0.0, "wrong_frame": 0.0, "swap": True,
             "swap_blocks": 1.0},
            {"family": "lift", "iou": 0.5, "hit": 0.0, "wrong": 0.5, "wrong_frame": 0.2, "swap": False,
             "swap_blocks": 1 / 3},
            {"family": "drawer", "iou": 0.0, "hit": 0.0, "wrong": 1.0, "wrong_frame": 0.4, "swap": None}]
    s = M.summarize(rows)
    assert s["miou"] == pytest.approx(0.5) and s["hit_rate"] == pytest.approx(1 / 3)
    assert s["wrong_object_mass"] == pytest.approx(0.5) and s["swap_pass_rate"] == pytest.approx(0.5)
    assert s["wrong_frame_mass"] == pytest.approx(0.2)
    assert s["swap_block_rate"] == pytest.approx(2 / 3) and (s["frames"], s["swap_frames"]) == (3, 2)
    assert s["hit_rate_copy_neutral"] == s["hit_rate"] and s["copy_frames"] == 0  # rows without the copy fields
    assert s["family"]["lift"]["miou"] == pytest.approx(0.75) and s["family"]["drawer"]["swap_pass_rate"] is None
    with pytest.raises(ValueError):
        M.summarize([])


# ---------------------------------------------------------------------------------------------- sets and predictors
def test_clean_set_is_the_lite_training_evaluation_set(tmp_path):
    """Same seed, same draws as the data engine's exact-label set: the frames the model card's mIoU used."""
    generate_ivm(tmp_path, 4, seed=101, machine_fraction=0.0, levels=("none",), progress=False)
    ref = load_ivm(tmp_path)
    frames = list(lite_sets.set_frames("clean", 4))
    assert len(frames) == 4
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(f.image, ref["image"][i])
        np.testing.assert_array_equal(f.truth, ref["mask"][i].astype(bool))
        assert f.instruction == ref["instruction"][i] and f.task == ref["task"][i]
        assert not (f.truth & f.other).any() and (f.named <= f.truth).all()


@pytest.fixture(scope="module")
def tiny_frames() -> list[lite_sets.EvalFrame]:
    """4 clean episode frames (block tasks, swap frames among them) and 3 CALVIN chain subtask starts."""
    frames = list(lite_sets.set_frames("clean", 4)) + list(lite_sets.set_frames("calvin", 3))
    assert sum(f.swap is not None for f in frames) >= 2
    return frames


def _scores(frames: list[lite_sets.EvalFrame], source: lite_eval.MaskSource) -> dict:
    return M.summarize(lite_eval.score(f, source)[0] for f in frames)


def test_groundtruth_scores_perfectly(tiny_frames):
    s = _scores(tiny_frames, lite_eval.GroundTruthSource())
    assert (s["miou"], s["hit_rate"], s["wrong_object_mass"], s["swap_pass_rate"]) == (1.0, 1.0, 0.0, 1.0)


class IgnoresInstructionDouble:
    """Test double: answers every instruction on an image with the ground truth of the first instruction it was asked
    about on that image, so its mask depends on the image only."""

    def __init__(self) -> None:
        self.first: dict[bytes, np.ndarray] = {}

    def __call__(self, images: np.ndarray, instructions: list[str], truths: np.ndarray) -> np.ndarray:
        out = []
        for img, truth in zip(images, truths):
            out.append(self.first.setdefault(img.tobytes(), truth.astype(np.float32)))
        return np.stack(out)


def test_swap_test_fails_a_predictor_that_ignores_the_instruction(tiny_frames):
    s = _scores(tiny_frames, IgnoresInstructionDouble())
    assert s["hit_rate"] == 1.0 and s["miou"] == 1.0  # perfect on the frame's own instruction ...
    assert s["swap_frames"] >= 2 and s["swap_pass_rate"] == 0.0  # ... but the mask never moves
    assert s["swap_block_rate"] == pytest.approx(1 / 3)


def test_unknown_set_is_refused():
    with pytest.raises(ValueError, match="paper-large"):
        lite_sets.check_set("nope")


# ---------------------------------------------------------------------------------------------- command
def test_command_prints_a_table_and_json_last(tmp_path, capsys):
    rc = lite_eval.main(["--set", "clean", "--set", "calvin", "--model", "groundtruth", "--frames", "2", "--json",
                         "--no-progress", "--out", str(tmp_path)])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:5] == ["set", "miou", "hit", "wrong", "swap"]
    report = json.loads(lines[-1])
    for key in ("miou", "hit_rate", "wrong_object_mass", "swap_pass_rate", "family", "sets", "settings"):
        assert key in report
    assert report["hit_rate"] == 1.0 and report["wrong_object_mass"] == 0.0
    assert set(report["sets"]) == {"clean", "calvin"} and report["settings"]["frames"] == 2
    assert report["settings"]["model"] == "groundtruth"
    assert json.loads(Path(tmp_path / "lite_eval.json").read_text())["sets"] == report["sets"]
    assert (tmp_path / "lite_eval.png").stat().st_size > 10_000


def test_command_with_a_registered_predictor_and_a_bad_set(capsys):
    rc = lite_eval.main(["--set", "clean", "--model", "keep_all", "--frames", "2", "--json", "--no-progress"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and report["miou"] < 0.2 and report["swap_pass_rate"] == 0.0  # the whole frame, every time
    assert report["hit_rate"] == 0.0 and report["wrong_object_mass"] > 0.5
    assert lite_eval.main(["--set", "nope", "--model", "groundtruth"]) == 2
    assert lite_eval.main(["--set", "clean", "--model", "nope"]) == 2
    assert lite_eval.main(["--set", "clean", "--model", "groundtruth", "--frames", "0"]) == 2
