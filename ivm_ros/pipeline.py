"""One frame + one instruction -> masked observation: predictor then masking. No ROS.

The masking node is a thin shell around :class:`MaskingPipeline`; ``ivm-ros mask`` and the demo use it too.
"""

from __future__ import annotations

import collections
import dataclasses
import time
import warnings

import numpy as np
import torch

from ivm_ros.encodings import LUMA, to_output, to_rgb
from ivm_ros.masking import MaskingConfig, apply_mask
from ivm_ros.masking.propagate import MaskTracker, PropagationSettings
from ivm_ros.models.base import MaskPredictor

#: What a frame in which no pixel passed the threshold gets (see :class:`FailSafeSettings`).
FAIL_SAFE_ACTIONS = ("keep", "hold_last", "drop", "release")


@dataclasses.dataclass(frozen=True)
class FailSafeSettings:
    """The fail-safe of a frame where no pixel passed the threshold. ``keep``: the whole frame, unmasked (IVM's
    behaviour); ``hold_last``: the last mask of the same instruction in which something passed, for at most
    ``hold_frames`` frames in a row, then the whole frame; ``drop``: nothing (a node publishes nothing, so the
    policy behind it holds on its watchdog); ``release``: the released code's float32 arithmetic
    (``MaskingConfig.fail_safe="release"``: partly or wholly background, see :mod:`ivm_ros.masking.config`).
    A masking config with ``release_compat`` (or its own ``fail_safe="release"``) acts as ``release``.
    ``window``: frames over which :meth:`MaskingPipeline.fail_safe_fraction` is measured."""

    action: str = "keep"
    hold_frames: int = 15
    window: int = 100

    def __post_init__(self) -> None:
        if self.action not in FAIL_SAFE_ACTIONS:
            raise ValueError(f"fail_safe must be one of {FAIL_SAFE_ACTIONS}, got {self.action!r}")
        if self.hold_frames < 1 or self.window < 1:
            raise ValueError("hold_frames and window must be >= 1")


@dataclasses.dataclass
class MaskingResult:
    """masked: (H', W', C) uint8 in ``encoding``; mask: (H, W) uint8 0..255 as applied; box: x0, y0, x1, y1.
    ``fail_safe``: no pixel of this frame's prediction passed the threshold; ``fail_safe_action`` says what the
    frame got then: ``kept`` (whole frame), ``held`` (the last good mask), ``dropped`` (publish nothing),
    ``released`` (the release's fail-safe arithmetic); "" else. ``predictor_ms``: ms to get this frame's
    probabilities (the predictor's run, or the propagation's when ``mask_source`` is not "predicted" or
    "repredicted", see :mod:`ivm_ros.masking.propagate`); ``mask_source``: one of its ``SOURCES``."""

    masked: np.ndarray
    encoding: str
    mask: np.ndarray
    fail_safe: bool
    box: tuple[int, int, int, int]
    predictor_ms: float
    masking_ms: float
    fail_safe_action: str = ""
    mask_source: str = "predicted"


