"""Image <-> array conversions: encodings, step padding, zero-copy input, and every rejection; actions -> Twist,
gripper and array messages."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ivm_ros.encodings import to_rgb
from ivm_ros.ros.conversions import (
    ImageRejected,
    action_to_array,
    action_to_twist,
    array_to_compressed,
    array_to_image,
    compressed_to_array,
    gripper_command,
    image_to_array,
)


@pytest.mark.parametrize("encoding,channels", [("rgb8", 3), ("bgr8", 3), ("rgba8", 4), ("bgra8", 4), ("mono8", 1)])
def test_round_trip(encoding, channels):
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, channels), dtype=np.uint8)
    msg = array_to_image(arr, encoding)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (5, 7, 7 * channels, encoding)
    back, enc = image_to_array(msg)
    assert enc == encoding
    np.testing.assert_array_equal(back, arr)


def test_step_padding_is_stripped_and_input_is_a_view():
    arr = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
    padded = np.zeros((4, 16), np.uint8)
    padded[:, :9] = arr.reshape(4, 9)
    msg = Image(height=4, width=3, encoding="rgb8", step=16, is_bigendian=1)
    msg.data = padded.tobytes()
    view, _ = image_to_array(msg)
    np.testing.assert_array_equal(view, arr)
    assert not view.flags.owndata  # no copy of the message buffer


def test_to_rgb_channel_orders():
    rgb = np.array([[[10, 20, 30]]], np.uint8)
    assert to_rgb(rgb[..., ::-1], "bgr8").tolist() == [[[10, 20, 30]]]
    assert to_rgb(np.dstack([rgb, [[[9]]]]).astype(np.uint8), "rgba8").tolist() == [[[10, 20, 30]]]
    assert to_rgb(np.array([[[7]]], np.uint8), "mono8").tolist() == [[[7, 7, 7]]]


def _msg(h=4, w=4, step=12, enc="rgb8", n=None):
    msg = Image(height=h, width=w, encoding=enc, step=step)
    msg.data = bytes(step * h if n is None else n)
    return msg


@pytest.mark.parametrize(
    "msg,reason,max_pixels",
    [
        (_msg(n=47), "data_length", 0),
        (_msg(step=11, n=44), "step", 0),
        (_msg(h=0, n=0), "size", 0),
        (_msg(w=0, step=0, n=0), "size", 0),
        (_msg(), "size", 15),
        (_msg(enc="yuv422"), "encoding", 0),
        (_msg(enc="32FC1", step=16), "encoding", 0),
    ],
)
def test_rejections_name_their_reason(msg, reason, max_pixels):
    with pytest.raises(ImageRejected) as info:
        image_to_array(msg, max_pixels)
    assert info.value.reason == reason


def test_compressed_round_trip_and_rejections():
    arr = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    back, enc = compressed_to_array(array_to_compressed(arr, "rgb8", fmt="png"))
    assert enc == "bgr8"
    np.testing.assert_array_equal(back[..., ::-1], arr)
    with pytest.raises(ImageRejected, match="decode"):
        compressed_to_array(CompressedImage(format="jpeg", data=b"\xff\xd8garbage"))
    with pytest.raises(ImageRejected, match="data_length"):
        compressed_to_array(CompressedImage(format="jpeg", data=b""))
    big = array_to_compressed(np.zeros((100, 100, 3), np.uint8), "rgb8", fmt="jpeg")
    with pytest.raises(ImageRejected, match="max_pixels"):
        compressed_to_array(big, max_pixels=99 * 100)


def test_array_to_image_refuses_mismatched_encoding():
    with pytest.raises(ValueError):
        array_to_image(np.zeros((2, 2, 3), np.uint8), "mono8")
    with pytest.raises(ValueError):
        array_to_image(np.zeros((2, 2, 3), np.float32), "rgb8")


def test_action_to_twist_scales_position_and_rotation_by_their_own_factors():
    action = np.array([0.5, -0.25, 1.0, 0.4, -0.2, 0.6, -1.0])
    per_second = np.array([0.02, 0.02, 0.02, 0.05, 0.05, 0.05]) * 30.0  # m and rad per unit x the control rate
    twist = action_to_twist(action, per_second, Header(frame_id="world"))
    lin, ang = twist.twist.linear, twist.twist.angular
    assert [lin.x, lin.y, lin.z] == pytest.approx([0.3, -0.15, 0.6])  # 0.02 m x 30 Hz = 0.6 m/s per unit
    assert [ang.x, ang.y, ang.z] == pytest.approx([0.6, -0.3, 0.9])  # 0.05 rad x 30 Hz = 1.5 rad/s per unit
    assert twist.header.frame_id == "world"
    each = action_to_twist(np.ones(7), np.arange(1.0, 7.0), Header())  # every factor reaches its own axis
    t = each.twist
    assert [t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z] == [1, 2, 3, 4, 5, 6]


def test_gripper_and_array_messages_carry_the_action_values():
    action = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, -1.0])
    assert gripper_command(action).data == -1.0
    msg = action_to_array(action)
    assert list(msg.data) == pytest.approx(action.tolist())
    assert msg.layout.dim[0].label == "action: dx,dy,dz,droll,dpitch,dyaw,gripper" and msg.layout.dim[0].size == 7
