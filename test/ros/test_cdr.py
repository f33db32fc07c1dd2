"""Serialized sensor_msgs/Image <-> arrays (ivm_ros.ros.cdr), checked against rclpy's own (de)serialisation."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from ivm_ros.encodings import CHANNELS
from ivm_ros.ros.cdr import MAX_STRING, CdrUnsupported, parse_image, serialize_image
from ivm_ros.ros.conversions import ImageRejected, array_to_image, image_to_array


def _message(encoding: str, h: int, w: int, frame_id: str, pad: int = 0, seed: int = 0) -> Image:
    """An Image with ``pad`` bytes of row padding (step > width * channels) and a known stamp."""
    c = CHANNELS[encoding]
    rows = np.random.default_rng(seed).integers(0, 256, (h, w * c + pad), dtype=np.uint8)
    msg = Image(height=h, width=w, encoding=encoding, step=w * c + pad, is_bigendian=0)
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = -5 if seed % 2 else 1_700_000_000, 999_999_999
    msg.data = rows.tobytes()
    return msg


# frame_id and encoding lengths 0..4 cover every alignment of the fields after them.
CASES = [
    (enc, fid, pad) for enc in sorted(CHANNELS) for fid in ("", "a", "ab", "abc", "abcd", "cámara_☃") for pad in (0, 3)
]


@pytest.mark.parametrize("encoding,frame_id,pad", CASES)
def test_parse_matches_rclpy(encoding, frame_id, pad):
    msg = _message(encoding, 5, 7, frame_id, pad, seed=len(frame_id))
    raw = parse_image(serialize_message(msg))
    assert (raw.sec, raw.nanosec) == (msg.header.stamp.sec, msg.header.stamp.nanosec)
    assert (raw.frame_id, raw.encoding) == (frame_id, encoding)
    assert (raw.height, raw.width, raw.step, raw.is_bigendian) == (5, 7, msg.step, 0)
    expected, _ = image_to_array(msg)
    np.testing.assert_array_equal(raw.to_array(), expected)


@pytest.mark.parametrize(
    "encoding,frame_id", [(e, f) for e in sorted(CHANNELS) for f in ("", "a", "ab", "abc", "xyz0")]
)
def test_serialize_matches_rclpy(encoding, frame_id):
    msg = _message(encoding, 4, 5, frame_id, seed=3)
    arr, _ = image_to_array(msg)
    ours = serialize_image(arr, encoding, msg.header.stamp.sec, msg.header.stamp.nanosec, frame_id)
    back = deserialize_message(ours, Image)
    assert (back.header.stamp.sec, back.header.stamp.nanosec, back.header.frame_id) == (-5, 999_999_999, frame_id)
    assert (back.height, back.width, back.encoding, back.step) == (4, 5, encoding, 5 * CHANNELS[encoding])
    np.testing.assert_array_equal(image_to_array(back)[0], arr)
    # byte-identical to rclpy's serialisation except alignment padding (uninitialised in rclpy's)
    theirs = serialize_message(array_to_image(arr, encoding, msg.header))
    assert len(ours) == len(theirs)
    assert parse_image(ours).to_array().tobytes() == parse_image(theirs).to_array().tobytes()


def test_parse_is_a_view_and_serialize_takes_non_contiguous_arrays():
    arr = np.random.default_rng(1).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    data = serialize_image(arr[..., :3], "rgb8", 1, 2, "cam")  # a strided view
    raw = parse_image(data)
    view = raw.to_array()
    np.testing.assert_array_equal(view, arr[..., :3])
    assert not view.flags.owndata and not view.flags.writeable  # a view of the received bytes
    mono = serialize_image(arr[..., 0], "mono8")  # (H, W) -> mono8
    np.testing.assert_array_equal(parse_image(mono).to_array()[..., 0], arr[..., 0])


def test_big_endian_encapsulation_is_read():
    msg = _message("rgb8", 2, 3, "be")
    le = serialize_message(msg)
    # re-encode the little-endian message's integers big-endian, field by field
    raw = parse_image(le)
    fid, enc = b"be\x00", b"rgb8\x00"
    body = struct.pack(">iI", raw.sec, raw.nanosec) + struct.pack(">I", len(fid)) + fid
    body += b"\x00" * (-len(body) % 4) + struct.pack(">II", 2, 3) + struct.pack(">I", len(enc)) + enc + b"\x01"
    body += b"\x00" * (-len(body) % 4) + struct.pack(">II", raw.step, 18) + raw.data.tobytes()
    be = parse_image(b"\x00\x00\x00\x00" + body)
    assert (be.sec, be.frame_id, be.height, be.width, be.encoding, be.is_bigendian) == (raw.sec, "be", 2, 3, "rgb8", 1)
    np.testing.assert_array_equal(be.to_array(), raw.to_array())


def test_other_encapsulations_are_left_to_rclpy():
    data = bytearray(serialize_message(_message("rgb8", 2, 2, "x")))
    data[1] = 0x07  # XCDR2 little-endian
    with pytest.raises(CdrUnsupported):
        parse_image(bytes(data))


def test_every_truncation_is_rejected_not_crashed():
    data = serialize_message(_message("bgr8", 3, 4, "abc"))
    for n in range(len(data)):
        with pytest.raises(ImageRejected) as info:
            parse_image(data[:n]).to_array()
        assert info.value.reason in ("cdr_truncated", "data_length"), (n, info.value)


def test_lying_lengths_are_rejected_with_reasons():
    msg = _message("rgb8", 2, 2, "ab")
    data = bytearray(serialize_message(msg))
    raw = parse_image(bytes(data))
    data_len_at = len(data) - raw.data.size - 4

    def patched(offset: int, value: int) -> bytes:
        out = bytearray(data)
        out[offset : offset + 4] = struct.pack("<I", value)
        return bytes(out)

    cases = {
        "frame_id longer than the message": (12, 1000, "cdr_truncated"),
        "frame_id absurdly long": (12, MAX_STRING + 1, "cdr_string"),
        "data longer than the message": (data_len_at, raw.data.size + 1, "cdr_truncated"),
        "data of 2^32-1 bytes": (data_len_at, 0xFFFFFFFF, "cdr_truncated"),
        "data shorter than step*height": (data_len_at, raw.data.size - 1, "data_length"),
    }
    for name, (offset, value, reason) in cases.items():
        with pytest.raises(ImageRejected) as info:
            parse_image(patched(offset, value)).to_array()
        assert info.value.reason == reason, name
    with pytest.raises(ImageRejected, match="cdr_truncated"):
        parse_image(b"\x00\x01")


def test_fuzzed_bytes_never_raise_anything_else():
    rng = np.random.default_rng(7)
    good = serialize_message(_message("mono8", 3, 5, "cam"))
    for _ in range(2000):
        data = bytearray(good)
        for i in rng.integers(4, len(data), rng.integers(1, 6)):
            data[i] = rng.integers(0, 256)
        data = data[: rng.integers(0, len(data) + 1)] if rng.random() < 0.3 else data
        try:
            parse_image(bytes(data)).to_array(max_pixels=1000)
        except (ImageRejected, CdrUnsupported):
            pass
