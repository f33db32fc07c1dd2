"""Probability mask + image -> masked observation, batched, on the device the inputs are on.

Steps (IVM's inference post-processing, see DESIGN.md): resize probabilities to the image (bilinear) ->
threshold -> fail-safe (nothing above threshold keeps the whole image, or ``fail_safe="release"``: the
release's float32 arithmetic) -> rectangular dilation -> Gaussian feathering -> composite
``image * m + background * (1 - m)`` -> optional crop to the kept box (``crop_mode="release"``: to the
feathered mask's support, not resized back).

Two backends compute the same thing. CUDA tensors stay on the GPU and use torch ops. CPU tensors use
OpenCV's SIMD kernels on zero-copy NumPy views: on the 2-core machines here torch's CPU max-pool and
single-channel convolution with 49-pixel kernels are 20-400x slower than ``cv2.dilate`` /
``cv2.GaussianBlur`` (see ``ivm-ros bench masking``). ``backend="torch"`` forces the torch path on CPU, which
is how the GPU code is tested without a GPU.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ivm_ros.masking.config import MaskingConfig, gaussian_sigma, kernel_size

Backend = Literal["auto", "opencv", "torch"]

#: OpenCV's fixed kernels for sizes 3, 5 and 7 when sigma is 0 (getGaussianKernel's table).
_SMALL_GAUSSIAN = {
    1: [1.0],
    3: [0.25, 0.5, 0.25],
    5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
    7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
}
#: ITU-R BT.601 luma weights, as cv2.cvtColor(RGB2GRAY) uses.
_LUMA_RGB = (0.299, 0.587, 0.114)


@dataclasses.dataclass
class MaskedBatch:
    """Result of :func:`apply_mask` for B images of H x W with C channels.

    images: (B, H', W', C) uint8 masked observations; H', W' = H, W unless cropping without resize
        (``crop_resize`` false or ``crop_mode`` release), in which case this is a list of B (h_i, w_i, C) tensors.
    masks: (B, H, W) uint8 soft mask actually applied, 0 (background) .. 255 (kept).
    fail_safe: (B,) bool, True where no pixel passed the threshold and the fail-safe applied (``keep``: the
        whole image was kept; ``release``: the release's float32 arithmetic decided).
    boxes: (B, 4) int64 crop boxes (x0, y0, x1, y1), x1/y1 exclusive, in input pixels: the dilated mask's box,
        or with ``crop_mode`` release the feathered mask's support; the whole image where nothing is kept.
    """

    images: torch.Tensor | list[torch.Tensor]
    masks: torch.Tensor
    fail_safe: torch.Tensor
    boxes: torch.Tensor


def apply_mask(
    images: torch.Tensor,
    probs: torch.Tensor,
    config: MaskingConfig | None = None,
    backend: Backend = "auto",
    luma: tuple[float, float, float] = _LUMA_RGB,
) -> MaskedBatch:
    """Masks a batch.

    Args:
        images: (B, H, W, C) uint8, C in {1, 3}, channel order as the caller's (``fill_color`` and
            ``luma`` weights are in that order too: pass ``luma=(0.114, 0.587, 0.299)`` for BGR).
        probs: (B, h, w) float probabilities in [0, 1] on the same device; resized to (H, W) if needed.
        config: settings; IVM's defaults when None.
        backend: "auto" (OpenCV for CPU tensors, torch otherwise), "opencv" or "torch".
    """
    config = config or MaskingConfig()
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (B, H, W, 1|3) uint8, got {tuple(images.shape)} {images.dtype}")
    if probs.dim() != 3 or probs.shape[0] != images.shape[0]:
        raise ValueError(f"probs must be (B, h, w) with B={images.shape[0]}, got {tuple(probs.shape)}")
    if probs.device != images.device:
        raise ValueError(f"images on {images.device} but probs on {probs.device}")
    if backend == "auto":
        backend = "opencv" if images.device.type == "cpu" else "torch"
    if backend == "opencv":
        if images.device.type != "cpu":
            raise ValueError("the opencv backend needs CPU tensors")
        return _apply_opencv(images, probs, config, luma)
    if backend == "torch":
        return _apply_torch(images, probs, config, luma)
    raise ValueError(f"unknown backend {backend!r}")


# ----------------------------------------------------------------------------------------------- OpenCV


def _apply_opencv(
    images: torch.Tensor, probs: torch.Tensor, cfg: MaskingConfig, luma: tuple[float, float, float]
) -> MaskedBatch:
    b, h, w, c = images.shape
    kd, kf, kb = (kernel_size(h, r) for r in (cfg.dilate_ratio, cfg.feather_ratio, cfg.blur_ratio))
    dilate_kernel = _ones_np(kd) if kd > 1 else None
    # Feathering runs on the 0/255 uint8 mask with a kernel scaled by 1/255 and a float32 result.
    feather = _gaussian_np(kf) if kf > 1 else None
    probs_np = probs.detach().to(torch.float32).numpy()
    out_images, masks = [], np.empty((b, h, w), np.uint8)
    fail_safe, boxes = np.zeros(b, bool), np.zeros((b, 4), np.int64)
    for i in range(b):
        img = images[i].numpy()
        p = probs_np[i]
        if p.shape != (h, w):
            p = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
        keep = cv2.compare(p, cfg.threshold, cv2.CMP_GT)  # uint8 0/255
        kept = cv2.countNonZero(keep)
        if cfg.fail_safe != "off" and kept == 0:
            fail_safe[i] = True
            keep = release_fail_safe_np(p, cfg.threshold) if cfg.fail_safe == "release" else np.full_like(keep, 255)
            kept = cv2.countNonZero(keep)
        if kept == h * w and cfg.mode != "highlight":
            # Everything kept (keep_all, fail-safe): dilation and feathering of a constant are the constant.
            masks[i] = 255
            boxes[i] = (0, 0, w, h)
            out_images.append(img)
            continue
        if dilate_kernel is not None:
            keep = cv2.dilate(keep, dilate_kernel)
        if feather is not None:
            soft = cv2.sepFilter2D(keep, cv2.CV_32F, feather, feather / 255.0, borderType=cv2.BORDER_REFLECT_101)
        else:
            soft = keep.astype(np.float32) * np.float32(1 / 255)
        support = cv2.compare(soft, 0.0, cv2.CMP_GT) if cfg.crop_mode == "release" else keep
        x, y, bw, bh = cv2.boundingRect(support)
        boxes[i] = (x, y, x + bw, y + bh) if bw > 0 else (0, 0, w, h)
        if cfg.mode == "highlight":
            soft *= np.float32(1.0 - cfg.highlight_alpha)
            soft += np.float32(cfg.highlight_alpha)
        masks[i] = cv2.convertScaleAbs(soft, alpha=255.0)
        out = img if cfg.mode == "crop" else _composite_np(img, soft, _background_np(img, cfg, kb, luma))
        if cfg.crops:
            out = _crop_np(out, boxes[i], cfg.resizes_crop)
        out_images.append(out.reshape(out.shape[0], out.shape[1], c))
    result = (
        torch.from_numpy(_stack(out_images, images.numpy()))
        if not cfg.crops or cfg.resizes_crop
        else [torch.from_numpy(np.ascontiguousarray(o)) for o in out_images]
    )
    return MaskedBatch(result, torch.from_numpy(masks), torch.from_numpy(fail_safe), torch.from_numpy(boxes))


def release_fail_safe_np(prob: np.ndarray, threshold: float) -> np.ndarray:
    """The release's fail-safe on an (H, W) float32 map where nothing passed: uint8 0/255 kept pixels.

    The release runs ``if threshold > mask.max(): mask += threshold`` then ``mask > threshold`` in float32
    (NumPy 2 compares a Python float with float32 data in float32): probabilities below about half a float32
    step of the threshold are absorbed by the addition and dropped, and a maximum equal to float32(threshold)
    skips the addition, so nothing is kept.
    """
    t = np.float32(threshold)
    p = prob.astype(np.float32, copy=False)
    if not t > p.max():
        return np.zeros(p.shape, np.uint8)
    return np.where((p + t) > t, np.uint8(255), np.uint8(0))


def _background_np(img: np.ndarray, cfg: MaskingConfig, kb: int, luma: tuple[float, float, float]) -> np.ndarray:
    c = img.shape[2]
    if cfg.mode in ("overlay", "highlight"):
        color = cfg.fill_color if c == 3 else (int(round(float(np.dot(cfg.fill_color, luma)))),)
        return _solid(img.shape, color)
    if cfg.mode == "blur":
        if kb <= 1:
            return img
        return cv2.GaussianBlur(img, (kb, kb), 0, borderType=cv2.BORDER_REFLECT_101).reshape(img.shape)
    if cfg.mode == "gray":
        if c == 1:
            return img
        code = cv2.COLOR_RGB2GRAY if luma[0] > luma[2] else cv2.COLOR_BGR2GRAY
        return cv2.cvtColor(cv2.cvtColor(img, code), cv2.COLOR_GRAY2RGB)
    raise AssertionError(cfg.mode)


def _stack(images: list[np.ndarray], inputs: np.ndarray) -> np.ndarray:
    """(B, H, W, C) from B (H, W, C) results, never sharing memory with ``inputs``; a single contiguous
    result computed here (not the input or a view of it) is returned as a view instead of copied."""
    if len(images) == 1 and images[0].flags.c_contiguous and not np.may_share_memory(images[0], inputs):
        return images[0][None]
    return np.stack(images)


@functools.lru_cache(maxsize=8)
def _ones_np(ksize: int) -> np.ndarray:
    """The (ksize, ksize) rectangular dilation kernel, cached and read-only."""
    out = np.ones((ksize, ksize), np.uint8)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def _gaussian_np(ksize: int) -> np.ndarray:
    """:func:`gaussian_kernel_1d` as a cached read-only NumPy array (0.06-0.2 ms to build each frame)."""
    out = gaussian_kernel_1d(ksize).numpy()
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=8)
def _solid(shape: tuple[int, ...], color: tuple[int, ...]) -> np.ndarray:
    """A read-only image of one colour, cached: the fill image of overlay/highlight."""
    out = np.empty(shape, np.uint8)
    out[:] = color
    out.flags.writeable = False
    return out


def _composite_np(img: np.ndarray, soft: np.ndarray, background: np.ndarray) -> np.ndarray:
    """img * soft + background * (1 - soft), rounded, (H, W, C) uint8."""
    if img.shape[2] == 1:
        bg = background.astype(np.float32)[..., 0]
        return np.rint(bg + (img[..., 0].astype(np.float32) - bg) * soft).astype(np.uint8)[..., None]
    return cv2.blendLinear(img, background, soft, 1.0 - soft)


def _crop_np(img: np.ndarray, box: np.ndarray, resize: bool) -> np.ndarray:
    x0, y0, x1, y1 = (int(v) for v in box)
    crop = img[y0:y1, x0:x1]
    if resize and crop.shape[:2] != img.shape[:2]:
        crop = cv2.resize(crop, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
    return crop


# ------------------------------------------------------------------------------------------------ torch


def _apply_torch(
    images: torch.Tensor, probs: torch.Tensor, cfg: MaskingConfig, luma: tuple[float, float, float]
) -> MaskedBatch:
    b, h, w, c = images.shape
    kd, kf, kb = (kernel_size(h, r) for r in (cfg.dilate_ratio, cfg.feather_ratio, cfg.blur_ratio))
    p = probs.to(torch.float32)[:, None]
    if p.shape[-2:] != (h, w):
        p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
    keep = p > cfg.threshold  # (B, 1, H, W) bool
    empty = ~keep.flatten(1).any(1)
    fail_safe = empty if cfg.fail_safe != "off" else torch.zeros_like(empty)
    if cfg.fail_safe == "release":
        keep = torch.where(fail_safe[:, None, None, None], release_fail_safe_torch(p, cfg.threshold), keep)
    else:
        keep = keep | fail_safe[:, None, None, None]
    keep = keep.to(torch.float32)
    if kd > 1:
        r = kd // 2
        keep = F.max_pool2d(F.pad(keep, (r, r, 0, 0)), (1, kd), stride=1)
        keep = F.max_pool2d(F.pad(keep, (0, 0, r, r)), (kd, 1), stride=1)
    soft = _gaussian_torch(keep, kf) if kf > 1 else keep
    boxes = _boxes_torch((soft if cfg.crop_mode == "release" else keep)[:, 0] > 0)
    if cfg.mode == "highlight":
        soft = cfg.highlight_alpha + (1.0 - cfg.highlight_alpha) * soft
    masks = torch.round(soft[:, 0] * 255.0).to(torch.uint8)
    img = images.permute(0, 3, 1, 2).to(torch.float32)  # (B, C, H, W)
    if cfg.mode == "crop":
        out = img
    else:
        bg = _background_torch(img, cfg, kb, luma)
        out = torch.round(bg + (img - bg) * soft).clamp_(0, 255)
    if cfg.crops:
        crops = [out[i, :, y0:y1, x0:x1] for i, (x0, y0, x1, y1) in enumerate(boxes.tolist())]
        if cfg.resizes_crop:
            out = torch.stack(
                [
                    F.interpolate(cr[None], size=(h, w), mode="bilinear", align_corners=False)[0]
                    if cr.shape[-2:] != (h, w)
                    else cr
                    for cr in crops
                ]
            )
        else:
            return MaskedBatch(
                [torch.round(cr).to(torch.uint8).permute(1, 2, 0).contiguous() for cr in crops],
                masks,
                fail_safe,
                boxes,
            )
    out_u8 = torch.round(out).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    return MaskedBatch(out_u8, masks, fail_safe, boxes)


def release_fail_safe_torch(prob: torch.Tensor, threshold: float) -> torch.Tensor:
    """:func:`release_fail_safe_np` for (B, 1, H, W) float32 probabilities: (B, 1, H, W) bool kept pixels."""
    t = torch.tensor(threshold, dtype=torch.float32, device=prob.device)
    below = prob.flatten(1).amax(1) < t  # the release adds the threshold only when it exceeds the maximum
    return ((prob + t) > t) & below[:, None, None, None]


def gaussian_kernel_1d(ksize: int, device: torch.device | None = None) -> torch.Tensor:
    """OpenCV's 1-D Gaussian kernel for ``ksize`` with sigma 0, float32 (ksize,)."""
    if ksize in _SMALL_GAUSSIAN:
        return torch.tensor(_SMALL_GAUSSIAN[ksize], dtype=torch.float32, device=device)
    x = torch.arange(ksize, dtype=torch.float64, device=device) - (ksize - 1) / 2
    g = torch.exp(-(x**2) / (2 * gaussian_sigma(ksize) ** 2))
    return (g / g.sum()).to(torch.float32)


