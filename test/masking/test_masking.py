"""The masking library against the literal reference, on synthetic and real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ivm_ros.commands.bench.masking import synthetic_frame
from ivm_ros.masking import MODES, MaskingConfig, apply_mask, debug_overlay, gaussian_kernel_1d, kernel_size
from ivm_ros.masking.reference import reference_mask

SHARED = Path(__file__).resolve().parents[3] / "shared" / "images"


def _robot() -> np.ndarray:
    bgr = cv2.imread(str(SHARED / "robot.jpg"))
    assert bgr is not None, "../shared/images/robot.jpg missing"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("crop", [False, True])
@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_agrees_with_reference(mode, crop, backend):
    image = _robot()  # a real 640x480 photo
    _, prob = synthetic_frame(*image.shape[:2])
    cfg = MaskingConfig(mode=mode, crop=crop, threshold=0.4)
    ref, ref_soft, _ = reference_mask(image, prob, cfg)
    out = apply_mask(torch.from_numpy(image)[None], torch.from_numpy(prob)[None], cfg, backend=backend)
    # torch resamples crops in float, OpenCV in 11-bit fixed point: one more grey level there (documented)
    tolerance = 2 if (backend == "torch" and cfg.crops and mode != "crop") else 1
    assert _diff(out.images[0].numpy(), ref) <= tolerance
    assert _diff(out.masks[0].numpy(), np.rint(ref_soft * 255).astype(np.uint8)) <= 1


def test_fail_safe_keeps_whole_image_and_reports_it():
    image = _robot()
    prob = np.zeros((256, 256), np.float32)
    for backend in ("opencv", "torch"):
        out = apply_mask(torch.from_numpy(image)[None], torch.from_numpy(prob)[None], backend=backend)
        assert out.fail_safe.tolist() == [True]
        np.testing.assert_array_equal(out.images[0].numpy(), image)
        off = apply_mask(
            torch.from_numpy(image)[None], torch.from_numpy(prob)[None], MaskingConfig(fail_safe=False), backend=backend
        )
        assert off.fail_safe.tolist() == [False] and (off.images[0].numpy() == 255).all()


def test_batched_mixed_fail_safe_and_boxes():
    h, w = 60, 80
    images = torch.randint(0, 256, (2, h, w, 3), dtype=torch.uint8)
    probs = torch.zeros((2, h, w))
    probs[0, 10:20, 30:40] = 0.9
    for backend in ("opencv", "torch"):
        cfg = MaskingConfig(dilate_ratio=0.0, feather_ratio=0.0)
        out = apply_mask(images, probs, cfg, backend=backend)
        assert out.fail_safe.tolist() == [False, True]
        assert out.boxes.tolist() == [[30, 10, 40, 20], [0, 0, w, h]]
        assert out.masks[0, 15, 35] == 255 and out.masks[0, 0, 0] == 0


def test_dilation_and_feather_sizes_follow_ivm():
    assert kernel_size(480, 0.05) == 49 and kernel_size(200, 0.05) == 21 and kernel_size(480, 0.0) == 1
    k = gaussian_kernel_1d(49).numpy()
    np.testing.assert_allclose(k, cv2.getGaussianKernel(49, 0).ravel(), atol=1e-6)
    np.testing.assert_allclose(gaussian_kernel_1d(5).numpy(), cv2.getGaussianKernel(5, 0).ravel(), atol=1e-7)
    h, w = 100, 100
    probs = torch.zeros((1, h, w))
    probs[0, 50, 50] = 1.0
    cfg = MaskingConfig(dilate_ratio=0.05, feather_ratio=0.0)  # kernel 11: +-5 px
    out = apply_mask(torch.zeros((1, h, w, 3), dtype=torch.uint8), probs, cfg)
    assert out.boxes.tolist() == [[45, 45, 56, 56]]


def test_crop_without_resize_returns_per_image_crops():
    images = torch.randint(0, 256, (2, 40, 50, 3), dtype=torch.uint8)
    probs = torch.zeros((2, 40, 50))
    probs[0, 5:10, 5:15] = 1
    probs[1, 20:30, 10:40] = 1
    cfg = MaskingConfig(mode="crop", crop_resize=False, dilate_ratio=0, feather_ratio=0)
    for backend in ("opencv", "torch"):
        out = apply_mask(images, probs, cfg, backend=backend)
        assert [tuple(t.shape) for t in out.images] == [(5, 10, 3), (10, 30, 3)]
        np.testing.assert_array_equal(out.images[1].numpy(), images[1, 20:30, 10:40].numpy())


def test_single_channel_images():
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 1), dtype=np.uint8)
    probs = torch.zeros((1, 48, 64))
    probs[0, 10:30, 10:30] = 1
    for backend in ("opencv", "torch"):
        out = apply_mask(torch.from_numpy(image)[None], probs, MaskingConfig(feather_ratio=0), backend=backend)
        assert out.images.shape == (1, 48, 64, 1)
        assert out.images[0, 0, 63, 0] == 255


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="mode"):
        MaskingConfig(mode="sparkle")
    with pytest.raises(ValueError, match="threshold"):
        MaskingConfig(threshold=1.0)
    with pytest.raises(ValueError, match="fill_color"):
        MaskingConfig(fill_color=(1, 2, 300))
    with pytest.raises(ValueError, match="uint8"):
        apply_mask(torch.zeros((1, 4, 4, 3)), torch.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="probs"):
        apply_mask(torch.zeros((1, 4, 4, 3), dtype=torch.uint8), torch.zeros((2, 4, 4)))


def test_debug_overlay_tints_and_outlines_kept_region():
    image = np.full((40, 40, 3), 100, np.uint8)
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 10:30] = 255
    out = debug_overlay(image, mask)
    assert out.shape == image.shape
    assert (out[0, 0] == 100).all()
    assert out[20, 20, 1] > 100


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_backend_matches_cpu():
    image = _robot()
    _, prob = synthetic_frame(*image.shape[:2])
    cpu = apply_mask(torch.from_numpy(image)[None], torch.from_numpy(prob)[None])
    gpu = apply_mask(torch.from_numpy(image)[None].cuda(), torch.from_numpy(prob)[None].cuda())
    assert _diff(gpu.images[0].cpu().numpy(), cpu.images[0].numpy()) <= 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kept", ["part", "all", "none"])
def test_outputs_never_alias_the_input(mode, kept):
    """A batch of one is returned without a copy when the result is fresh; never as a view of the input."""
    image = np.random.default_rng(0).integers(0, 256, (1, 24, 32, 3), dtype=np.uint8)
    prob = np.zeros((1, 24, 32), np.float32)
    prob[:, 6:18, 8:24] = {"part": 1.0, "all": 1.0, "none": 0.0}[kept]
    if kept == "all":
        prob[:] = 1.0
    out = apply_mask(torch.from_numpy(image), torch.from_numpy(prob), MaskingConfig(mode=mode), backend="opencv")
    result = out.images[0].numpy()
    assert not np.shares_memory(result, image)
    before = image.copy()
    result[...] = 0
    np.testing.assert_array_equal(image, before)
