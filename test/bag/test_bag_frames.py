"""Bag frames are decoded by the same checks as the masking node's (ivm_ros.image_payload): the rosbags
message objects go through the node's rejections, including the header size check and the decoder's refusal."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from ivm_ros.bags.frames import compressed_to_array, image_to_array
from ivm_ros.image_payload import ImageRejected


def _jpeg(h: int, w: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 90, np.uint8))
    assert ok
    return buf.tobytes()


def test_compressed_frames_decode_and_oversized_headers_are_refused_before_decoding() -> None:
    arr, enc = compressed_to_array(SimpleNamespace(data=_jpeg(40, 60), format="jpeg"), max_pixels=40 * 60)
    assert arr.shape == (40, 60, 3) and enc == "bgr8"
    with pytest.raises(ImageRejected) as err:
        compressed_to_array(SimpleNamespace(data=_jpeg(40, 60), format="jpeg"), max_pixels=40 * 60 - 1)
    assert err.value.reason == "size" and "(header)" in err.value.detail
    with pytest.raises(ImageRejected) as err:
        compressed_to_array(SimpleNamespace(data=b"\xff\xd8garbage", format="jpeg"), max_pixels=0)
    assert err.value.reason == "decode"


def test_raw_frames_share_the_nodes_field_checks() -> None:
    msg = SimpleNamespace(encoding="rgb8", height=2, width=3, step=10, data=bytes(20))
    arr, enc = image_to_array(msg)
    assert arr.shape == (2, 3, 3) and enc == "rgb8"
    with pytest.raises(ImageRejected) as err:
        image_to_array(SimpleNamespace(encoding="rgb8", height=2, width=3, step=10, data=bytes(19)))
    assert err.value.reason == "data_length"
    with pytest.raises(ImageRejected) as err:
        image_to_array(SimpleNamespace(encoding="32FC1", height=2, width=3, step=12, data=bytes(24)))
    assert err.value.reason == "encoding"
