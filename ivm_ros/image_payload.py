"""Image message payloads -> NumPy, validated (no ROS): the checks and the decoder shared by the nodes
(:mod:`ivm_ros.ros.conversions`, over rclpy messages) and the bag tools (:mod:`ivm_ros.bags.frames`, over
``rosbags`` messages). A frame that cannot be used raises :class:`ImageRejected` with a short ``reason``.
"""

from __future__ import annotations

import re

import numpy as np

from ivm_ros.encodings import CHANNELS
from ivm_ros.inputs import InputRejected


class ImageRejected(InputRejected):
    """A frame that cannot be used. ``reason`` is a short stable key for counters."""


def check_image_fields(encoding: str, height: int, width: int, step: int, n_bytes: int, max_pixels: int = 0) -> int:
    """Validates an Image's fields; returns its channel count.

    Raises :class:`ImageRejected` for unknown encodings, zero or oversized dimensions (``max_pixels`` > 0),
    ``step`` shorter than a row, or a data length (``n_bytes``) that does not match ``step * height``.
    """
    if encoding not in CHANNELS:
        raise ImageRejected("encoding", f"unsupported encoding {encoding!r}; supported: {sorted(CHANNELS)}")
    h, w, c = height, width, CHANNELS[encoding]
    if h == 0 or w == 0:
        raise ImageRejected("size", f"zero size {w}x{h}")
    if max_pixels and h * w > max_pixels:
        raise ImageRejected("size", f"{w}x{h} = {h * w} pixels exceeds max_pixels={max_pixels}")
    if step < w * c:
        raise ImageRejected("step", f"step {step} < width*channels {w * c} for {encoding}")
    if n_bytes != step * h:
        raise ImageRejected("data_length", f"{n_bytes} bytes, expected step*height = {step}*{h} = {step * h}")
    return c


def view_rows(flat: np.ndarray, height: int, width: int, step: int, channels: int) -> np.ndarray:
    """Flat uint8 buffer of ``step * height`` bytes -> (H, W, C) view without the row padding."""
    return flat.reshape(height, step)[:, : width * channels].reshape(height, width, channels)


