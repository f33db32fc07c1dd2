"""Data engine round trip: IVM dataset shards and expert demonstrations, label degradations, commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ivm_ros_sim import bench
from ivm_ros_sim.data import engine


def test_degradations():
    rng = np.random.default_rng(0)
    m = np.zeros((40, 40), bool)
    m[10:20, 12:25] = True
    box = engine.degrade(m, "box", rng)
    assert (box >= m).all() and box.sum() > m.sum()
    assert (engine.degrade(m, "dilate", rng) >= m).all()
    eroded = engine.degrade(m, "erode", rng)
    assert (eroded <= m).all() and 0 < eroded.sum() < m.sum()
    part = engine.degrade(m, "partial", rng)
    assert (part <= m).all() and 0 < part.sum() < m.sum()
    other = np.zeros_like(m)
    other[30:35, 30:35] = True
    np.testing.assert_array_equal(engine.degrade(m, "wrong_object", rng, other), other)
    with pytest.raises(ValueError):
        engine.degrade(m, "blur", rng)


def test_ivm_dataset_round_trip(tmp_path):
    index = engine.generate_ivm(tmp_path, samples=10, seed=1, size=48, machine_fraction=0.6, machine_error=0.5,
                              frames_per_episode=5, shard_size=6, progress=False)
    assert index["count"] == 10 and [s["count"] for s in index["shards"]] == [6, 4]
    assert json.loads((tmp_path / "index.json").read_text()) == index
    assert (tmp_path / "gallery.png").stat().st_size > 1000
    ds = engine.load_ivm(tmp_path)
    assert ds["image"].shape == (10, 48, 48, 3) and ds["image"].dtype == np.uint8
    assert ds["mask"].shape == (10, 48, 48) and set(np.unique(ds["mask"])) <= {0, 1}
    assert set(ds["quality"]) == {0, 1}
    assert all(d == "none" for d, q in zip(ds["degradation"], ds["quality"]) if q == 1)
    machine = [d for d, q in zip(ds["degradation"], ds["quality"]) if q == 0]
    assert set(machine) <= {"none", *engine.DEGRADATIONS}
    assert "none" in machine and len(set(machine)) > 1  # the machine labeller is sometimes right, sometimes wrong
    for key in ("instruction", "task", "camera", "distraction"):
        assert ds[key].dtype.kind == "U" and all(len(x) for x in ds[key])
    good = ds["degradation"] == "none"
    assert ds["mask"][good].reshape(good.sum(), -1).any(axis=1).all()  # exact labels are never empty


def test_ivm_dataset_of_the_gripper_camera(tmp_path):
    """``cameras=("gripper",)``: only wrist views, recorded in the index; both cameras alternate per frame."""
    index = engine.generate_ivm(tmp_path / "g", samples=6, seed=1, size=32, machine_fraction=0.0,
                                frames_per_episode=3, cameras=("gripper",), progress=False)
    assert index["args"]["cameras"] == ["gripper"] and index["image_size"] == 32
    ds = engine.load_ivm(tmp_path / "g")
    assert set(ds["camera"]) == {"gripper"} and ds["image"].shape == (6, 32, 32, 3)
    assert (tmp_path / "g" / "gallery.png").is_file()
    both = engine.generate_ivm(tmp_path / "b", samples=6, seed=1, size=32, machine_fraction=0.0,
                               frames_per_episode=3, cameras=("static", "gripper"), progress=False)
    assert list(engine.load_ivm(tmp_path / "b")["camera"][:2]) == ["static", "gripper"] and both["count"] == 6
    plain = engine.generate_ivm(tmp_path / "s", samples=2, seed=1, size=32, progress=False)
    assert "cameras" not in plain["args"]  # the static camera alone: the index as before
    with pytest.raises(ValueError, match="cameras"):
        engine.generate_ivm(tmp_path / "x", samples=1, cameras=("wrist",), progress=False)


def test_systematic_machine_errors(tmp_path):
    """A systematic labeller fails on a task always the same way (or never), drawn once per task from the seed."""
    assert all(v is None for v in engine.systematic_failures(0, 0.0).values())
    always = engine.systematic_failures(0, 1.0)
    assert set(always) == set(engine.EXPERT_TASKS) and set(always.values()) <= set(engine.DEGRADATIONS)
    half = engine.systematic_failures(3, 0.5)
    assert half == engine.systematic_failures(3, 0.5) and 0 < sum(v is not None for v in half.values()) < len(half)
    index = engine.generate_ivm(tmp_path, samples=16, seed=3, size=48, machine_fraction=1.0, machine_error=0.5,
                              machine_errors="systematic", frames_per_episode=4, progress=False)
    assert index["args"]["machine_errors"] == "systematic"
    ds = engine.load_ivm(tmp_path)
    for task, kind in zip(ds["task"], ds["degradation"]):
        assert kind == (half[str(task)] or "none"), task
    assert {"none"} < set(ds["degradation"])  # this seed draws tasks the labeller gets right and ones it fails
    with pytest.raises(ValueError, match="machine_errors"):
        engine.generate_ivm(tmp_path / "x", samples=1, machine_errors="sometimes", progress=False)


def test_demos_round_trip(tmp_path):
    index = engine.generate_demos(tmp_path, episodes=2, seed=0, tasks=("turn_on_led", "open_drawer"),
                                static_size=48, gripper_size=32, progress=False)
    assert len(index["episodes"]) == 2
    for entry in index["episodes"]:
        ep = np.load(tmp_path / entry["file"], allow_pickle=False)
        n = int(entry["steps"])
        assert entry["success"] and bool(ep["success"]) and n > 5
        assert ep["rgb_static"].shape == (n, 48, 48, 3) and ep["rgb_gripper"].shape == (n, 32, 32, 3)
        assert ep["robot_obs"].shape == (n, 15) and ep["scene_obs"].shape == (n, 24)
        assert ep["actions"].shape == (n, 7) and np.abs(ep["actions"]).max() <= 1.0
        assert ep["mask_static"].shape == (n, 48, 48) and ep["mask_static"].any()
        assert str(ep["task"]) == entry["task"] and str(ep["instruction"]) == entry["instruction"]


def test_commands(tmp_path, capsys):
    assert engine.main(["ivm", "--out", str(tmp_path), "--samples", "3", "--size", "32", "--levels", "large"]) == 0
    assert "wrote 3 samples" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        engine.main(["ivm", "--out", str(tmp_path), "--levels", "extreme"])
    assert bench.main(["--steps", "3", "--samples", "2", "--static-size", "32", "--gripper-size", "32",
                       "--json"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["bench"] == "sim" and last["env_steps_per_s_both_cameras"] > 0


def test_commands_registered():
    from importlib.metadata import entry_points

    assert entry_points(group="ivm_ros.commands")["sim-data"].value == "ivm_ros_sim.data.engine:main"
    assert entry_points(group="ivm_ros.benches")["sim"].value == "ivm_ros_sim.bench:main"
