"""``ivm-ros sim-data simpler-demos`` on SimplerEnvDouble with a scripted expert stand-in: the demos format (files,
arrays, index, expert counts), resume, and that the embedded policy's loader reads it."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from ivm_ros_sim.data import engine
from ivm_ros_sim.data.simpler_demos import generate_simpler_demos
from ivm_ros_sim.simpler import double as D

from ivm_ros.policies.embedded.data import load_demos


class PlusXExpertStandIn:
    """A scripted expert stand-in for SimplerEnvDouble (which has no state SimplerExpert reads): +2 cm x per step
    (the double's success), -2 cm on odd placements (a failure); closes the gripper from the 3rd step."""

    def __init__(self, task_env) -> None:
        self.env, self.n = task_env, 0

    def reset(self) -> None:
        self.n = 0

    def act(self, frame) -> np.ndarray:
        self.n += 1
        dx = 0.02 if self.env.episode_id % 2 == 0 else -0.02
        return np.array([dx, 0.001 * self.n, 0, 0, 0, 0.01, 1.0 if self.n < 3 else -1.0])


def test_writer_format_counts_and_loader(tmp_path):
    out = tmp_path / "demos"
    index = generate_simpler_demos(out, ("widowx_carrot_on_plate", "widowx_stack_cube"), 2, (0, 1), size=(24, 32),
                                   max_steps=5, make=D.SimplerEnvDouble.make, expert=PlusXExpertStandIn,
                                   progress=False)
    assert index == json.loads((out / "index.json").read_text())
    assert index["format"] == "ivm_ros_sim.demos/1" and index["robot"] == "widowx"
    assert index["counts"] == {"attempts/widowx_carrot_on_plate": 4, "widowx_carrot_on_plate": 2,
                               "attempts/widowx_stack_cube": 4, "widowx_stack_cube": 2}  # odd placements fail
    files = sorted(e["file"] for e in index["episodes"])
    assert files == [f"{t}_s{s}_e000.npz" for t in ("widowx_carrot_on_plate", "widowx_stack_cube") for s in (0, 1)]
    assert sorted(p.name for p in out.glob("*.npz")) == files
    entry = index["episodes"][0]
    assert entry["instruction"] == "put carrot on plate" and entry["steps"] == 5 and entry["success"]
    with np.load(out / entry["file"], allow_pickle=False) as z:
        assert z["rgb_static"].shape == (5, 24, 32, 3) and z["rgb_static"].dtype == np.uint8
        assert z["rgb_gripper"].shape == (5, 32, 32, 3)  # the double's base camera
        assert z["robot_obs"].shape == (5, 8) and z["robot_obs"].dtype == np.float32
        acts, robot, masks = z["actions"], z["robot_obs"], z["mask_static"]
        assert str(z["instruction"]) == "put carrot on plate" and str(z["task"]) == "widowx_carrot_on_plate"
    assert acts.dtype == np.float32 and acts[0, 0] == pytest.approx(0.02) and acts[4, 6] == -1.0
    np.testing.assert_allclose(robot[:, 0], D.HOME_TCP[0] + 0.02 * np.arange(5), atol=1e-6)  # frame before action
    assert robot[:, 7].tolist() == [1.0, 1.0, 1.0, -1.0, -1.0]  # the gripper command before each action
    # the simulator's instruction mask of each stored frame, at the stored size
    assert masks.shape == (5, 24, 32) and masks.dtype == np.uint8 and set(np.unique(masks)) == {0, 1}
    data = load_demos(out, 16, 0, progress=False, proprio_index=tuple(range(8)))
    assert len(data) == 20 and data.gripper.shape == (20, 0, 0, 3) and data.proprio.shape == (20, 8)
    assert data.instructions == ["put carrot on plate", "stack the green block on the yellow block"]


def test_cli_resume_and_refusals(tmp_path, capsys):
    out = tmp_path / "demos"
    base = ["simpler-demos", "--backend", "double", "--expert", "test_simpler_demos:PlusXExpertStandIn", "--tasks",
            "widowx_spoon_on_towel", "--max-steps", "4", "--size", "24x32", "--out", str(out)]
    assert engine.main([*base, "--episodes", "1"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 1 episodes (4 frames" in printed and "expert widowx_spoon_on_towel: 1/1 successful" in printed
    first = (out / "widowx_spoon_on_towel_s0_e000.npz").stat().st_mtime_ns
    with pytest.raises(SystemExit, match="--resume"):
        engine.main([*base, "--episodes", "3"])
    with pytest.raises(SystemExit, match="other settings"):
        engine.main([*base, "--episodes", "3", "--resume", "--size", "12x16"])
    with pytest.raises(SystemExit):  # argparse error: the expert cannot be loaded
        engine.main([*base, "--out", str(tmp_path / "x"), "--episodes", "1", "--expert", "no_such_module:X"])
    assert "cannot be loaded" in capsys.readouterr().err
    assert engine.main([*base, "--episodes", "3", "--resume"]) == 0  # more placements, same settings
    index = json.loads((out / "index.json").read_text())
    assert index["done"] == [f"widowx_spoon_on_towel_s0_e{e:03d}" for e in range(3)]
    assert index["counts"] == {"attempts/widowx_spoon_on_towel": 3, "widowx_spoon_on_towel": 2}
    assert (out / "widowx_spoon_on_towel_s0_e000.npz").stat().st_mtime_ns == first  # not recorded again


def test_stored_masks_become_probabilities_and_missing_ones_are_named(tmp_path):
    out = tmp_path / "demos"
    generate_simpler_demos(out, ("widowx_carrot_on_plate",), 1, (0,), size=(24, 32), max_steps=3,
                           make=D.SimplerEnvDouble.make, expert=PlusXExpertStandIn, progress=False)
    data = load_demos(out, 16, 0, progress=False, proprio_index=tuple(range(8)), stored_masks=True)
    with np.load(out / "widowx_carrot_on_plate_s0_e000.npz") as z:
        share = np.stack([cv2.resize(m.astype(np.float32), (16, 16), interpolation=cv2.INTER_AREA)
                          for m in z["mask_static"]])
    assert data.prob.shape == (3, 16, 16) and data.prob.dtype == np.uint8 and data.prob.max() == 255
    np.testing.assert_array_equal(data.prob, np.round(share * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="predictor or stored_masks"):
        load_demos(out, 16, 0, predictor=object(), stored_masks=True, progress=False)
    # an episode recorded before masks were stored: the error names the file and what to do
    f = out / "widowx_carrot_on_plate_s0_e000.npz"
    with np.load(f) as z:
        arrays = {k: z[k] for k in z.files if k != "mask_static"}
    np.savez_compressed(f, **arrays)
    with pytest.raises(ValueError, match="widowx_carrot_on_plate_s0_e000.npz has no mask_static"):
        load_demos(out, 16, 0, progress=False, proprio_index=tuple(range(8)), stored_masks=True)


def test_noise_disturbs_the_executed_actions_and_records_the_expert_ones(tmp_path):
    from ivm_ros_sim.data.simpler_demos import Noise

    def demo(out, noise):
        generate_simpler_demos(out, ("widowx_carrot_on_plate",), 1, (3,), size=(24, 32), max_steps=5,
                               make=D.SimplerEnvDouble.make, expert=PlusXExpertStandIn, progress=False, noise=noise)
        with np.load(out / "widowx_carrot_on_plate_s3_e000.npz") as z:
            return z["actions"], z["robot_obs"], json.loads((out / "index.json").read_text())["args"]

    clean_acts, clean_obs, clean_args = demo(tmp_path / "clean", Noise())
    acts, obs, args = demo(tmp_path / "noisy", Noise(xyz=0.004, yaw=0.05))
    np.testing.assert_array_equal(acts, clean_acts)  # the expert's actions are what is recorded
    drift = obs[1:, :3] - clean_obs[1:, :3]  # the executed ones moved the arm elsewhere
    assert 0.0005 < np.abs(drift).max() < 0.04
    assert "noise" not in clean_args and args["noise"] == {"xyz": 0.004, "yaw": 0.05}  # resume must match it
    np.testing.assert_array_equal(demo(tmp_path / "again", Noise(xyz=0.004, yaw=0.05))[1], obs)  # seeded
    rng = np.random.default_rng(0)
    out = Noise(xyz=0.01).disturb(np.array([0.01, 0, 0, 0.1, 0.2, 0.3, -1.0]), rng)
    assert out[3:].tolist() == [0.1, 0.2, 0.3, -1.0] and not np.allclose(out[:3], [0.01, 0, 0])
    with pytest.raises(ValueError, match="noise std must be >= 0"):
        Noise(xyz=-1.0)
