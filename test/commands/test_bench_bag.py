"""``ivm-ros bench bag``: one run reports mask-bag and the pipeline alone for each predictor, on both storages."""

from __future__ import annotations

import json
import math

import pytest

from ivm_ros.commands.bench.bag import main


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_reports_mask_bag_against_the_pipeline_alone(storage, capsys):
    assert main(["--frames", "3", "--size", "64x48", "--storage", storage, "--models", "keep_all,color_keyword",
                 "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["storage"] == storage and result["input_mb"] > 0
    assert [r["model"] for r in result["rows"]] == ["keep_all", "color_keyword"]
    for row in result["rows"]:
        assert row["frames"] == 6 and row["output MB"] > result["input_mb"]  # input copied + masked + masks
        assert row["pipeline fps"] > 0 and row["mask-bag fps"] > 0 and math.isfinite(row["io ms/frame"])
        # the ratio is printed rounded to 3 decimals
        ratio = pytest.approx(row["mask-bag fps"] / row["pipeline fps"], abs=6e-4, rel=0.02)
        assert row["mask-bag/pipeline"] == ratio
    assert "mask-bag fps" in out
