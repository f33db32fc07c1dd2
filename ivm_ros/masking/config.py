"""Settings of the mask -> masked-observation step, with IVM's reference sizes as defaults."""

from __future__ import annotations

import dataclasses
from typing import Literal

#: Background treatments. overlay: fill colour; blur: Gaussian-blurred image; gray: grayscale image;
#: highlight: fill colour at partial strength (keeps ``highlight_alpha`` of the background);
#: crop: no background change, the image is cropped to the mask's box.
MODES = ("overlay", "blur", "gray", "highlight", "crop")
Mode = Literal["overlay", "blur", "gray", "highlight", "crop"]
#: No pixel above the threshold. keep: the whole image (the release's stated intent); release: the release's
#: float32 arithmetic (``p += threshold; p > threshold``), which drops probabilities within half a float32 step
#: of the threshold, so such frames come out partly or wholly background; off: nothing is kept.
FAIL_SAFES = ("keep", "release", "off")
#: Which box a crop takes. box: the dilated mask's box (before feathering); release: the support (> 0) of the
#: feathered mask, halo included, never resized back (as the release's ``do_crop``).
CROP_MODES = ("box", "release")


@dataclasses.dataclass
class MaskingConfig:
    """How a probability mask becomes a masked observation.

    Kernel sizes follow IVM's release: ``2 * int(ratio * H) + 1`` pixels for an image H pixels high
    (ratio 0.05 -> 49 px at 480 rows); a ratio of 0 turns the step off. ``release_compat`` overrides
    ``fail_safe`` and ``crop_mode`` with "release" when the config is validated. The release's own code
    defaults to threshold 0.1 and its robot demos use 0.7-0.99; set ``threshold`` explicitly.
    """

    threshold: float = 0.5  # probability above which a pixel is relevant, in [0, 1)
    mode: Mode = "overlay"
    fill_color: tuple[int, int, int] = (255, 255, 255)  # in the image's channel order; white as IVM
    dilate_ratio: float = 0.05  # rectangular dilation kernel, fraction of the image height
    feather_ratio: float = 0.05  # Gaussian feathering kernel (sigma as OpenCV derives it), fraction of H
    blur_ratio: float = 0.05  # background blur kernel for mode "blur", fraction of H
    highlight_alpha: float = 0.3  # fraction of the background kept in mode "highlight", in [0, 1]
    crop: bool = False  # crop the result to the box of the kept region (any mode; always on for "crop")
    crop_mode: str = "box"  # box | release (see CROP_MODES)
    crop_resize: bool = True  # crop_mode box: resize a crop back to the input size so outputs share one shape
    fail_safe: str = "keep"  # keep | release | off (see FAIL_SAFES); True/False are read as keep/off
    release_compat: bool = False  # shortcut: fail_safe and crop_mode "release" (threshold stays yours)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the first bad setting; applies ``release_compat``."""
        if isinstance(self.fail_safe, bool):  # the earlier boolean setting
            self.fail_safe = "keep" if self.fail_safe else "off"
        if self.release_compat:
            self.fail_safe, self.crop_mode = "release", "release"
        if self.fail_safe not in FAIL_SAFES:
            raise ValueError(f"fail_safe must be one of {FAIL_SAFES}, got {self.fail_safe!r}")
        if self.crop_mode not in CROP_MODES:
            raise ValueError(f"crop_mode must be one of {CROP_MODES}, got {self.crop_mode!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        for name in ("dilate_ratio", "feather_ratio", "blur_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 0.5:
                raise ValueError(f"{name} must be in [0, 0.5], got {value}")
        if not 0.0 <= self.highlight_alpha <= 1.0:
            raise ValueError(f"highlight_alpha must be in [0, 1], got {self.highlight_alpha}")
        color = tuple(self.fill_color)
        if len(color) != 3 or any(not 0 <= int(c) <= 255 for c in color):
            raise ValueError(f"fill_color must be three values in [0, 255], got {self.fill_color}")
        self.fill_color = tuple(int(c) for c in color)  # type: ignore[assignment]

    @property
    def crops(self) -> bool:
        return self.crop or self.mode == "crop"

    @property
    def resizes_crop(self) -> bool:
        """A crop is resized back to the input size (crop_mode box with crop_resize; never for release)."""
        return self.crop_resize and self.crop_mode == "box"


def kernel_size(height: int, ratio: float) -> int:
    """IVM's odd kernel size ``2 * int(ratio * height) + 1`` (1 means no-op)."""
    return 2 * int(ratio * height) + 1


def gaussian_sigma(ksize: int) -> float:
    """The sigma OpenCV derives for a kernel size when sigma is 0: 0.3 * ((k - 1) * 0.5 - 1) + 0.8."""
    return 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
