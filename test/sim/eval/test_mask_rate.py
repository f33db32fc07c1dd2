"""``ivm-ros sim-mask-rate`` on one short CALVIN episode: every method scored against the simulator's masks."""

from __future__ import annotations

import json

import numpy as np
from ivm_ros_sim.eval.mask_rate import iou, main


def test_one_episode_scores_every_method_and_saves_the_plot(tmp_path, capsys):
    plot = tmp_path / "iou.png"
    assert main(["--tasks", "open_drawer", "--size", "96", "--plot", str(plot), "--no-progress"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    methods = result["methods"]
    assert list(methods) == ["lite", "lite_2hz_flow", "lite_2hz_hold", "gt_2hz_flow", "gt_2hz_hold"]
    frames = result["frames"]
    assert result["episodes"] == 1 and frames > 20  # the expert opens the drawer in about 40 frames at 30 Hz
    for name, r in methods.items():
        assert sum(r["counts"].values()) == r["frames"] == frames, name
        assert 0.0 <= r["miou"] <= 1.0
    assert methods["lite"]["counts"] == {"predicted": frames} and methods["lite"]["predictor_ms_p50"] > 0
    # 2 Hz of a 30 Hz camera: a prediction every 15 frames (plus any the confidence check asked for)
    assert frames // 15 <= methods["lite_2hz_hold"]["counts"]["predicted"] <= frames // 15 + 1
    assert methods["gt_2hz_hold"]["counts"].get("held", 0) > frames // 2
    # the drawer moves: the ground truth carried by flow beats holding it, and stays near the truth
    assert methods["gt_2hz_flow"]["miou"] > methods["gt_2hz_hold"]["miou"] + 0.02
    assert methods["gt_2hz_flow"]["miou"] > 0.85 and methods["gt_2hz_flow"]["propagation_ms_p50"] > 0
    assert result["flow_minus_lite"] == methods["lite_2hz_flow"]["miou"] - methods["lite"]["miou"]
    assert "| lite_2hz_flow |" in out  # the table
    assert plot.stat().st_size > 10_000


def test_an_unknown_task_is_refused(capsys):
    assert main(["--tasks", "fly_to_the_moon", "--no-progress"]) == 2
    assert "unknown task 'fly_to_the_moon'" in capsys.readouterr().err


def test_iou_of_empty_masks_is_one():
    empty, full = np.zeros((4, 4), bool), np.ones((4, 4), bool)
    assert iou(empty, empty) == 1.0 and iou(full, empty) == 0.0 and iou(full, full) == 1.0