def _gaussian_torch(x: torch.Tensor, ksize: int) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) float with OpenCV's kernel and BORDER_REFLECT_101."""
    c, r = x.shape[1], ksize // 2
    g = gaussian_kernel_1d(ksize, x.device)
    # Reflect padding needs pad < size; larger kernels on tiny images fall back to replicate.
    mode_w = "reflect" if r < x.shape[-1] else "replicate"
    mode_h = "reflect" if r < x.shape[-2] else "replicate"
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode_w), g.view(1, 1, 1, ksize).expand(c, 1, 1, ksize), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode_h), g.view(1, 1, ksize, 1).expand(c, 1, ksize, 1), groups=c)


def _background_torch(img: torch.Tensor, cfg: MaskingConfig, kb: int, luma: tuple[float, float, float]) -> torch.Tensor:
    c = img.shape[1]
    if cfg.mode in ("overlay", "highlight"):
        color = torch.tensor(cfg.fill_color, dtype=torch.float32, device=img.device)
        if c == 1:
            color = torch.round((color * torch.tensor(luma, device=img.device)).sum())[None]
        return color.view(1, c, 1, 1)
    if cfg.mode == "blur":
        return torch.round(_gaussian_torch(img, kb)) if kb > 1 else img
    if cfg.mode == "gray":
        if c == 1:
            return img
        weights = torch.tensor(luma, dtype=torch.float32, device=img.device).view(1, 3, 1, 1)
        return torch.round((img * weights).sum(1, keepdim=True))
    raise AssertionError(cfg.mode)


def _boxes_torch(keep: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool -> (B, 4) int64 boxes (x0, y0, x1, y1); whole image where nothing is kept."""
    b, h, w = keep.shape
    rows, cols = keep.any(2), keep.any(1)
    ar_h = torch.arange(h, device=keep.device)
    ar_w = torch.arange(w, device=keep.device)
    y0 = torch.where(rows, ar_h, h).amin(1)
    y1 = torch.where(rows, ar_h + 1, 0).amax(1)
    x0 = torch.where(cols, ar_w, w).amin(1)
    x1 = torch.where(cols, ar_w + 1, 0).amax(1)
    none = ~rows.any(1)
    boxes = torch.stack([x0, y0, x1, y1], 1)
    full = torch.tensor([0, 0, w, h], device=keep.device)
    return torch.where(none[:, None], full, boxes).to(torch.int64)
