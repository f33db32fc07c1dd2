"""MaskTracker: masks at camera rate (predict at a low rate, carry the mask between by optical flow)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ivm_ros.masking.propagate import MaskTracker, PropagationSettings
from ivm_ros.pipeline import MaskingPipeline

H = W = 96
SIDE = 24
STEP = 1  # px per frame the square moves right (CALVIN objects: about 1 px per frame at 200 px)
FPS = 30.0


def _texture(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """Smooth random grey texture (H, W) uint8 with structure at several scales (what a flow can lock onto)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h, w)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.5) * 2 - 128, 0, 255).astype(np.uint8)


BACKGROUND, PATCH = _texture(1), _texture(2, SIDE, SIDE)


def scene(t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t: (H, W, 3) RGB with a textured square at x = 20 + STEP * t over a static textured background, and
    the square's (H, W) bool mask."""
    x, y = min(20 + STEP * t, W - SIDE), 36
    grey = BACKGROUND.copy()
    grey[y:y + SIDE, x:x + SIDE] = PATCH
    mask = np.zeros((H, W), bool)
    mask[y:y + SIDE, x:x + SIDE] = True
    return np.repeat(grey[..., None], 3, axis=2), mask


class Oracle:
    """A predictor double: the true mask of the frame it is asked about; counts its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, t: int):
        """The predictor of frame t (called only when the tracker decides to predict)."""

        def predict() -> torch.Tensor:
            self.calls.append(t)
            return torch.from_numpy(scene(t)[1].astype(np.float32))[None]

        return predict


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _run(settings: PropagationSettings, frames: int, instruction=lambda t: "the square", stamp=lambda t: t / FPS):
    tracker, oracle, out = MaskTracker(settings), Oracle(), []
    for t in range(frames):
        image, truth = scene(t)
        tracked = tracker.track(image, stamp(t), instruction(t), oracle(t))
        assert tracked.probs.shape == (1, H, W) and tracked.probs.dtype == torch.float32
        out.append((tracked, iou(tracked.probs[0].numpy() > 0.5, truth)))
    return tracker, oracle, out


def _centre_x(probs: torch.Tensor) -> float:
    return float(np.nonzero(probs[0].numpy() > 0.5)[1].mean())


@pytest.mark.parametrize("check", ["photometric", "forward_backward"])
def test_flow_carries_the_mask_with_the_moving_square_and_hold_does_not(check):
    frames = 16  # 1 Hz: one prediction, then 15 frames (15 px of motion) without the predictor
    flow, calls, out = _run(PropagationSettings("flow", predictor_rate=1.0, check=check), frames)
    hold, _, held = _run(PropagationSettings("hold", predictor_rate=1.0), frames)
    assert [r.source for r, _ in out] == ["predicted"] + ["propagated"] * (frames - 1)
    assert calls.calls == [0]
    assert held[-1][1] < 0.3  # the held mask stayed where the square was
    assert out[-1][1] > held[-1][1] + 0.2, [round(v, 2) for _, v in out]
    assert all(f >= h for (_, f), (_, h) in zip(out[1:], held[1:], strict=True))
    # it moves with the square (less far: DIS ultrafast underestimates sub-pixel motion, ~0.7 px of each 1 px, and
    # uncovered background next to the square keeps some of the mask)
    assert 4 <= _centre_x(out[-1][0].probs) - _centre_x(out[0][0].probs) <= 16
    assert _centre_x(held[-1][0].probs) == _centre_x(held[0][0].probs)
    assert all(0.9 <= r.confidence <= 1.0 for r, _ in out[1:])  # above the default min_confidence
    assert flow.counts == {"predicted": 1, "propagated": frames - 1}
    assert hold.counts == {"predicted": 1, "held": frames - 1}


def test_rate_follows_the_frame_stamps_not_the_wall_clock():
    _, oracle, _ = _run(PropagationSettings("hold", predictor_rate=2.0), 31)
    assert oracle.calls == [0, 15, 30]  # 2 Hz of a 30 Hz camera (stamps k/30 are not exact multiples of 0.5)
    early = lambda t: t / FPS - (0.01 if t == 6 else 0.0)  # frame 6 stamped 0.19 s: too early for 5 Hz
    _, oracle, _ = _run(PropagationSettings("hold", predictor_rate=5.0), 14, stamp=early)
    assert oracle.calls == [0, 7, 13]  # each prediction at least 0.2 s after the previous one
    _, oracle, _ = _run(PropagationSettings("hold", predictor_every=4, predictor_rate=100.0), 9)
    assert oracle.calls == [0, 4, 8]  # every K frames overrides the rate


def test_stamps_going_backwards_force_a_prediction():
    _, oracle, out = _run(PropagationSettings("hold", predictor_rate=1.0), 6, stamp=lambda t: [0, .1, .2, 5, .3, .4][t])
    assert oracle.calls == [0, 3, 4]  # 5 s: due by rate; 0.3 s after 5 s: time went back (a bag looped)
    assert out[4][0].reason == "stamp_back"


def test_a_new_instruction_forces_a_fresh_prediction():
    _, oracle, out = _run(PropagationSettings("flow", predictor_rate=0.5), 8,
                          instruction=lambda t: "the square" if t < 5 else "the background")
    assert oracle.calls == [0, 5]
    assert out[5][0].source == "predicted" and out[5][0].reason == "instruction"


def test_off_and_rate_zero_predict_every_frame():
    for settings in (PropagationSettings("off", predictor_rate=2.0), PropagationSettings("flow", predictor_rate=0.0)):
        assert not settings.active
        tracker, oracle, out = _run(settings, 4)
        assert oracle.calls == [0, 1, 2, 3] and tracker.counts == {"predicted": 4}
        assert all(r.source == "predicted" for r, _ in out)


def _cut(tracker: MaskTracker, fallback_frame: np.ndarray) -> list:
    """Two frames of the square, then an unrelated frame (a cut: no flow explains it), then two more."""
    oracle = Oracle()
    frames = [scene(0)[0], scene(1)[0], fallback_frame, fallback_frame, fallback_frame]
    return [tracker.track(f, t / FPS, "the square", oracle(t)) for t, f in enumerate(frames)]


def test_low_confidence_repredicts_and_is_counted():
    tracker = MaskTracker(PropagationSettings("flow", predictor_rate=1.0, fallback="repredict"))
    out = _cut(tracker, np.repeat(_texture(7)[..., None], 3, axis=2))
    assert [r.source for r in out] == ["predicted", "propagated", "repredicted", "propagated", "propagated"]
    assert out[2].reason == "low_confidence" and out[2].confidence < 0.9
    assert tracker.counts["fallback_repredict"] == 1


def test_low_confidence_whole_frame_keeps_everything_until_the_next_prediction():
    tracker = MaskTracker(PropagationSettings("flow", predictor_rate=1.0, fallback="whole_frame"))
    out = _cut(tracker, np.repeat(_texture(7)[..., None], 3, axis=2))
    assert [r.source for r in out] == ["predicted", "propagated", "whole_frame", "whole_frame", "whole_frame"]
    assert all(bool((r.probs == 1).all()) for r in out[2:])
    assert tracker.counts["fallback_whole_frame"] == 3
    image, _ = scene(0)
    assert tracker.track(image, 2.0, "the square", Oracle()(0)).source == "predicted"  # 1 Hz: due again


def test_bad_inputs_give_clear_errors():
    tracker = MaskTracker(PropagationSettings("flow", predictor_rate=2.0))
    ok = lambda: torch.zeros(1, H, W)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) RGB or \(H, W\) grey"):
        tracker.track(np.zeros((H, W, 4), np.uint8), 0.0, "x", ok)
    with pytest.raises(ValueError, match="uint8"):
        tracker.track(np.zeros((H, W, 3), np.float32), 0.0, "x", ok)
    with pytest.raises(ValueError, match=r"\(1, h, w\) probabilities"):
        tracker.track(scene(0)[0], 0.0, "x", lambda: torch.zeros(2, H, W))
    with pytest.raises(ValueError, match="finite"):
        tracker.track(scene(0)[0], float("nan"), "x", ok)
    with pytest.raises(ValueError, match="mode must be one of"):
        PropagationSettings("optical")
    with pytest.raises(ValueError, match="predictor_rate"):
        PropagationSettings("flow", predictor_rate=-1.0)
    with pytest.raises(ValueError, match="min_confidence"):
        PropagationSettings("flow", min_confidence=1.5)


def test_a_lower_resolution_predictor_output_is_carried_at_its_own_size():
    tracker = MaskTracker(PropagationSettings("flow", predictor_rate=1.0, flow_size=48))  # flow at half size
    for t in range(6):
        image, truth = scene(t)
        small = lambda t=t: torch.from_numpy(cv2.resize(scene(t)[1].astype(np.float32), (W // 2, H // 2)))[None]
        tracked = tracker.track(image, t / FPS, "the square", small)
        assert tracked.probs.shape == (1, H // 2, W // 2)
    up = cv2.resize(tracked.probs[0].numpy(), (W, H)) > 0.5
    assert tracked.source == "propagated" and iou(up, truth) > 0.7


def test_pipeline_reports_each_frames_source_and_new_settings_force_a_prediction():
    class Predictor:
        device = torch.device("cpu")

        def __init__(self) -> None:
            self.calls = 0

        def predict(self, images, instructions):
            self.calls += 1
            return torch.from_numpy(scene(0)[1].astype(np.float32))[None]

        def close(self) -> None:
            pass

    predictor = Predictor()
    pipeline = MaskingPipeline(predictor, propagation=PropagationSettings("hold", predictor_rate=1.0))  # type: ignore
    sources = [pipeline.run(scene(t)[0], "rgb8", "the square", t / FPS).mask_source for t in range(3)]
    assert sources == ["predicted", "held", "held"] and predictor.calls == 1
    pipeline.configure(pipeline.fail_safe, PropagationSettings("flow", predictor_rate=1.0))
    assert pipeline.run(scene(3)[0], "rgb8", "the square", 3 / FPS).mask_source == "predicted"
    assert pipeline.run(scene(4)[0], "rgb8", "the square", 4 / FPS).mask_source == "propagated"
    assert pipeline.tracker.counts == {"predicted": 2, "held": 2, "propagated": 1}


def test_settings_changed_by_another_thread_during_a_frame_apply_from_the_next_frame():
    """A parameter callback may set new settings while the worker is inside track(): the frame in progress finishes
    under the old settings and the next frame is predicted under the new ones (a switch hold -> flow in the middle
    of a held frame once left the tracker without a previous flow frame: AssertionError, frame dropped)."""
    tracker, oracle = MaskTracker(PropagationSettings("hold", predictor_rate=1.0)), Oracle()
    tracker.track(*scene(0)[:1], 0.0, "the square", oracle(0))
    flow = PropagationSettings("flow", predictor_rate=1.0)

    def predict_while_settings_change() -> torch.Tensor:  # runs inside track(), as the callback thread would
        tracker.settings = flow
        return oracle(1)()

    stamp = 1.0  # due by rate: track() calls the predictor, during which the settings change
    tracked = tracker.track(scene(1)[0], stamp, "the square", predict_while_settings_change)
    assert tracked.source == "predicted" and tracker.settings == flow
    sources = [tracker.track(scene(t)[0], stamp + (t - 1) / FPS, "the square", oracle(t)).source for t in (2, 3, 4)]
    assert sources == ["predicted", "propagated", "propagated"], sources  # new settings: predict, then carry
    assert oracle.calls == [0, 1, 2]
