"""Policies without ROS: the interface, the wrappers, the registry and the Octo adapter (against a stand-in)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from support.policies import ChunkPolicyForTest, OctoModelStandInForTest

from ivm_ros.policies import registry
from ivm_ros.policies.base import Observation, check_actions
from ivm_ros.policies.wrappers import History, RecedingHorizon, StickyGripper, TemporalEnsemble


def obs(value: int = 0, size: int = 32, wrist: bool = False, stamp: float = 0.0) -> Observation:
    image = np.full((size, size, 3), value, np.uint8)
    return Observation(image, image[:16, :16].copy() if wrist else None, stamp=stamp)


def chunk(dx: list[float], gripper: float = 1.0) -> np.ndarray:
    out = np.zeros((len(dx), 7), np.float32)
    out[:, 0] = dx
    out[:, 6] = gripper
    return out


# ----------------------------------------------------------------------------------------------- interface


def test_observation_and_action_validation():
    with pytest.raises(ValueError, match="uint8"):
        Observation(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="image_wrist"):
        Observation(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))
    assert check_actions(np.zeros(7)).shape == (1, 7)
    for bad in (np.zeros((2, 6)), np.zeros((0, 7)), np.zeros((2, 2, 7))):
        with pytest.raises(ValueError, match="shape"):
            check_actions(bad)
    with pytest.raises(ValueError, match="non-finite"):
        check_actions(np.full(7, np.nan))


# ------------------------------------------------------------------------------------------------ wrappers


def test_history_pads_with_copies_of_the_first_frame_at_reset():
    history = History(3)
    a, b, c, d = (np.full((2, 2), v, np.uint8) for v in (1, 2, 3, 4))
    frames, mask = history.push({"image": a})
    assert [f[0, 0] for f in frames["image"]] == [1, 1, 1] and mask.tolist() == [False, False, True]
    frames, mask = history.push({"image": b})
    assert [f[0, 0] for f in frames["image"]] == [1, 1, 2] and mask.tolist() == [False, True, True]
    history.push({"image": c})
    frames, mask = history.push({"image": d})
    assert [f[0, 0] for f in frames["image"]] == [2, 3, 4] and mask.tolist() == [True, True, True]
    assert frames["image"].shape == (3, 2, 2) and mask.dtype == bool
    history.reset()
    frames, mask = history.push({"image": d})
    assert [f[0, 0] for f in frames["image"]] == [4, 4, 4] and mask.tolist() == [False, False, True]
    with pytest.raises(ValueError, match="keys changed"):
        history.push({"image": a, "wrist": a})


def test_temporal_ensemble_matches_hand_computed_weights():
    inner = ChunkPolicyForTest([chunk([1, 2, 3]), chunk([10, 20, 30]), chunk([100, 200, 300]),
                                chunk([1000, 2000, 3000])])
    policy = TemporalEnsemble(inner, horizon=3, exp_weight=0.5)
    policy.reset("task")
    # step t executes the rows predicted for t by the chunks of the last 3 steps, the oldest weighted exp(0),
    # the next exp(-0.5), the newest exp(-1.0): (2 + 10e^-.5) / (1 + e^-.5) = 5.0203254 ...
    expected = [1.0, 5.0203254, 26.2957312, 262.9573121]
    for value in expected:
        out = policy.act(obs())
        assert out.shape == (3, 7) and out.dtype == np.float32  # the plan for now and the next two steps
        assert out[0, 0] == pytest.approx(value, rel=1e-6)
        assert out[0, 6] == pytest.approx(1.0)
    policy.reset("again")
    assert policy.act(obs())[0, 0] == pytest.approx(1.0)  # history cleared: only the newest chunk's row 0
    assert inner.resets == ["task", "again"]
    plain = TemporalEnsemble(ChunkPolicyForTest([chunk([1, 2]), chunk([5, 6])]), horizon=2)
    plain.reset("x")
    plain.act(obs())
    assert plain.act(obs())[0, 0] == pytest.approx((2 + 5) / 2)  # exp_weight 0: a plain mean
    with pytest.raises(ValueError, match="chunks of >= 3"):
        TemporalEnsemble(ChunkPolicyForTest([chunk([1, 2])]), horizon=3).act(obs())


def obs_after(steps: int) -> Observation:
    """An observation after ``steps`` control steps executed since the previous one."""
    return Observation(np.zeros((8, 8, 3), np.uint8), elapsed_steps=steps)


def test_temporal_ensemble_plans_ahead_and_ages_chunks_by_executed_steps():
    inner = ChunkPolicyForTest([chunk([1, 2, 3, 4]), chunk([10, 20, 30, 40])])
    policy = TemporalEnsemble(inner, horizon=4)
    policy.reset("task")
    first = policy.act(obs_after(1))
    assert first[:, 0].tolist() == [1, 2, 3, 4]  # one chunk: the plan is that chunk
    second = policy.act(obs_after(2))  # two of its rows ran: the old chunk's row 2 is for now
    np.testing.assert_allclose(second[:, 0], [(3 + 10) / 2, (4 + 20) / 2, 30, 40])
    lockstep = TemporalEnsemble(ChunkPolicyForTest([chunk([1, 2, 3, 4]), chunk([10, 20, 30, 40])]), horizon=4)
    lockstep.reset("task")
    lockstep.act(obs_after(1))
    assert lockstep.act(obs_after(1))[0, 0] == pytest.approx((2 + 10) / 2)  # one step per call, as Octo
    stale = TemporalEnsemble(ChunkPolicyForTest([chunk([1, 2]), chunk([10, 20])]), horizon=2)
    stale.reset("task")
    stale.act(obs_after(1))
    assert stale.act(obs_after(5))[:, 0].tolist() == [10, 20]  # chunks older than the horizon are dropped


def test_receding_horizon_drops_the_rows_that_ran():
    inner = ChunkPolicyForTest([chunk([1, 2, 3, 4]), chunk([5, 6, 7, 8])])
    policy = RecedingHorizon(inner, execute_steps=3)
    policy.reset("task")
    assert policy.act(obs_after(1))[:, 0].tolist() == [1, 2, 3]
    assert policy.act(obs_after(2))[:, 0].tolist() == [3]
    assert policy.act(obs_after(1))[:, 0].tolist() == [5, 6, 7] and inner.calls == 2


def test_sticky_gripper_state_follows_only_the_rows_that_ran():
    inner = ChunkPolicyForTest([chunk([0, 0, 0], 0.0), chunk([0, 0, 0], 0.9)])
    policy = StickyGripper(inner, threshold=0.5, repeat=2)
    policy.reset("task")
    assert policy.act(obs_after(1))[:, 6].tolist() == [1, -1, -1]  # closes at the second request
    # only the first row ran (one close request): the second call's open requests keep it open
    assert policy.act(obs_after(1))[:, 6].tolist() == [1, 1, 1]
    again = StickyGripper(ChunkPolicyForTest([chunk([0, 0, 0], 0.0), chunk([0, 0, 0], 0.0)]), repeat=2)
    again.reset("task")
    again.act(obs_after(1))
    assert again.act(obs_after(3))[:, 6].tolist() == [-1, -1, -1]  # all three ran: it was closed


def test_receding_horizon_executes_the_first_steps_then_replans():
    inner = ChunkPolicyForTest([chunk([1, 2, 3, 4]), chunk([5, 6, 7, 8])])
    policy = RecedingHorizon(inner, execute_steps=2)
    policy.reset("task")
    got = [policy.act(obs())[0, 0] for _ in range(4)]
    assert got == [1, 2, 5, 6] and inner.calls == 2
    policy.reset("again")  # drops the queued action
    assert policy.act(obs())[0, 0] == 1 and inner.calls == 3
    assert policy.describe()["wrappers"] == "RecedingHorizon(ChunkPolicyForTest)"


def test_sticky_gripper_switches_after_repeated_requests():
    values = [0.9, 0.2, 0.9, 0.2, 0.2, 0.8, 0.1]
    inner = ChunkPolicyForTest([chunk([0.0], g) for g in values])
    policy = StickyGripper(inner, threshold=0.5, repeat=2)
    policy.reset("task")
    got = [policy.act(obs())[0, 6] for _ in values]
    assert got == [1, 1, 1, 1, -1, -1, -1]
    policy.reset("again")  # open again
    assert policy.act(obs())[0, 6] == 1
    immediate = StickyGripper(ChunkPolicyForTest([chunk([0.0, 0.0, 0.0], 0.0)]), threshold=0.5)
    immediate.reset("task")
    assert immediate.act(obs())[:, 6].tolist() == [-1, -1, -1]  # rows of a chunk in order, repeat 1


# ------------------------------------------------------------------------------------------------ registry


def test_registry_resolves_names_and_module_class_paths():
    fields = registry.config_fields("octo")  # no octo import needed for its settings
    assert fields["window"] == 2 and fields["execution"] == "ensemble" and len(fields["action_scale"]) == 6
    assert "octo" in registry.available()
    policy = registry.load_policy("support.policies:PixelPolicyForTest", {"chunk": 3})
    assert policy.config.chunk == 3
    with pytest.raises(registry.PolicyLoadError, match="unknown policy"):
        registry.resolve_class("no_such_policy")
    with pytest.raises(registry.PolicyLoadError, match="not a Policy"):
        registry.resolve_class("numpy:ndarray")
    with pytest.raises(registry.PolicyLoadError, match="no settings"):
        registry.make_config("octo", {"windw": 3})
    with pytest.raises(ValueError, match="execution"):
        registry.make_config("octo", {"execution": "sometimes"})


def test_octo_policy_without_octo_installed_says_what_is_missing():
    pytest.importorskip("jax")
    if "octo" in sys.modules or _has_module("octo"):
        pytest.skip("octo is installed here")
    with pytest.raises(ImportError, match="octo package"):
        registry.load_policy("octo", {"checkpoint": "/nonexistent"})


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_policy_node_and_policies_import_no_torch_cv2_or_transformers():
    code = (
        "import sys\n"
        "import ivm_ros.ros.policy_node, ivm_ros.policies.octo, ivm_ros.policies.wrappers\n"
        "bad = sorted(m for m in ('torch', 'cv2', 'transformers') if m in sys.modules)\n"
        "assert 'jax' in sys.modules and 'rclpy' in sys.modules\n"
        "print('heavy:', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr


# -------------------------------------------------------------------------------------------- Octo adapter

octo = pytest.importorskip("ivm_ros.policies.octo")


def _octo(model: OctoModelStandInForTest, **settings) -> octo.OctoPolicy:
    return octo.OctoPolicy(registry.make_config("octo", {"warmup": False, **settings}), model=model)


def test_octo_adapter_shapes_history_and_pad_mask():
    model = OctoModelStandInForTest()
    policy = _octo(model, execution="chunk")
    policy.reset("pick up the red block")
    assert model.tasks_created == [["pick up the red block"]]
    out = policy.act(obs(10, size=200))
    assert out.shape == (4, 7) and out.dtype == np.float32
    first = model.calls[-1]["observations"]
    assert first["image_primary"].shape == (1, 2, 256, 256, 3) and first["image_primary"].dtype == np.uint8
    assert first["timestep_pad_mask"].tolist() == [[False, True]]
    np.testing.assert_array_equal(first["image_primary"][0, 0], first["image_primary"][0, 1])  # copies
    assert (first["image_primary"][0, 1] == 10).all()  # a flat image stays flat through the resize
    assert first["pad_mask_dict"]["image_primary"].tolist() == [[True, True]]
    assert "image_wrist" not in first  # not configured: left out, Octo skips that tokenizer
    policy.act(obs(20, size=200))
    second = model.calls[-1]["observations"]
    assert second["timestep_pad_mask"].tolist() == [[True, True]]
    assert second["image_primary"][0, 0, 0, 0, 0] == 10 and second["image_primary"][0, 1, 0, 0, 0] == 20
    policy.reset("open the drawer")  # new task, history padded again
    policy.act(obs(30, size=200))
    assert model.tasks_created[-1] == ["open the drawer"]
    assert model.calls[-1]["observations"]["timestep_pad_mask"].tolist() == [[False, True]]
    assert model.calls[-1]["tasks"]["language_instruction"]["input_ids"][0, 0] == ord("o")


def test_octo_warmup_runs_the_model_once_and_leaves_no_history():
    model = OctoModelStandInForTest()
    policy = _octo(model, warmup=True, use_wrist=True)
    assert len(model.calls) == 1 and model.calls[0]["observations"]["image_wrist"].shape == (1, 2, 128, 128, 3)
    policy.reset("task")
    policy.act(obs(9, size=64, wrist=True))
    assert model.calls[-1]["observations"]["timestep_pad_mask"].tolist() == [[False, True]]
    assert (model.calls[-1]["observations"]["image_primary"] == 9).all()


def test_octo_adapter_wrist_image():
    model = OctoModelStandInForTest()
    policy = _octo(model, use_wrist=True)
    policy.reset("task")
    policy.act(obs(5, size=64, wrist=True))
    call = model.calls[-1]["observations"]
    assert call["image_wrist"].shape == (1, 2, 128, 128, 3)
    assert call["pad_mask_dict"]["image_wrist"].tolist() == [[True, True]]
    with pytest.raises(ValueError, match="no wrist image"):
        policy.act(obs(5, size=64))


def test_octo_adapter_unnormalises_only_where_the_mask_is_true():
    normalized = np.tile(np.array([1.0, -1.0, 0.5, 2.0, 0.0, -0.5, 0.8], np.float32), (4, 1))
    model = OctoModelStandInForTest(normalized=normalized)
    stats = model.dataset_statistics["bridge_dataset"]["action"]
    scale = [50.0, 50.0, 50.0, 20.0, 20.0, 20.0]
    policy = _octo(model, execution="chunk", action_scale=scale, gripper_threshold=0.5)
    policy.reset("task")
    out = policy.core.act(obs(0))  # before the sticky gripper: the model's own gripper value
    passed = model.calls[-1]["stats"]
    assert set(passed) == {"mean", "std", "mask"} and passed["mask"].tolist() == [True] * 6 + [False]
    expected = (normalized[0, :6] * stats["std"][:6] + stats["mean"][:6]) * np.array(scale)
    np.testing.assert_allclose(out[0, :6], expected, rtol=1e-6)
    assert out[0, 6] == pytest.approx(0.8)  # the gripper is not normalised, nor scaled
    assert policy.act(obs(0))[:, 6].tolist() == [1, 1, 1, 1]  # 0.8 > 0.5: open, as +1
    # a single-dataset statistics layout, and a dataset without a mask (all dimensions normalised)
    assert set(octo.action_statistics({"action": stats}, "ignored")) == {"mean", "std", "mask"}
    other = octo.action_statistics(model.dataset_statistics, "other_dataset")
    assert set(other) == {"mean", "std"}
    with pytest.raises(ValueError, match="available: \\['bridge_dataset', 'other_dataset'\\]"):
        octo.action_statistics(model.dataset_statistics, "nope")


def test_octo_adapter_splits_a_fresh_rng_key_per_call():
    model = OctoModelStandInForTest()
    policy = _octo(model, seed=7)
    policy.reset("task")
    for i in range(5):
        policy.act(obs(i))
    keys = [tuple(c["rng"].ravel().tolist()) for c in model.calls]
    assert len(set(keys)) == 5
    again = OctoModelStandInForTest()
    replay = _octo(again, seed=7)
    replay.reset("task")
    replay.act(obs(0))
    assert tuple(again.calls[0]["rng"].ravel().tolist()) == keys[0]  # the seed decides the sequence


def test_octo_policy_execution_modes():
    rising = np.zeros((4, 7), np.float32)
    rising[:, 0] = [0.0, 1.0, 2.0, 3.0]
    rising[:, 6] = 0.2  # closed in Octo's convention
    model = OctoModelStandInForTest(normalized=rising)
    ensemble = _octo(model, dataset="other_dataset")  # mean 0, std 1, no mask: actions as given
    ensemble.reset("task")
    first, second = ensemble.act(obs(0)), ensemble.act(obs(0))
    assert first.shape == (4, 7) and first[0, 0] == pytest.approx(0.0)
    assert second[0, 0] == pytest.approx((1.0 + 0.0) / 2)  # the older chunk's row 1, the newer's row 0
    assert second[0, 6] == -1.0
    receding = _octo(OctoModelStandInForTest(normalized=rising), dataset="other_dataset", execution="receding",
                     execute_steps=3)
    receding.reset("task")
    assert [receding.act(obs(0))[0, 0] for _ in range(4)] == [0.0, 1.0, 2.0, 0.0]
    assert "TemporalEnsemble" in ensemble.describe()["wrappers"]
