"""Compressed frames larger than ``max_pixels``, or whose size their header does not state, are refused from the
header before anything is decoded (issue 15, item 4): the JPEG/PNG header parser on crafted files, the decoder's
own limit (OPENCV_IO_MAX_IMAGE_PIXELS), and masking_node over real topics with its memory measured."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import threading
import time

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage
from support.ros import Probe, Spinner, wait_for

from ivm_ros.ros.conversions import (
    JPEG_SOF_MARKERS,
    ImageRejected,
    check_compressed_header,
    compressed_to_array,
)
from ivm_ros.ros.masking_node import MaskingNode

LIMIT = 3840 * 2160  # masking_node's default max_pixels
SOI = b"\xff\xd8"


def _image(h: int = 48, w: int = 64, channels: int = 3, seed: int = 0) -> np.ndarray:
    shape = (h, w) if channels == 1 else (h, w, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _jpeg(h: int = 48, w: int = 64, channels: int = 3, progressive: bool = False) -> bytes:
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else []
    return cv2.imencode(".jpg", _image(h, w, channels), params)[1].tobytes()


def _png(h: int = 48, w: int = 64, channels: int = 3) -> bytes:
    return cv2.imencode(".png", _image(h, w, channels))[1].tobytes()


def _segments(jpeg: bytes) -> list[tuple[int, int, int]]:
    """(offset of the 0xFF, marker, length) of a well-formed encoder output's segments up to SOS (test side)."""
    out, i = [], 2
    while True:
        marker, length = jpeg[i + 1], int.from_bytes(jpeg[i + 2 : i + 4], "big")
        out.append((i, marker, length))
        if marker == 0xDA:
            return out
        i += 2 + length


def _sof(jpeg: bytes) -> tuple[int, int, int]:
    return next(s for s in _segments(jpeg) if s[1] in (0xC0, 0xC2))


def _with_size(jpeg: bytes, h: int, w: int) -> bytes:
    """The JPEG with its frame header (SOF) claiming ``h`` x ``w``."""
    i = _sof(jpeg)[0]
    b = bytearray(jpeg)
    b[i + 5 : i + 7], b[i + 7 : i + 9] = h.to_bytes(2, "big"), w.to_bytes(2, "big")
    return bytes(b)


def _com(payload_len: int) -> bytes:
    return b"\xff\xfe" + (payload_len + 2).to_bytes(2, "big") + bytes(payload_len)


