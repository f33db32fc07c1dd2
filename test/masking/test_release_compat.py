"""The release's fail-safe and crop, reproduced by the masking library and checked against the release's own lines
(``ivm_ros.models.ivm.reference.release_postprocess``, utils.py of 2toinf/IVM at 54e6288)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ivm_ros.commands.bench.masking import synthetic_frame
from ivm_ros.masking import MaskingConfig, apply_mask
from ivm_ros.masking.reference import reference_mask
from ivm_ros.models.ivm.reference import release_postprocess

H, W = 480, 640
BACKENDS = ("opencv", "torch")


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    """float32 sigmoid as torch computes it on the release's device, then copied to the host."""
    return torch.sigmoid(torch.from_numpy(logits.astype(np.float32))).numpy()


def _frame() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, (H, W, 3), dtype=np.uint8)  # never pure white


def _release(cfg_threshold: float, prob: np.ndarray, image: np.ndarray, do_crop: bool = False) -> np.ndarray:
    return np.clip(np.round(release_postprocess(prob, image, cfg_threshold, do_crop=do_crop)), 0, 255)


def _ours(prob: np.ndarray, image: np.ndarray, backend: str, **cfg) -> tuple[np.ndarray, bool]:
    out = apply_mask(
        torch.from_numpy(image)[None], torch.from_numpy(prob)[None], MaskingConfig(**cfg), backend=backend
    )
    return out.images[0].numpy(), bool(out.fail_safe[0])


def _white(img: np.ndarray) -> float:
    return float((img == 255).all(-1).mean())


def _fail_safe_cases() -> dict[str, tuple[float, np.ndarray, float]]:
    """name -> (threshold, probabilities, fraction of white pixels the release gives)."""
    half = np.full((H, W), -5.0)
    half[:, : W // 2] = -30.0  # sigmoid(-30) ~ 9e-14: absorbed by + 0.5 in float32; sigmoid(-5) ~ 0.0067 is not
    t_exact = float(np.float32(0.3))
    return {
        "half_absorbed": (0.5, _sigmoid(half), 0.43),
        "all_absorbed": (0.99, _sigmoid(np.full((H, W), -20.0)), 1.0),
        "max_equals_threshold": (t_exact, np.full((H, W), np.float32(0.3)), 1.0),
        "none_absorbed": (0.5, _sigmoid(np.full((H, W), -3.0)), 0.0),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(_fail_safe_cases()))
def test_release_fail_safe_reproduces_the_release(case, backend):
    threshold, prob, white = _fail_safe_cases()[case]
    image = _frame()
    ref = _release(threshold, prob, image)
    assert _white(ref) == pytest.approx(white, abs=0.01)
    ours, failed = _ours(prob, image, backend, threshold=threshold, fail_safe="release")
    assert failed
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1  # the release keeps float32, we round once
    assert _white(ours) == pytest.approx(_white(ref), abs=1e-4)
    kept, failed = _ours(prob, image, backend, threshold=threshold)  # default keep: the whole frame, unmasked
    assert failed and np.array_equal(kept, image)


@pytest.mark.parametrize("backend", BACKENDS)
def test_release_fail_safe_batched_rows_are_independent(backend):
    cases = _fail_safe_cases()
    probs = np.stack([cases["half_absorbed"][1], cases["none_absorbed"][1]])
    images = np.stack([_frame(), _frame()])
    out = apply_mask(
        torch.from_numpy(images), torch.from_numpy(probs), MaskingConfig(threshold=0.5, fail_safe="release"),
        backend=backend,
    )
    for i in range(2):
        ref = _release(0.5, probs[i], images[i])
        assert np.abs(out.images[i].numpy().astype(int) - ref.astype(int)).max() <= 1


def _blob_prob() -> np.ndarray:
    _, prob = synthetic_frame(H, W)
    return np.ascontiguousarray(
        torch.nn.functional.interpolate(torch.from_numpy(prob)[None, None], (H, W), mode="bilinear")[0, 0].numpy()
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_release_crop_is_the_feathered_support_not_resized(backend):
    image, prob = _frame(), _blob_prob()
    ref = _release(0.5, prob, image, do_crop=True)
    ours = apply_mask(
        torch.from_numpy(image)[None], torch.from_numpy(prob)[None],
        MaskingConfig(threshold=0.5, crop=True, crop_mode="release"), backend=backend,
    )
    crop = ours.images[0].numpy()
    assert crop.shape == ref.shape and crop.shape[:2] != (H, W)
    assert np.abs(crop.astype(int) - ref.astype(int)).max() <= 1
    box = apply_mask(
        torch.from_numpy(image)[None], torch.from_numpy(prob)[None],
        MaskingConfig(threshold=0.5, crop=True, crop_resize=False), backend=backend,
    )
    r = int(0.05 * H)  # the halo: half the feathering kernel 2r+1 on every side (inside the frame)
    x0, y0, x1, y1 = box.boxes[0].tolist()
    assert ours.boxes[0].tolist() == [max(x0 - r, 0), max(y0 - r, 0), min(x1 + r, W), min(y1 + r, H)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["overlay", "highlight", "crop"])
def test_release_settings_agree_with_the_literal_reference(backend, mode):
    image, prob = _frame(), _blob_prob()
    for cfg in (
        MaskingConfig(mode=mode, threshold=0.5, crop=True, release_compat=True),
        MaskingConfig(mode=mode, threshold=0.5, fail_safe="release", crop_mode="release"),
    ):
        ref, _, _ = reference_mask(image, prob, cfg)
        out = apply_mask(torch.from_numpy(image)[None], torch.from_numpy(prob)[None], cfg, backend=backend)
        assert out.images[0].shape == ref.shape
        assert np.abs(out.images[0].numpy().astype(int) - ref.astype(int)).max() <= 1
    absorbed = _fail_safe_cases()["half_absorbed"][1]
    ref, _, failed = reference_mask(image, absorbed, MaskingConfig(threshold=0.5, fail_safe="release"))
    ours, ours_failed = _ours(absorbed, image, backend, threshold=0.5, fail_safe="release")
    assert failed and ours_failed and np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def test_release_compat_and_setting_errors():
    cfg = MaskingConfig(release_compat=True)
    assert (cfg.fail_safe, cfg.crop_mode, cfg.resizes_crop) == ("release", "release", False)
    assert MaskingConfig(fail_safe=True).fail_safe == "keep" and MaskingConfig(fail_safe=False).fail_safe == "off"
    assert MaskingConfig().resizes_crop and not MaskingConfig(crop_resize=False).resizes_crop
    with pytest.raises(ValueError, match="fail_safe must be one of"):
        MaskingConfig(fail_safe="blank")
    with pytest.raises(ValueError, match="crop_mode must be one of"):
        MaskingConfig(crop_mode="tight")
