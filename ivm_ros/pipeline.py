"""One frame + one instruction -> masked observation: predictor then masking. No ROS.

The masking node is a thin shell around :class:`MaskingPipeline`; ``ivm-ros mask`` and the demo use it too.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
import torch

from ivm_ros.encodings import LUMA, to_output, to_rgb
from ivm_ros.masking import MaskingConfig, apply_mask
from ivm_ros.models.base import MaskPredictor


@dataclasses.dataclass
class MaskingResult:
    """masked: (H', W', C) uint8 in ``encoding``; mask: (H, W) uint8 0..255 as applied; box: x0, y0, x1, y1."""

    masked: np.ndarray
    encoding: str
    mask: np.ndarray
    fail_safe: bool
    box: tuple[int, int, int, int]
    predictor_ms: float
    masking_ms: float


class MaskingPipeline:
    """Holds a predictor and a masking config; :meth:`run` is called from one worker thread.

    The config may be swapped at any time (:attr:`config` is replaced, never mutated).
    """

    def __init__(self, predictor: MaskPredictor, config: MaskingConfig | None = None) -> None:
        self.predictor = predictor
        self.config = config or MaskingConfig()

    def run(self, image: np.ndarray, encoding: str, instruction: str) -> MaskingResult:
        """Masks one (H, W, C) uint8 frame in ROS ``encoding`` for ``instruction``."""
        cfg = self.config
        t0 = time.perf_counter()
        with warnings.catch_warnings():  # message buffers are read-only; predictors never write to their input
            warnings.simplefilter("ignore", UserWarning)
            rgb = torch.from_numpy(to_rgb(image, encoding))[None]
        with torch.inference_mode():
            probs = self.predictor.predict(rgb, [instruction])
        device = probs.device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t1 = time.perf_counter()
        view, out_enc = to_output(image, encoding)
        if not view.flags.c_contiguous:
            view = np.ascontiguousarray(view)
        fill = cfg.fill_color[::-1] if out_enc == "bgr8" else cfg.fill_color
        run_cfg = dataclasses.replace(cfg, fill_color=fill) if fill != cfg.fill_color else cfg
        with warnings.catch_warnings():  # message buffers are read-only; masking never writes to its input
            warnings.simplefilter("ignore", UserWarning)
            images = torch.from_numpy(view)[None].to(device)
        with torch.inference_mode():
            batch = apply_mask(images, probs, run_cfg, luma=LUMA[out_enc])
        masked = batch.images[0]  # a tensor row or, for un-resized crops, the list's first crop
        result = MaskingResult(
            masked=masked.cpu().numpy(),
            encoding=out_enc,
            mask=batch.masks[0].cpu().numpy(),
            fail_safe=bool(batch.fail_safe[0]),
            box=tuple(int(v) for v in batch.boxes[0].tolist()),  # type: ignore[arg-type]
            predictor_ms=(t1 - t0) * 1e3,
            masking_ms=(time.perf_counter() - t1) * 1e3,
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
