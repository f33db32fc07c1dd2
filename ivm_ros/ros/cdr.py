"""sensor_msgs/Image <-> serialized CDR bytes, without rclpy's message conversion.

rclpy turns a received 640x480 rgb8 Image into a Python message through two full copies of the pixels
(CDR -> C struct -> ``bytes`` -> ``array.array``) and back through three on publish; with a subscription
created with ``raw=True`` and :meth:`Publisher.publish` given ``bytes``, this module does the work instead:
:func:`parse_image` is a zero-copy view of the pixels in the received bytes, and :func:`serialize_image`
copies the pixels once.

Layout (XCDR1, the encoding Fast DDS uses for ROS 2 types): a 4-byte encapsulation header (``00 01``
little-endian, ``00 00`` big-endian, two option bytes), then the fields, each aligned to its own size
relative to the end of that header: stamp sec int32, nanosec uint32, frame_id string (uint32 length
including the NUL, then the bytes), height uint32, width uint32, encoding string, is_bigendian uint8,
step uint32, data (uint32 length, then the bytes). Trailing bytes after the data are ignored, as Fast CDR
does.
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np

from ivm_ros.ros.conversions import ImageRejected, check_image_fields, view_rows

#: Encapsulation identifiers (first two bytes) -> (uint32, stamp) structs in that byte order.
_STRUCTS = {
    ident: (struct.Struct(order + "I"), struct.Struct(order + "iI"))
    for ident, order in ((b"\x00\x01", "<"), (b"\x00\x00", ">"))
}
_LE_HEADER = b"\x00\x01\x00\x00"
#: A sanity bound on header strings (frame_id, encoding): longer ones are rejected, not allocated.
MAX_STRING = 1 << 16


@dataclasses.dataclass(frozen=True)
class RawImage:
    """An Image parsed from CDR. ``data`` is a flat uint8 view into the serialized bytes (no copy)."""

    sec: int
    nanosec: int
    frame_id: str
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray

    def to_array(self, max_pixels: int = 0) -> np.ndarray:
        """Zero-copy (H, W, C) uint8 view with the row padding stripped; validated like ``image_to_array``."""
        c = check_image_fields(self.encoding, self.height, self.width, self.step, self.data.size, max_pixels)
        return view_rows(self.data, self.height, self.width, self.step, c)


class CdrUnsupported(Exception):
    """The bytes use an encapsulation this parser does not read (the caller may fall back to rclpy)."""


def parse_image(buf: bytes | bytearray | memoryview) -> RawImage:
    """Parses serialized sensor_msgs/Image bytes.

    Raises :class:`ImageRejected` with reason ``cdr_truncated`` when a field or a length runs past the end
    (a truncated message or a lying length) and ``cdr_string`` for an over-long header string;
    :class:`CdrUnsupported` for an encapsulation other than plain CDR (XCDR1) in either byte order.
    """
    n = len(buf)
    if n < 4:
        raise ImageRejected("cdr_truncated", f"{n} bytes: shorter than the CDR encapsulation header")
    structs = _STRUCTS.get(bytes(buf[:2]))
    if structs is None:
        raise CdrUnsupported(f"encapsulation {bytes(buf[:2]).hex()} is not plain CDR")
    u32, stamp = structs
    if n < 12:
        raise ImageRejected("cdr_truncated", f"{n} bytes: no room for the header stamp")
    sec, nanosec = stamp.unpack_from(buf, 4)
    frame_id, pos = _string(buf, 12, n, u32, "frame_id")
    height, pos = _uint32(buf, pos, n, u32, "height")
    width, pos = _uint32(buf, pos, n, u32, "width")
    encoding, pos = _string(buf, pos, n, u32, "encoding")
    if pos + 1 > n:
        raise ImageRejected("cdr_truncated", f"is_bigendian at byte {pos} past the end ({n} bytes)")
    is_bigendian = buf[pos]
    step, pos = _uint32(buf, pos + 1, n, u32, "step")
    size, pos = _uint32(buf, pos, n, u32, "data length")
    if pos + size > n:
        raise ImageRejected("cdr_truncated", f"data of {size} bytes at byte {pos} runs past {n} (lying length?)")
    data = np.frombuffer(buf, dtype=np.uint8, count=size, offset=pos)
    return RawImage(sec, nanosec, frame_id, height, width, encoding, is_bigendian, step, data)


def _uint32(buf: bytes | bytearray | memoryview, pos: int, n: int, u32: struct.Struct, name: str) -> tuple[int, int]:
    """The uint32 at ``pos`` aligned to 4 (relative to the end of the 4-byte header) and the position after it."""
    pos += -pos % 4  # the header is 4 bytes, so alignment relative to it is alignment of the absolute offset
    if pos + 4 > n:
        raise ImageRejected("cdr_truncated", f"{name} at byte {pos} past the end ({n} bytes)")
    return u32.unpack_from(buf, pos)[0], pos + 4


def _string(buf: bytes | bytearray | memoryview, pos: int, n: int, u32: struct.Struct, name: str) -> tuple[str, int]:
    """The CDR string at ``pos`` (uint32 length including the NUL, then the bytes) and the position after it."""
    length, pos = _uint32(buf, pos, n, u32, f"{name} length")
    if length > MAX_STRING:
        raise ImageRejected("cdr_string", f"{name} of {length} bytes > {MAX_STRING}")
    if pos + length > n:
        raise ImageRejected("cdr_truncated", f"{name} of {length} bytes at byte {pos} runs past {n}")
    raw = bytes(buf[pos : pos + length])
    return (raw[:-1] if raw.endswith(b"\x00") else raw).decode("utf-8", "replace"), pos + length


def serialize_image(arr: np.ndarray, encoding: str, sec: int = 0, nanosec: int = 0, frame_id: str = "") -> bytes:
    """(H, W, C) or (H, W) uint8 -> serialized little-endian sensor_msgs/Image with a tight ``step``.

    What ``serialize_message(array_to_image(arr, encoding, header))`` returns, with one copy of the pixels;
    the result can be given to ``Publisher.publish``. Non-contiguous arrays are copied contiguous first.
    """
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8, got {arr.dtype}")
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    parts = [_LE_HEADER, struct.pack("<iI", sec, nanosec)]
    pos = 8  # bytes after the encapsulation header

    def string(text: str) -> None:
        nonlocal pos
        raw = text.encode() + b"\x00"
        parts.append(struct.pack("<I", len(raw)) + raw)
        pos += 4 + len(raw)

    def pad(align: int) -> None:
        nonlocal pos
        extra = -pos % align
        if extra:
            parts.append(b"\x00" * extra)
            pos += extra

    string(frame_id)
    pad(4)
    parts.append(struct.pack("<II", h, w))
    pos += 8
    string(encoding)
    parts.append(b"\x00")  # is_bigendian
    pos += 1
    pad(4)
    parts.append(struct.pack("<II", w * c, arr.nbytes))
    parts.append(np.ascontiguousarray(arr).data)
    return b"".join(parts)
