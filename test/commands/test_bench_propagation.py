"""``ivm-ros bench propagation``: a carried mask's ms per frame beside the lite predictor's, as a ratio."""

from __future__ import annotations

import json

import numpy as np

from ivm_ros.commands.bench.propagation import main, moving_square
from ivm_ros.commands.cli import BENCHES


def test_reports_each_way_of_carrying_a_mask_against_lite(capsys):
    assert "propagation" in BENCHES
    assert main(["--sizes", "200x200", "--repeat", "8", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    rows = {r["stage"]: r for r in result["rows"]}
    assert list(rows) == ["lite predictor", "flow + photometric check", "flow + forward_backward check", "hold"]
    lite = rows["lite predictor"]
    assert lite["vs lite"] == 1.0 and lite["p50"] > 0
    for row in rows.values():
        assert row["size"] == "200x200" and 0 < row["p50"] <= row["p95"] <= row["max"]
        assert abs(row["vs lite"] - row["p50"] / lite["p50"]) < 2e-3  # printed rounded to 3 decimals
    assert rows["hold"]["vs lite"] < 0.1  # holding costs next to nothing
    assert "vs lite" in out


def test_the_benchmark_scene_moves_one_pixel_per_frame():
    frames, mask = moving_square(64, 48, 3)
    assert len(frames) == 3 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert mask.shape == (1, 48, 64) and int(mask.sum()) == 12 * 12
    assert not np.array_equal(frames[0], frames[1])
    y, x = 48 // 2 - 6, 64 // 8  # the square: 12 px, at (y, x) in the first frame
    np.testing.assert_array_equal(frames[1][y:y + 12, x + 1:x + 13], frames[0][y:y + 12, x:x + 12])