def decode_compressed(data: bytes | memoryview | np.ndarray, fmt: str, max_pixels: int = 0
                      ) -> tuple[np.ndarray, str]:
    """A CompressedImage's ``data`` (``fmt``: its ``format`` string, for messages) -> decoded (H, W, C) uint8
    and its encoding (bgr8 / bgra8 / mono8).

    With ``max_pixels`` > 0 the frame is first checked by :func:`check_compressed_header` (JPEG and PNG only,
    from their headers, before anything is decoded); with 0 any format OpenCV reads is decoded. The decoder's
    own limit, ``OPENCV_IO_MAX_IMAGE_PIXELS``, is read once when OpenCV loads: set it in the process
    environment to bound it too; its refusal is a ``decode`` rejection. Raises :class:`ImageRejected`.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise ImageRejected("data_length", "empty CompressedImage")
    if max_pixels:
        check_compressed_header(buf, max_pixels)
    import cv2  # here, not at module level: the policy node's process must not need OpenCV

    try:
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # e.g. above OPENCV_IO_MAX_IMAGE_PIXELS
        raise ImageRejected("decode", f"decoder refused {buf.size} bytes: {str(exc).strip()[-200:]}") from None
    if arr is None:
        raise ImageRejected("decode", f"cannot decode {buf.size} bytes of format {fmt!r}")
    if arr.dtype != np.uint8:
        raise ImageRejected("encoding", f"decoded {arr.dtype} image; only 8-bit images are supported")
    if max_pixels and arr.shape[0] * arr.shape[1] > max_pixels:
        raise ImageRejected("size", f"{arr.shape[1]}x{arr.shape[0]} exceeds max_pixels={max_pixels}")
    if arr.ndim == 2:
        return arr[..., None], "mono8"
    return arr, {3: "bgr8", 4: "bgra8"}[arr.shape[2]]


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (they carry the image size): 0xC0-0xCF except DHT (0xC4), JPG (0xC8), DAC (0xCC).
JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # TEM, RST0-7: markers without a length field
#: Markers walked before the frame header at most (real files: < 100, even with a large ICC profile split over
#: APP2 segments); bounds the walk to about a millisecond whatever the bytes.
JPEG_MAX_MARKERS = 1000
_FILL = re.compile(rb"\xff+")  # a marker's 0xFF and any fill bytes before its code, skipped in C


def check_compressed_header(data: np.ndarray | bytes | memoryview, max_pixels: int) -> tuple[int, int]:
    """(height, width) of a compressed frame from its header alone (microseconds), or :class:`ImageRejected`.

    JPEG: the segments are walked from SOI to the first start-of-frame marker (any of :data:`JPEG_SOF_MARKERS`)
    over the whole buffer, skipping fill bytes (0xFF runs) and standalone markers (TEM, RST0-7). PNG: the IHDR
    chunk, which must come first. Other formats (BMP, TIFF, WebP ...; OpenCV reads them) are refused, not parsed.
    Reasons: ``format`` neither JPEG nor PNG; ``size_unknown`` the header ends, or reaches SOS / EOI, before it
    states the size, a JPEG height of 0 (set later by DNL), or more than :data:`JPEG_MAX_MARKERS` markers before
    the frame header; ``decode`` a JPEG structure error (no marker where one must be, a segment length < 2, a
    short SOF); ``size`` a zero dimension or more than ``max_pixels`` pixels (0: no limit). Whatever the bytes,
    nothing but ImageRejected is raised.
    """
    mv = memoryview(data).cast("B")
    if mv[:8] == PNG_SIGNATURE:
        h, w = _png_size(mv)
    elif mv[:2] == b"\xff\xd8":
        h, w = _jpeg_size(mv)
    else:
        raise ImageRejected("format", f"not JPEG or PNG (starts {bytes(mv[:8]).hex()}): only JPEG and PNG "
                            "frames are decoded when max_pixels is set")
    if h == 0 or w == 0:
        raise ImageRejected("size", f"zero size {w}x{h} in the header")
    if max_pixels and h * w > max_pixels:
        raise ImageRejected("size", f"{w}x{h} (header) exceeds max_pixels={max_pixels}")
    return h, w


def _png_size(mv: memoryview) -> tuple[int, int]:
    if len(mv) < 24 or mv[12:16] != b"IHDR":
        raise ImageRejected("size_unknown", "PNG without an IHDR chunk first")
    return int.from_bytes(mv[20:24], "big"), int.from_bytes(mv[16:20], "big")


def _jpeg_size(mv: memoryview) -> tuple[int, int]:
    n, i = len(mv), 2
    for _ in range(JPEG_MAX_MARKERS):
        if i >= n:
            raise ImageRejected("size_unknown", f"JPEG header ends after {n} bytes before a frame header (SOF)")
        if mv[i] != 0xFF:
            raise ImageRejected("decode", f"JPEG: byte 0x{mv[i]:02x} at offset {i} where a marker must be")
        i = _FILL.match(mv, i).end()
        if i >= n:
            raise ImageRejected("size_unknown", f"JPEG header ends after {n} bytes in fill bytes")
        marker, i = mv[i], i + 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0x00, 0xD8):
            raise ImageRejected("decode", f"JPEG: marker 0x{marker:02x} at offset {i - 1} inside the header")
        if marker in (0xDA, 0xD9):
            raise ImageRejected("size_unknown", f"JPEG: {'SOS' if marker == 0xDA else 'EOI'} at offset {i - 1} "
                                "before any frame header (SOF)")
        if i + 2 > n:
            raise ImageRejected("size_unknown", f"JPEG header ends after {n} bytes in a segment length")
        length = int.from_bytes(mv[i : i + 2], "big")
        if length < 2 or (marker in JPEG_SOF_MARKERS and length < 8):
            raise ImageRejected("decode", f"JPEG: segment 0x{marker:02x} at offset {i - 2} has length {length}")
        if i + length > n:
            raise ImageRejected("size_unknown", f"JPEG segment 0x{marker:02x} at offset {i - 2} of length "
                                f"{length} runs past the end ({n} bytes)")
        if marker in JPEG_SOF_MARKERS:  # length, precision (1), height (2), width (2), components ...
            h = int.from_bytes(mv[i + 3 : i + 5], "big")
            if h == 0:
                raise ImageRejected("size_unknown", "JPEG height 0: set by a DNL marker after the first scan")
            return h, int.from_bytes(mv[i + 5 : i + 7], "big")
        i += length
    raise ImageRejected("size_unknown", f"JPEG: more than {JPEG_MAX_MARKERS} markers before a frame header (SOF)")