def _padded(jpeg: bytes, n_bytes: int = 128 * 1024) -> bytes:
    """The JPEG with ``n_bytes`` or more of COM padding segments between SOI and the first segment."""
    seg = _com(65533)
    return SOI + seg * (n_bytes // len(seg) + 1) + jpeg[2:]


def _without_sof(jpeg: bytes) -> bytes:
    i, _, length = _sof(jpeg)
    return jpeg[:i] + jpeg[i + 2 + length :]


def _reason(data: bytes, max_pixels: int = LIMIT) -> str:
    with pytest.raises(ImageRejected) as info:
        check_compressed_header(data, max_pixels)
    return info.value.reason


def _msg(data: bytes, fmt: str = "jpeg") -> CompressedImage:
    return CompressedImage(format=fmt, data=data)


def _refuse_decoding(*_a, **_k):
    raise AssertionError("cv2.imdecode called")


@pytest.fixture
def no_decode(monkeypatch):
    """cv2.imdecode fails the test if called: what is refused must be refused before any decoding."""
    monkeypatch.setattr(cv2, "imdecode", _refuse_decoding)


# ------------------------------------------------------------------------------------------- the parser


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_sizes_and_outputs_as_before(channels, progressive):
    data = _jpeg(48, 64, channels, progressive)
    assert _sof(data)[1] == (0xC2 if progressive else 0xC0)  # SOF2 for progressive
    assert check_compressed_header(data, LIMIT) == (48, 64)
    arr, enc = compressed_to_array(_msg(data), LIMIT)
    want = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert enc == ("mono8" if channels == 1 else "bgr8")
    np.testing.assert_array_equal(arr.reshape(want.shape), want)
    np.testing.assert_array_equal(compressed_to_array(_msg(data), 0)[0], arr)


@pytest.mark.parametrize("channels,encoding", [(1, "mono8"), (3, "bgr8"), (4, "bgra8")])
def test_png_sizes_and_outputs_as_before(channels, encoding):
    data = _png(30, 20, channels)
    assert check_compressed_header(data, LIMIT) == (30, 20)
    arr, enc = compressed_to_array(_msg(data, "png"), LIMIT)
    assert enc == encoding
    np.testing.assert_array_equal(arr.reshape(_image(30, 20, channels).shape), _image(30, 20, channels))


def test_padding_beyond_64_kb_before_the_frame_header_is_walked(no_decode):
    claims_huge = _padded(_with_size(_jpeg(), 16000, 16000))
    assert _sof(claims_huge)[0] > 128 * 1024
    assert check_compressed_header(claims_huge, 0) == (16000, 16000)
    assert _reason(claims_huge) == "size"
    with pytest.raises(ImageRejected, match="16000x16000.*max_pixels") as info:
        compressed_to_array(_msg(claims_huge), LIMIT)  # no_decode: refused from the header alone
    assert info.value.reason == "size"


def test_padded_normal_jpeg_still_decodes():
    data = _jpeg()
    padded = _padded(data)
    assert check_compressed_header(padded, LIMIT) == (48, 64)
    np.testing.assert_array_equal(compressed_to_array(_msg(padded), LIMIT)[0], compressed_to_array(_msg(data))[0])


def test_oversized_png_is_refused_before_decoding(no_decode):
    b = bytearray(_png())
    b[16:24] = (16000).to_bytes(4, "big") * 2  # IHDR width, height
    with pytest.raises(ImageRejected) as info:
        compressed_to_array(_msg(bytes(b), "png"), LIMIT)
    assert info.value.reason == "size"


@pytest.mark.parametrize("marker", range(0xC0, 0xD0))
def test_every_sof_marker_states_the_size_and_dht_jpg_dac_do_not(marker):
    i = _sof(_jpeg())[0]
    b = bytearray(_jpeg())
    b[i + 1] = marker
    if marker in (0xC4, 0xC8, 0xCC):
        assert marker not in JPEG_SOF_MARKERS
        assert _reason(bytes(b)) == "size_unknown"  # walked over as an ordinary segment, then SOS
    else:
        assert check_compressed_header(bytes(b), LIMIT) == (48, 64)


def test_a_dht_jpg_or_dac_segment_that_looks_like_a_frame_header_is_skipped():
    fake = b"\x08" + (16000).to_bytes(2, "big") * 2 + b"\x03" + bytes(9)  # SOF body claiming 16000x16000
    for marker in (0xC4, 0xC8, 0xCC):
        data = SOI + bytes([0xFF, marker]) + (len(fake) + 2).to_bytes(2, "big") + fake + _jpeg()[2:]
        assert check_compressed_header(data, LIMIT) == (48, 64)


def test_fill_bytes_and_standalone_markers():
    data = _jpeg()
    i = _sof(data)[0]
    filled = data[:i] + b"\xff" * 5 + data[i:]  # fill bytes before the SOF marker's code
    assert check_compressed_header(filled, LIMIT) == (48, 64)
    np.testing.assert_array_equal(compressed_to_array(_msg(filled), LIMIT)[0], compressed_to_array(_msg(data))[0])
    standalone = SOI + b"\xff\x01" + b"".join(bytes([0xFF, m]) for m in range(0xD0, 0xD8)) + data[2:]
    assert check_compressed_header(standalone, LIMIT) == (48, 64)
    long_fill = data[:i] + b"\xff" * 1_000_000 + data[i:]  # skipped in C, not byte by byte
    start = time.perf_counter()
    assert check_compressed_header(long_fill, LIMIT) == (48, 64)
    assert time.perf_counter() - start < 0.5


def test_truncated_anywhere_in_the_header_is_a_clean_rejection():
    data = _jpeg()
    i, _, length = _sof(data)
    sof_end = i + 2 + length
    for n in range(1, sof_end):  # every prefix that ends before the frame header is complete
        reason = _reason(data[:n])
        assert reason == ("format" if n < 2 else "size_unknown"), n
    assert check_compressed_header(data[:sof_end], LIMIT) == (48, 64)
    dqt = next(s for s in _segments(data) if s[1] == 0xDB)
    assert "runs past the end" in str(pytest.raises(ImageRejected, check_compressed_header, data[: dqt[0] + 9],
                                                    LIMIT).value)


def test_sos_or_eoi_before_the_frame_header_is_size_unknown(no_decode):
    for data in (_without_sof(_jpeg()), _padded(_without_sof(_jpeg())), SOI + b"\xff\xd9"):
        assert _reason(data) == "size_unknown"
        with pytest.raises(ImageRejected) as info:
            compressed_to_array(_msg(data), LIMIT)
        assert info.value.reason == "size_unknown"


def test_lying_segment_lengths():
    data = _jpeg()
    app0 = _segments(data)[0][0]

    def with_length(n: int) -> bytes:
        return data[: app0 + 2] + n.to_bytes(2, "big") + data[app0 + 4 :]

    assert _reason(with_length(0xFFFF)) == "size_unknown"  # runs past the end of the buffer
    assert _reason(with_length(1)) == "decode"  # shorter than its own length field
    assert _reason(with_length(_segments(data)[0][2] + 1)) == "decode"  # lands inside the next segment
    i = _sof(data)[0]
    short_sof = bytearray(data)
    short_sof[i + 2 : i + 4] = (6).to_bytes(2, "big")
    assert _reason(bytes(short_sof)) == "decode"


def test_zero_dimensions():
    assert _reason(_with_size(_jpeg(), 0, 64)) == "size_unknown"  # height set later by DNL
    assert _reason(_with_size(_jpeg(), 48, 0)) == "size"


def test_many_tiny_segments_are_bounded():
    data = SOI + _com(0) * 40_000 + _jpeg()[2:]
    start = time.perf_counter()
    assert _reason(data) == "size_unknown"
    assert time.perf_counter() - start < 0.5


def test_broken_structure_and_existing_reasons_are_kept():
    assert _reason(b"\xff\xd8garbage") == "decode"  # as cv2.imdecode's refusal gave before
    for max_pixels in (0, LIMIT):
        with pytest.raises(ImageRejected) as info:
            compressed_to_array(_msg(b"\xff\xd8garbage"), max_pixels)
        assert info.value.reason == "decode"
        with pytest.raises(ImageRejected) as info:
            compressed_to_array(_msg(b""), max_pixels)
        assert info.value.reason == "data_length"
    assert _reason(SOI + b"\xff\xd8" + _jpeg()[2:]) == "decode"  # a second SOI


def test_png_header_rejections():
    data = _png()
    assert _reason(data[:23]) == "size_unknown"
    not_first = bytearray(data)
    not_first[12:16] = b"tEXt"
    assert _reason(bytes(not_first)) == "size_unknown"
    zero = bytearray(data)
    zero[16:20] = bytes(4)
    assert _reason(bytes(zero)) == "size"


@pytest.mark.parametrize("ext", [".bmp", ".tiff", ".webp"])
def test_other_formats_are_refused_with_a_limit_and_decoded_without(ext, monkeypatch):
    if not cv2.haveImageWriter("x" + ext):
        pytest.skip(f"this OpenCV cannot write {ext}")
    data = cv2.imencode(ext, _image(8, 8))[1].tobytes()
    assert compressed_to_array(_msg(data, ext[1:]), 0)[0].shape[:2] == (8, 8)  # max_pixels 0: as before
    monkeypatch.setattr(cv2, "imdecode", _refuse_decoding)
    assert _reason(data) == "format"
    with pytest.raises(ImageRejected) as info:
        compressed_to_array(_msg(data, ext[1:]), LIMIT)
    assert info.value.reason == "format"


def test_random_corruption_never_raises_anything_but_image_rejected():
    rng = np.random.default_rng(15)
    seeds = [_jpeg(), _jpeg(progressive=True), _padded(_jpeg(), 70_000), _png()]
    for _ in range(3000):
        base = bytearray(seeds[rng.integers(len(seeds))])
        head = min(len(base), 700)
        for _ in range(rng.integers(1, 6)):
            pos = int(rng.integers(0, head))
            op = rng.integers(3)
            if op == 0:
                base[pos] = int(rng.integers(256))
            elif op == 1:
                base[pos:pos] = bytes([0xFF, int(rng.integers(256))])
            else:
                del base[pos : pos + int(rng.integers(1, 8))]
        if rng.random() < 0.3:
            base = base[: rng.integers(0, len(base) + 1)]
        try:
            h, w = check_compressed_header(bytes(base), LIMIT)
        except ImageRejected as exc:
            assert exc.reason in ("format", "size_unknown", "decode", "size")
        else:
            assert 0 < h * w <= LIMIT


# -------------------------------------------------------------------------------- the decoder's own limit

_DECODER_LIMIT_SCRIPT = textwrap.dedent("""
    import os, sys
    if sys.argv[1] == "before":
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = "100"
    import cv2
    import numpy as np
    if sys.argv[1] == "after":
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = "100"
    from ivm_ros.ros.conversions import ImageRejected, array_to_compressed, compressed_to_array
    msg = array_to_compressed(np.zeros((20, 20, 3), np.uint8), "bgr8", fmt="png")
    try:
        print("decoded", compressed_to_array(msg, 0)[0].shape[:2])
    except ImageRejected as exc:
        print("rejected", exc.reason, exc)
""")


@pytest.mark.parametrize("when,expected", [("before", "rejected decode"), ("after", "decoded (20, 20)")])
def test_opencv_reads_its_pixel_limit_once_at_load(when, expected):
    """OPENCV_IO_MAX_IMAGE_PIXELS bounds the decoder only when set before OpenCV loads (so masking_node, whose
    imports load OpenCV, cannot set it from max_pixels); its refusal (cv2.error) is a counted rejection."""
    out = subprocess.run([sys.executable, "-c", _DECODER_LIMIT_SCRIPT, when], capture_output=True, text=True,
                         timeout=60, env={k: v for k, v in os.environ.items() if k != "OPENCV_IO_MAX_IMAGE_PIXELS"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(expected), out.stdout


# ------------------------------------------------------------------------------------ over real topics


class RssSampler:
    """Peak resident memory of this process while running: /proc/self/statm every 2 ms, and ru_maxrss."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.baseline = self.peak = self._rss()
        self.maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def growth_mb(self) -> float:
        self._stop.set()
        self._thread.join()
        maxrss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.maxrss0
        return max(self.peak - self.baseline, maxrss_growth) / 2**20


def test_masking_node_refuses_crafted_frames_between_good_ones(ros_context):
    node = MaskingNode(context=ros_context, parameter_overrides=[
        Parameter("model", value="keep_all"), Parameter("image_transport", value="compressed"),
        Parameter("image_qos_depth", value=5), Parameter("dilate_ratio", value=0.0),
        Parameter("feather_ratio", value=0.0)])
    probe = Probe(ros_context)
    probe.listen("masked_image")
    pub = probe.create_publisher(CompressedImage, "image_raw/compressed", 10)
    spinner = Spinner(ros_context, node, probe)
    try:
        assert wait_for(lambda: node._state_machine.current_state[1] == "active", 10)
        good = _jpeg()

        def send(data: bytes, sec: int) -> None:
            msg = _msg(data)
            msg.header.stamp.sec, msg.header.frame_id = sec, "camera"
            pub.publish(msg)

        answered = lambda: {m.header.stamp.sec for m in probe.received["masked_image"]}  # noqa: E731
        assert wait_for(lambda: (send(good, 1), 1 in answered())[1], 10, 0.05), node.stats()  # warm
        oversized = _padded(_with_size(good, 16000, 16000))  # 16000x16000 claimed after 128 KB of padding
        unknown = _padded(_without_sof(good))  # SOS before any SOF, after 128 KB of padding
        sampler = RssSampler()
        n, bad_at = 30, {10: oversized, 20: unknown}
        for k in range(n):
            send(good, 1000 + k)
            if k in bad_at:
                send(bad_at[k], 2000 + k)
            time.sleep(0.033)
        assert wait_for(lambda: 1000 + n - 1 in answered(), 10), (sorted(answered()), node.stats())
        growth = sampler.growth_mb()
        stats = node.stats()
        got = sorted(s - 1000 for s in answered() if 1000 <= s < 2000)
        print(f"good frames answered {len(got)}/{n}: {got}; RSS growth {growth:.1f} MB; "
              f"dropped_busy {stats.get('dropped_busy', 0)}")
        assert stats.get("rejected_size", 0) == 1 and stats.get("rejected_size_unknown", 0) == 1, stats
        assert not any(s >= 2000 for s in answered())
        assert growth < 100, f"peak RSS grew {growth:.0f} MB"
        for k in bad_at:  # the good frames around each bad one are answered
            assert set(got) & {k - 2, k - 1, k} and set(got) & {k + 1, k + 2, k + 3}, got
        assert len(got) >= n - 4, got
    finally:
        spinner.close()
        node.on_shutdown(None)
        node.destroy_node()
        probe.destroy_node()
