"""MaskingPipeline on its own: one frame in any supported encoding + an instruction -> masked frame, mask and
flags, with a predictor double that records what it was given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ivm_ros.encodings import LUMA
from ivm_ros.masking import MaskingConfig, apply_mask
from ivm_ros.models.base import MaskPredictor
from ivm_ros.pipeline import MaskingPipeline


class LeftHalfRecordingPredictorForTest(MaskPredictor):
    """Keeps the left half of the frame (or nothing with ``keep=False``); records each input and instruction."""

    def __init__(self, keep: bool = True) -> None:
        super().__init__()
        self.keep, self.seen = keep, []

    def predict(self, images: torch.Tensor, instructions):
        self.seen.append((images.clone(), list(instructions)))
        b, h, w, _ = images.shape
        probs = torch.zeros((b, h, w))
        if self.keep:
            probs[:, :, : w // 2] = 1.0
        return probs


def _frame(h: int = 32, w: int = 48) -> np.ndarray:
    """(H, W, 3) RGB: pure red, so a channel-order mistake shows."""
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = 200
    return rgb


NO_EDGES = dict(dilate_ratio=0.0, feather_ratio=0.0)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_the_predictor_sees_rgb_and_the_output_keeps_the_input_channel_order(encoding):
    rgb = _frame()
    image = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "rgba8": np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)]),
             "bgra8": np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 7, np.uint8)])}[encoding]
    predictor = LeftHalfRecordingPredictorForTest()
    pipeline = MaskingPipeline(predictor, MaskingConfig(fill_color=(0, 255, 0), **NO_EDGES))
    result = pipeline.run(np.ascontiguousarray(image), encoding, "pick up the red block")
    seen, instructions = predictor.seen[0]
    assert instructions == ["pick up the red block"]
    np.testing.assert_array_equal(seen[0].numpy(), rgb)  # RGB whatever came in
    assert result.encoding == ("bgr8" if encoding.startswith("bgr") else "rgb8")  # alpha dropped, order kept
    assert result.masked.shape == (32, 48, 3)
    np.testing.assert_array_equal(result.masked[:, :24], image[:, :24, :3])  # kept half unchanged
    green = np.array([0, 255, 0], np.uint8)  # green in either order
    assert (result.masked[:, 24:] == green).all()
    assert (result.mask[:, :24] == 255).all() and (result.mask[:, 24:] == 0).all()
    assert not result.fail_safe and result.box == (0, 0, 24, 32)


def test_fill_colour_is_given_in_rgb_and_written_in_bgr_for_bgr_frames():
    pipeline = MaskingPipeline(LeftHalfRecordingPredictorForTest(), MaskingConfig(fill_color=(10, 20, 30), **NO_EDGES))
    out = pipeline.run(np.ascontiguousarray(_frame()[..., ::-1]), "bgr8", "x").masked
    np.testing.assert_array_equal(out[0, -1], [30, 20, 10])


def test_nothing_above_threshold_keeps_the_whole_frame_and_says_so():
    pipeline = MaskingPipeline(LeftHalfRecordingPredictorForTest(keep=False), MaskingConfig(**NO_EDGES))
    result = pipeline.run(_frame(), "rgb8", "pick up the blue block")
    assert result.fail_safe
    np.testing.assert_array_equal(result.masked, _frame())
    assert (result.mask == 255).all()


def test_mono_frames_stay_mono():
    gray = np.full((16, 16, 1), 90, np.uint8)
    result = MaskingPipeline(LeftHalfRecordingPredictorForTest(), MaskingConfig(**NO_EDGES)).run(gray, "mono8", "x")
    assert result.encoding == "mono8" and result.masked.shape == (16, 16, 1)
    assert (result.masked[:, :8] == 90).all() and (result.masked[:, 8:] == 255).all()


def test_config_swaps_apply_to_the_next_frame():
    pipeline = MaskingPipeline(LeftHalfRecordingPredictorForTest(), MaskingConfig(**NO_EDGES))
    pipeline.config = MaskingConfig(mode="crop", crop_resize=False, **NO_EDGES)
    assert pipeline.run(_frame(), "rgb8", "x").masked.shape == (32, 24, 3)


def test_pass_through_publishes_the_frame_with_a_full_mask():
    bgra = np.dstack([_frame()[..., ::-1], np.zeros((32, 48), np.uint8)])
    result = MaskingPipeline.pass_through(bgra, "bgra8")
    assert result.encoding == "bgr8" and result.box == (0, 0, 48, 32)
    np.testing.assert_array_equal(result.masked, bgra[..., :3])
    assert (result.mask == 255).all() and not result.fail_safe


#: A coloured background: BT.601 grey 0.299 R + 0.587 G + 0.114 B = 142.6 -> 143; with the R and B weights swapped
#: (BGR weights on RGB pixels) 105.6 -> 106.
ORANGE, ORANGE_GREY = (230, 120, 30), 143


def _orange_scene() -> np.ndarray:
    """(32, 48, 3) RGB: a green-blue left half (kept by the predictor double), an orange right half (background)."""
    rgb = np.empty((32, 48, 3), np.uint8)
    rgb[:] = ORANGE
    rgb[:, :24] = (20, 200, 90)
    return rgb


def test_gray_mode_gives_the_same_grey_for_the_same_scene_in_rgb_and_bgr_order():
    rgb = _orange_scene()
    out = {}
    for encoding, image in (("rgb8", rgb), ("bgr8", rgb[..., ::-1])):
        pipeline = MaskingPipeline(LeftHalfRecordingPredictorForTest(), MaskingConfig(mode="gray", **NO_EDGES))
        out[encoding] = pipeline.run(np.ascontiguousarray(image), encoding, "x").masked
    np.testing.assert_array_equal(out["rgb8"][:, 24:], out["bgr8"][:, 24:])  # grey: the same in either order
    assert (out["rgb8"][:, 24:] == ORANGE_GREY).all(), out["rgb8"][0, -1]
    np.testing.assert_array_equal(out["rgb8"][:, :24], rgb[:, :24])  # kept half in each input's own order
    np.testing.assert_array_equal(out["bgr8"][:, :24], rgb[:, :24, ::-1])


@pytest.mark.parametrize("backend", ["opencv", "torch"])
def test_luma_weights_follow_each_encodings_channel_order(backend):
    rgb = _orange_scene()
    probs = torch.zeros((1, 32, 48))
    probs[:, :, :24] = 1.0
    cfg = MaskingConfig(mode="gray", **NO_EDGES)
    for encoding, image in (("rgb8", rgb), ("bgr8", rgb[..., ::-1])):
        out = apply_mask(torch.from_numpy(np.ascontiguousarray(image))[None], probs, cfg, backend=backend,
                         luma=LUMA[encoding])
        assert (out.images[0][:, 24:].numpy() == ORANGE_GREY).all(), (encoding, out.images[0][0, -1])
    # mono frames: an RGB fill colour becomes its BT.601 grey
    mono = np.full((1, 32, 48, 1), 90, np.uint8)
    out = apply_mask(torch.from_numpy(mono), probs, MaskingConfig(fill_color=ORANGE, **NO_EDGES), backend=backend,
                     luma=LUMA["mono8"])
    assert (out.images[0][:, 24:].numpy() == ORANGE_GREY).all() and (out.images[0][:, :24].numpy() == 90).all()


def _run(pipeline: MaskingPipeline, keep: bool, instruction: str = "lift the block"):
    pipeline.predictor.keep = keep
    return pipeline.run(_frame(), "rgb8", instruction)


def test_fail_safe_keep_publishes_the_whole_frame_and_counts_the_fraction():
    from ivm_ros.pipeline import FailSafeSettings

    pipeline = MaskingPipeline(LeftHalfRecordingPredictorForTest(), MaskingConfig(**NO_EDGES),
                               FailSafeSettings("keep", window=4))
    assert _run(pipeline, True).fail_safe_action == ""
    result = _run(pipeline, False)
    assert result.fail_safe and result.fail_safe_action == "kept" and (result.mask == 255).all()
    assert pipeline.fail_safe_fraction() == 0.5
    assert pipeline.fail_safe_warning(0.5) is None
    warning = pipeline.fail_safe_warning(0.4)
    assert "published UNMASKED" in warning and "threshold 0.5" in warning
    for _ in range(4):
        _run(pipeline, False)
    assert pipeline.fail_safe_fraction() == 1.0  # the window keeps the last 4


def test_fail_safe_hold_last_reuses_the_last_good_mask_for_n_frames_of_the_same_instruction():
    from ivm_ros.pipeline import FailSafeSettings

    pipeline = MaskingPipeline(LeftHalfRecordingPredictorForTest(), MaskingConfig(**NO_EDGES),
                               FailSafeSettings("hold_last", hold_frames=2))
    good = _run(pipeline, True)
    held = [_run(pipeline, False) for _ in range(3)]
    assert [r.fail_safe_action for r in held] == ["held", "held", "kept"]
    np.testing.assert_array_equal(held[0].mask, good.mask)
    np.testing.assert_array_equal(held[1].masked, good.masked)
    assert (held[2].mask == 255).all()
    assert _run(pipeline, True).fail_safe_action == "" and _run(pipeline, False).fail_safe_action == "held"
    assert _run(pipeline, False, "another instruction").fail_safe_action == "kept"  # not another's mask


def test_fail_safe_drop_marks_the_frame_dropped():
    from ivm_ros.pipeline import FailSafeSettings

    pipeline = MaskingPipeline(LeftHalfRecordingPredictorForTest(), MaskingConfig(**NO_EDGES),
                               FailSafeSettings("drop"))
    assert _run(pipeline, False).fail_safe_action == "dropped"
    with pytest.raises(ValueError, match="fail_safe must be one of"):
        FailSafeSettings("explode")
