"""Mask -> masked observation: threshold, fail-safe, dilation, feathering, overlay/blur/gray/highlight/crop.

ROS-free and model-free; torch tensors in and out, on whatever device they live.
"""

from ivm_ros.masking.apply import MaskedBatch, apply_mask, gaussian_kernel_1d
from ivm_ros.masking.config import CROP_MODES, FAIL_SAFES, MODES, MaskingConfig, gaussian_sigma, kernel_size
from ivm_ros.masking.visualize import debug_overlay

__all__ = [
    "CROP_MODES",
    "FAIL_SAFES",
    "MODES",
    "MaskedBatch",
    "MaskingConfig",
    "apply_mask",
    "debug_overlay",
    "gaussian_kernel_1d",
    "gaussian_sigma",
    "kernel_size",
]
