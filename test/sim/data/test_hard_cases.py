"""Hard cases of the data engine (lite v3): the v2 data unchanged bit for bit, colour swaps (one frame, one sample per
block colour, each with its own mask), weighted levels and several scenes with their proportions in the index."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from ivm_ros_sim.calvin import tasks as T
from ivm_ros_sim.calvin.env import CalvinSceneEnv
from ivm_ros_sim.calvin.masks import mask_from_segmentation
from ivm_ros_sim.calvin.scene import decode_segmentation
from ivm_ros_sim.data import engine
from ivm_ros_sim.data import hard_cases as hc


def _digest(cols: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(cols):
        a = np.ascontiguousarray(cols[k])
        for part in (k.encode(), str(a.dtype).encode(), str(a.shape).encode(), a.tobytes()):
            h.update(part)
    return h.hexdigest()


#: Computed with the data engine before the hard-case options existed (commit d5c1b39): every column of the first
#: samples, and the index.json bytes. "card" is the start of lite_v2's training set (its model card's command).
V2_DIGESTS = {
    "card": ({"samples": 8, "seed": 0, "machine_fraction": 0.8, "machine_error": 0.5},
             "3cdcf454e9f25d97d3adc321c7294816941e3659d60842faeec95c18c8d8d799",
             "709f09c6e7d886209bf967e12d4b9bddd45ea5239045bbe1d641fe8681aa3bed"),
    "small_sys": ({"samples": 6, "seed": 5, "size": 64, "machine_fraction": 1.0, "machine_errors": "systematic",
                   "frames_per_episode": 3, "levels": ("none", "paper-large")},
                  "1f4d8d0b1f9a5601211835b920347d4e29b0019e2dcbd46a8d8cde80dedb4008",
                  "73794aecc45e137cbcaa3d2af205b50fb5822c98764f126ae7b4079bf12bbeaf"),
}


@pytest.mark.parametrize("name", sorted(V2_DIGESTS))
def test_v2_data_unchanged(tmp_path, name):
    kwargs, data_digest, index_digest = V2_DIGESTS[name]
    engine.generate_ivm(tmp_path, progress=False, **kwargs)
    assert _digest(engine.load_ivm(tmp_path)) == data_digest
    assert hashlib.sha256((tmp_path / "index.json").read_bytes()).hexdigest() == index_digest
    # the v2 mix resolves to generate_ivm's defaults
    assert hc.resolve("v2") == {"levels": ("none", "small", "medium", "large"), "level_weights": None,
                                "scenes": None, "scene_weights": None, "swap_fraction": 0.0}


def test_swap_groups_share_the_frame_and_name_each_block(tmp_path):
    kwargs = {"samples": 36, "seed": 2, "size": 64, "machine_fraction": 0.0, "frames_per_episode": 2,
              "levels": ("none",), "progress": False}
    index = engine.generate_ivm(tmp_path / "swap", swap_fraction=1.0, **kwargs)
    ds = engine.load_ivm(tmp_path / "swap")
    assert index["count"] == 36 and index["counts"]["swap"] == int(ds["swap"].sum()) > 0
    assert index["counts"]["frames"] == len(set(ds["frame"].tolist())) and index["args"]["swap_fraction"] == 1.0
    groups = 0
    for frame in sorted(set(ds["frame"].tolist())):
        idx = np.flatnonzero(ds["frame"] == frame)
        if T.target_block(str(ds["task"][idx[0]])) is None:
            assert len(idx) == 1  # only frames of tasks that name a block swap
            continue
        groups += len(idx) == 3  # 2: a block hidden from the camera has no sample
        assert list(ds["swap"][idx]) == [0] + [1] * (len(idx) - 1)
        assert all((ds["image"][i] == ds["image"][idx[0]]).all() for i in idx)  # the same rendered frame
        named = [T.target_block(str(ds["task"][i])) for i in idx]
        assert len(set(named)) == len(named)
        masks = [ds["mask"][i].astype(bool) for i in idx]
        assert all(m.any() for m in masks)
        assert all((a != b).any() for k, a in enumerate(masks) for b in masks[k + 1:])  # the mask moves
        words = [str(ds["instruction"][i]).split() for i in idx]  # the sentence differs in the colour word only
        assert all(len(w) == len(words[0]) for w in words)
        assert all(sum(x != y for x, y in zip(w, words[0])) <= 1 for w in words)
    assert groups >= 3
    # the swaps draw from their own generator: the original samples are those of the same run without swaps
    plain = engine.generate_ivm(tmp_path / "plain", **kwargs | {"samples": int((ds["swap"] == 0).sum())})
    ref = engine.load_ivm(tmp_path / "plain")
    orig = ds["swap"] == 0
    assert plain["count"] == orig.sum()
    for key in ("image", "mask", "instruction", "task", "seed", "step"):
        np.testing.assert_array_equal(ds[key][orig], ref[key], err_msg=key)


def test_swap_masks_cover_each_named_block():
    """Each colour's mask is its block's visible pixels (lift from the table: the block alone)."""
    env = CalvinSceneEnv(static_size=96, gripper_size=32, render=False, segmentation=True)
    try:
        env.reset(seed=4, task="lift_red_block_table", distraction="lookalike")
        _, seg = env.scene.render("static", segmentation=True)
        swapper = hc.Swapper(0, 1.0)
        variants = list(swapper.variants(env, seg, "lift_red_block_table", "pick up the red block"))
        body, _ = decode_segmentation(seg)
        assert [t for t, _, _ in variants] == ["lift_blue_block_table", "lift_pink_block_table"]
        assert [s for _, s, _ in variants] == ["pick up the blue block", "pick up the pink block"]
        for task, _, parts in variants:
            block = env.scene.blocks[T.target_block(task)]
            assert (body == block).sum() >= 10
            np.testing.assert_array_equal(mask_from_segmentation(seg, parts), body == block)
        assert not list(hc.Swapper(0, 1.0).variants(env, seg, "open_drawer", "open the drawer"))
        assert not list(hc.Swapper(0, 0.0).variants(env, seg, "lift_red_block_table", "pick up the red block"))
    finally:
        env.close()
    assert hc.recolour("push_red_block_left", "push the red block to the red side", "blue") == (
        "push_blue_block_left", None)  # two colour words: a fresh paraphrase instead


def test_weighted_levels_and_scenes_proportions():
    draws = hc.EpisodeDraws(0, ("none", "clutter", "paper-large"), (1.0, 1.0, 2.0), ("A", "B", "C"), (1.0, 1.0, 2.0))
    rng = np.random.default_rng(0)
    n = 6000
    levels = Counter(draws.level(rng) for _ in range(n))
    scenes = Counter(draws.scene() for _ in range(n))
    for counts in (levels, scenes):
        shares = np.array(list(counts.values()))
        assert abs(counts[max(counts, key=counts.get)] / n - 0.5) < 0.03 and len(shares) == 3
        assert all(abs(c / n - 0.25) < 0.03 for k, c in counts.items() if c != max(shares))
    assert hc.parse_weighted("none,paper-large:3") == (("none", "paper-large"), (1.0, 3.0))
    assert hc.parse_weighted("A,B") == (("A", "B"), None)
    with pytest.raises(ValueError):
        hc.EpisodeDraws(0, ("extreme",))
    with pytest.raises(ValueError):
        hc.EpisodeDraws(0, ("none",), scenes=("E",))
    with pytest.raises(ValueError):
        hc.parse_weighted("none:0")


def test_levels_and_scenes_in_the_index(tmp_path):
    kwargs = {"samples": 16, "seed": 1, "size": 32, "frames_per_episode": 1, "progress": False,
              "levels": ("none", "appearance", "lookalike"), "level_weights": (1.0, 1.0, 2.0)}
    index = engine.generate_ivm(tmp_path, scenes=("A", "B", "C", "D"), **kwargs)
    ds = engine.load_ivm(tmp_path)
    assert index["counts"]["distraction"] == dict(Counter(ds["distraction"].tolist()))
    assert index["counts"]["scene"] == dict(Counter(ds["scene"].tolist()))
    assert set(index["counts"]["scene"]) == {"A", "B", "C", "D"}
    assert set(index["counts"]["distraction"]) == {"none", "appearance", "lookalike"}
    assert index["counts"]["distraction"]["lookalike"] >= 6  # weighted 2/4 of 16 episodes
    assert index["args"]["scenes"] == ["A", "B", "C", "D"] and index["args"]["level_weights"] == [1, 1, 2]
    assert index["counts"]["swap"] == 0 and index["counts"]["frames"] == 16
    # the scene column tells the truth: scene A's frames differ from scene D's at the same episode draws
    one = engine.generate_ivm(tmp_path / "d", scenes=("D",), **kwargs)
    d = engine.load_ivm(tmp_path / "d")
    assert one["counts"]["scene"] == {"D": 16}
    np.testing.assert_array_equal(d["seed"], ds["seed"])  # scene draws do not move the episode draws
    np.testing.assert_array_equal(d["image"][ds["scene"] == "D"], ds["image"][ds["scene"] == "D"])
    assert not (d["image"][ds["scene"] == "A"] == ds["image"][ds["scene"] == "A"]).all()


def test_sim_data_mix_command(tmp_path, capsys):
    assert engine.main(["ivm", "--out", str(tmp_path), "--samples", "6", "--size", "32", "--mix", "v3"]) == 0
    out = capsys.readouterr().out
    assert "wrote 6 samples" in out and "counts: " in out
    args = json.loads((Path(tmp_path) / "ivm" / "index.json").read_text())["args"]
    assert args["scenes"] == ["A", "B", "C", "D"] and args["swap_fraction"] == 0.5
    assert dict(zip(args["levels"], args["level_weights"]))["paper-large"] == 3.0
    assert engine.main(["ivm", "--out", str(tmp_path / "o"), "--samples", "3", "--size", "32", "--mix", "v3",
                        "--scenes", "B", "--swap-fraction", "0", "--levels", "clutter"]) == 0
    args = json.loads((Path(tmp_path) / "o" / "ivm" / "index.json").read_text())["args"]
    assert (args["scenes"], args["swap_fraction"], args["levels"], args["level_weights"]) == (["B"], 0, ["clutter"],
                                                                                               None)
    with pytest.raises(SystemExit):
        engine.main(["ivm", "--out", str(tmp_path / "x"), "--levels", "extreme:2"])


def test_v2_abc_mix_is_v2_from_scenes_a_b_c():
    """lite_v2_abc's data: lite_v2's levels and labels without swaps, each episode's scene drawn from A, B, C (the
    same arguments as ``--mix v2 --scenes A,B,C``, which trained it), evaluated on v2's scene-D sets, shipped under
    its own registered name."""
    import argparse

    from ivm_ros_sim.train import lite

    from ivm_ros.models.lite import checkpoint

    abc = hc.resolve("v2-abc")
    assert abc == hc.resolve("v2", scenes="A,B,C")
    assert abc["levels"] == hc.resolve("v2")["levels"] and abc["swap_fraction"] == 0.0
    assert abc["scenes"] == ("A", "B", "C") and "D" not in abc["scenes"]
    assert lite.eval_sets(argparse.Namespace(mix="v2-abc")) == lite.EVAL_SETS  # held-out scene-D episodes
    assert lite.SHIP_NAMES["v2-abc"] == "lite_v2_abc" and "lite_v2_abc" in checkpoint.NAMED
