"""Where ``cv_bridge`` is importable (a ROS install), it and this package's conversions agree on every supported
encoding, both ways, with odd widths and padded rows; and on compressed frames. Skipped where it is not (CI, the
PyPI-wheel setup): ROS 2's cv_bridge is not on PyPI. The package's own conversions stay the default: a zero-copy
view into the message (or the CDR buffer), NumPy 2, no ROS install needed."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import Image

from ivm_ros.encodings import CHANNELS
from ivm_ros.ros.conversions import array_to_compressed, array_to_image, compressed_to_array, image_to_array

cv_bridge = pytest.importorskip("cv_bridge")

SHAPES = [(7, 13), (48, 65), (1, 1)]  # odd widths: rows not a multiple of 4 bytes


def _padded(arr: np.ndarray, encoding: str, pad: int) -> Image:
    """An Image whose rows carry ``pad`` bytes of padding (step > width * channels), as some drivers send."""
    h, w = arr.shape[:2]
    row = arr.reshape(h, -1)
    padded = np.concatenate([row, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return Image(height=h, width=w, encoding=encoding, step=row.shape[1] + pad, data=padded.tobytes())


@pytest.mark.parametrize("encoding", sorted(CHANNELS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_decoding_agrees_with_cv_bridge(encoding, shape):
    bridge = cv_bridge.CvBridge()
    c = CHANNELS[encoding]
    arr = np.random.default_rng(sum(shape) + c).integers(0, 256, (*shape, c), dtype=np.uint8)
    for msg in (array_to_image(arr, encoding), _padded(arr, encoding, 3)):
        ours, enc = image_to_array(msg)
        theirs = bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough")
        assert enc == encoding
        np.testing.assert_array_equal(ours.reshape(theirs.shape), theirs)


@pytest.mark.parametrize("encoding", sorted(CHANNELS))
def test_encoding_agrees_with_cv_bridge(encoding):
    bridge = cv_bridge.CvBridge()
    c = CHANNELS[encoding]
    arr = np.random.default_rng(c).integers(0, 256, (9, 11, c), dtype=np.uint8)
    theirs = bridge.cv2_to_imgmsg(arr if c > 1 else arr[..., 0], encoding=encoding)
    ours = array_to_image(arr, encoding)
    assert (theirs.height, theirs.width, theirs.step, theirs.encoding) == (ours.height, ours.width, ours.step,
                                                                           ours.encoding)
    assert bytes(theirs.data) == bytes(ours.data)
    np.testing.assert_array_equal(image_to_array(theirs)[0], arr)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed_frames_decode_alike(fmt):
    bridge = cv_bridge.CvBridge()
    arr = np.random.default_rng(5).integers(0, 256, (24, 31, 3), dtype=np.uint8)
    msg = array_to_compressed(arr, "bgr8", fmt=fmt)
    ours, enc = compressed_to_array(msg)
    theirs = bridge.compressed_imgmsg_to_cv2(msg, desired_encoding="passthrough")
    assert enc == "bgr8"
    np.testing.assert_array_equal(ours, theirs)