class MaskingPipeline:
    """Holds a predictor and a masking config; :meth:`run` is called from one worker thread.

    The config may be swapped at any time (:attr:`config` is replaced, never mutated). ``propagation``: how often
    the predictor runs and how the frames between get their mask (default: every frame; see
    :mod:`ivm_ros.masking.propagate`); :attr:`tracker` counts the frames of each kind.
    """

    def __init__(self, predictor: MaskPredictor, config: MaskingConfig | None = None,
                 fail_safe: FailSafeSettings | None = None, propagation: PropagationSettings | None = None) -> None:
        self.predictor = predictor
        self.config = config or MaskingConfig()
        self.fail_safe = fail_safe or FailSafeSettings()
        self.tracker = MaskTracker(propagation)
        self._last_good: tuple[str, torch.Tensor] | None = None  # (instruction, probs) where something passed
        self._held = 0  # fail-safe frames in a row that got the last good mask
        self._recent: collections.deque[bool] = collections.deque(maxlen=self.fail_safe.window)

    def configure(self, fail_safe: FailSafeSettings, propagation: PropagationSettings) -> None:
        """New fail-safe and propagation settings (changed propagation settings: the next frame is predicted)."""
        self.fail_safe = fail_safe
        if propagation != self.tracker.settings:
            self.tracker.settings = propagation

    def fail_safe_fraction(self) -> float:
        """Fraction of the last ``fail_safe.window`` frames in which nothing passed the threshold (0 before any)."""
        recent = list(self._recent)
        return sum(recent) / len(recent) if recent else 0.0

    def fail_safe_warning(self, limit: float) -> str | None:
        """What to tell the user when more than ``limit`` of the recent frames were fail-safe, else None."""
        fraction = self.fail_safe_fraction()
        if fraction <= limit:
            return None
        action = self.fail_safe.action
        labels = {"keep": "published UNMASKED", "hold_last": "given the last mask (then unmasked)",
                  "drop": "dropped", "release": "masked by the release's fail-safe (partly or wholly background)"}
        what = labels["release" if self.config.fail_safe == "release" else action]
        return (f"fail-safe on {fraction:.0%} of the last {len(self._recent)} frames: no pixel above threshold "
                f"{self.config.threshold:g}, so the frames were {what} (fail_safe: {action}); lower the threshold, "
                "check that the instruction names something in view, or choose another fail_safe")

    def _fail_safe_action(self, failed: bool, instruction: str, probs: torch.Tensor) -> str:
        """Records one frame's outcome; the action for a fail-safe frame ("kept", "held", "dropped",
        "released"), else ""."""
        settings = self.fail_safe
        if self._recent.maxlen != settings.window:
            self._recent = collections.deque(self._recent, maxlen=settings.window)
        self._recent.append(failed)
        if not failed:
            self._last_good, self._held = (instruction, probs), 0
            return ""
        if settings.action == "release" or self.config.fail_safe == "release":
            return "released"
        if settings.action == "drop":
            return "dropped"
        last = self._last_good
        if settings.action == "hold_last" and last is not None and last[0] == instruction:
            if self._held < settings.hold_frames:
                self._held += 1
                return "held"
        return "kept"

    def _predict(self, rgb: np.ndarray, instruction: str) -> torch.Tensor:
        """The predictor's (1, h, w) probabilities for one (H, W, 3) RGB frame (CUDA work finished)."""
        with warnings.catch_warnings():  # message buffers are read-only; predictors never write to their input
            warnings.simplefilter("ignore", UserWarning)
            batch = torch.from_numpy(rgb)[None]
        with torch.inference_mode():
            probs = self.predictor.predict(batch, [instruction])
        if probs.device.type == "cuda":
            torch.cuda.synchronize(probs.device)
        return probs

    def run(self, image: np.ndarray, encoding: str, instruction: str, stamp: float | None = None) -> MaskingResult:
        """Masks one (H, W, C) uint8 frame in ROS ``encoding`` for ``instruction``. ``stamp``: the frame's time in
        s (its header stamp), which paces the predictor when propagation is on (None: this computer's clock)."""
        cfg = self.config
        t0 = time.perf_counter()
        rgb = to_rgb(image, encoding)
        if self.tracker.settings.active:
            stamp = time.monotonic() if stamp is None else stamp
            tracked = self.tracker.track(rgb, stamp, instruction, lambda: self._predict(rgb, instruction))
            probs, source = tracked.probs, tracked.source
        else:
            probs, source = self._predict(rgb, instruction), "predicted"
        device = probs.device
        t1 = time.perf_counter()
        view, out_enc = to_output(image, encoding)
        if not view.flags.c_contiguous:
            view = np.ascontiguousarray(view)
        fill = cfg.fill_color[::-1] if out_enc == "bgr8" else cfg.fill_color
        fail_safe = "release" if self.fail_safe.action == "release" else cfg.fail_safe
        changed = fill != cfg.fill_color or fail_safe != cfg.fail_safe
        run_cfg = dataclasses.replace(cfg, fill_color=fill, fail_safe=fail_safe) if changed else cfg
        with warnings.catch_warnings():  # message buffers are read-only; masking never writes to its input
            warnings.simplefilter("ignore", UserWarning)
            images = torch.from_numpy(view)[None].to(device)
        with torch.inference_mode():
            batch = apply_mask(images, probs, run_cfg, luma=LUMA[out_enc])
            failed = bool(batch.fail_safe[0])
            action = self._fail_safe_action(failed, instruction, probs)
            if action == "held":
                batch = apply_mask(images, self._last_good[1], run_cfg, luma=LUMA[out_enc])  # type: ignore[index]
        masked = batch.images[0]  # a tensor row or, for un-resized crops, the list's first crop
        result = MaskingResult(
            masked=masked.cpu().numpy(),
            encoding=out_enc,
            mask=batch.masks[0].cpu().numpy(),
            fail_safe=failed,
            box=tuple(int(v) for v in batch.boxes[0].tolist()),  # type: ignore[arg-type]
            predictor_ms=(t1 - t0) * 1e3,
            masking_ms=(time.perf_counter() - t1) * 1e3,
            fail_safe_action=action,
            mask_source=source,
        )
        return result

    @staticmethod
    def pass_through(image: np.ndarray, encoding: str) -> MaskingResult:
        """The unmasked frame with a full mask (used before any instruction when so configured)."""
        view, out_enc = to_output(image, encoding)
        h, w = view.shape[:2]
        return MaskingResult(view, out_enc, np.full((h, w), 255, np.uint8), False, (0, 0, w, h), 0.0, 0.0)

    def close(self) -> None:
        self.predictor.close()
