"""masking_node in-process: real rclpy nodes over real topics."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from lifecycle_msgs.msg import State
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_system_default,
)
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from support.ros import Probe, PublishSpy, wait_for

from ivm_ros.ros import diagnostics
from ivm_ros.ros.cdr import CdrUnsupported, parse_image
from ivm_ros.ros.conversions import array_to_compressed, array_to_image, image_to_array
from ivm_ros.ros.masking_node import MaskingFrame, MaskingNode

CENTER = "support.predictors:CenterPredictorForTest"


def frame(h: int = 48, w: int = 64, value: int = 100) -> np.ndarray:
    rng = np.random.default_rng(value)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _send_until(probe: Probe, key: str, img: np.ndarray, n: int = 1, encoding: str = "rgb8", timeout: float = 10.0):
    """Publishes ``img`` every 50 ms until ``n`` messages arrived on ``key``."""
    start = len(probe.received[key])

    def poll() -> bool:
        probe.send(img, encoding, stamp_ns=123_000_000_456)
        return len(probe.received[key]) - start >= n

    assert wait_for(poll, timeout, period=0.05), f"no {key} received"
    return probe.received[key][-1]


def _instruct(node: MaskingNode, probe: Probe, text: str) -> None:
    """Publishes the instruction and waits until the node holds it (frames before it pass through unmasked)."""
    probe.instruct(text)
    assert wait_for(lambda: node.stats()["instruction"] == text, 10)


def _masked(probe: Probe, img: np.ndarray, encoding: str, stamp_ns: int, timeout: float = 10.0) -> np.ndarray:
    """Publishes ``img`` until the masked image of this very frame (its ``stamp_ns``) arrives; returns it as an
    array, checking its encoding (alpha dropped, channel order kept)."""

    def mine() -> list:
        return [m for m in probe.received["masked_image"]
                if m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec == stamp_ns]

    assert wait_for(lambda: (probe.send(img, encoding, stamp_ns=stamp_ns), bool(mine()))[1], timeout, 0.05), \
        f"no masked image for the {encoding} frame"
    arr, enc = image_to_array(mine()[-1])
    assert enc == {"rgba8": "rgb8", "bgra8": "bgr8"}.get(encoding, encoding)
    return arr


@pytest.mark.parametrize("raw_cdr", [True, False])
def test_masks_with_instruction_and_copies_header(rig, raw_cdr):
    """Both I/O paths (serialized CDR; rclpy messages) give the same outputs, headers copied."""
    node, probe = rig(raw_cdr=raw_cdr)
    assert node._image_sub.threaded  # the input is served by its own thread, not the executor
    probe.instruct("pick up the red block")
    assert wait_for(lambda: node.stats()["instruction"] == "pick up the red block")
    img = frame()
    out = _send_until(probe, "masked_image", img)
    assert out.header.frame_id == "camera"
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (123, 456)
    arr, enc = image_to_array(out)
    assert enc == "rgb8" and arr.shape == img.shape
    np.testing.assert_array_equal(arr[12:36, 16:48], img[12:36, 16:48])  # kept centre unchanged
    assert (arr[:12] == 255).all() and (arr[:, :16] == 255).all()  # white background
    mask = _send_until(probe, "mask", img)
    assert mask.header.frame_id == "camera" and mask.header.stamp.nanosec == 456
    marr, menc = image_to_array(mask)
    assert menc == "mono8" and marr[24, 32, 0] == 255 and marr[0, 0, 0] == 0
    stats = node.stats()
    assert stats["publish_p50_ms"] > 0 and stats["input_age_p50_ms"] > 0  # stamp 123.000000456 s: long ago


def test_before_instruction_pass_through_then_drop(rig):
    node, probe = rig(before_instruction="pass_through")
    img = frame()
    out = _send_until(probe, "masked_image", img)
    np.testing.assert_array_equal(image_to_array(out)[0], img)
    assert node.stats().get("passed_no_instruction", 0) >= 1
    node.set_parameters([Parameter("before_instruction", value="drop")])
    n = len(probe.received["masked_image"])
    assert wait_for(lambda: (probe.send(img), node.stats().get("dropped_no_instruction", 0) >= 3)[1], 10, 0.05)
    assert len(probe.received["masked_image"]) <= n + 1  # at most one frame was in flight


def test_default_instruction_parameter_is_used(rig):
    node, probe = rig(default_instruction="open the drawer")
    assert node.stats()["instruction"] == "open the drawer"
    arr = image_to_array(_send_until(probe, "masked_image", frame()))[0]
    assert (arr[0, 0] == 255).all()


@pytest.mark.parametrize("mode", ["overlay", "blur", "gray", "highlight", "crop"])
def test_every_mode_through_parameter_update(rig, mode):
    """Each mode set at runtime, checked against what it must compute. The centre predictor keeps rows 12-35 and
    columns 16-47 of the 48x64 frame; no dilation or feathering, so kept pixels are the input and background pixels
    are the mode's background exactly (OpenCV's computation on the CPU)."""
    node, probe = rig()
    _instruct(node, probe, "touch the object")
    res = node.set_parameters([Parameter("mode", value=mode), Parameter("fill_color", value=[0, 0, 255])])
    assert res[0].successful
    img = frame()
    arr = _masked(probe, img, "rgb8", stamp_ns=7_000_000_001)
    keep = np.zeros(img.shape[:2], bool)
    keep[12:36, 16:48] = True
    if mode == "crop":  # crop to the centre box, resized back: the centre region upscaled
        np.testing.assert_array_equal(arr, cv2.resize(img[12:36, 16:48], (64, 48), interpolation=cv2.INTER_LINEAR))
        return
    np.testing.assert_array_equal(arr[keep], img[keep])  # kept pixels untouched
    if mode == "overlay":
        assert (arr[~keep] == [0, 0, 255]).all()
    elif mode == "blur":  # the background is the frame blurred with a 2*int(0.05*48)+1 = 5 px Gaussian
        blurred = cv2.GaussianBlur(img, (5, 5), 0, borderType=cv2.BORDER_REFLECT_101)
        np.testing.assert_array_equal(arr[~keep], blurred[~keep])
        assert (arr[~keep] != img[~keep]).any(axis=1).mean() > 0.9  # and that is not the frame itself
    elif mode == "gray":  # BT.601 grey of the frame's own pixels, in all three channels
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        for c in range(3):
            np.testing.assert_array_equal(arr[..., c][~keep], grey[~keep])
    elif mode == "highlight":  # 30 % of the frame over the fill colour
        expected = 0.3 * img[~keep].astype(float) + 0.7 * np.array([0, 0, 255.0])
        assert np.abs(arr[~keep] - expected).max() <= 1.0


def test_invalid_parameter_values_are_refused_with_reason(rig):
    node, _ = rig()
    bad = [
        [Parameter("mode", value="sparkle")],
        [Parameter("threshold", value=1.5)],
        [Parameter("fill_color", value=[1, 2])],
        [Parameter("before_instruction", value="maybe")],
        [Parameter("model", value="keep_all")],  # only while unconfigured
    ]
    for params in bad:
        result = node.set_parameters(params)[0]
        assert not result.successful and result.reason
    assert node.get_parameter("mode").value == "overlay"


def test_bgr_and_rgba_and_mono_encodings(rig):
    node, probe = rig()
    _instruct(node, probe, "anything")
    img = frame()
    out = _send_until(probe, "masked_image", img, encoding="bgr8")
    arr, enc = image_to_array(out)
    assert enc == "bgr8"
    np.testing.assert_array_equal(arr[24, 32], img[24, 32])
    node.set_parameters([Parameter("fill_color", value=[255, 0, 0])])  # red, given as RGB
    out = _send_until(probe, "masked_image", img, n=2, encoding="bgr8")
    assert (image_to_array(out)[0][0, 0] == [0, 0, 255]).all()  # red in BGR order
    alpha = np.full(img.shape[:2], 7, np.uint8)
    for i, encoding in enumerate(("rgba8", "bgra8")):  # 4 channels in, alpha dropped, the colour channels kept
        arr = _masked(probe, np.dstack([img, alpha]), encoding, stamp_ns=5_000_000_000 + i)
        np.testing.assert_array_equal(arr[12:36, 16:48], img[12:36, 16:48])
        assert (arr[:12] == ([255, 0, 0] if encoding == "rgba8" else [0, 0, 255])).all()  # red in that order
    mono = img[..., :1].copy()
    out = _send_until(probe, "masked_image", mono, encoding="mono8")
    arr, enc = image_to_array(out)
    assert enc == "mono8" and arr[24, 32, 0] == mono[24, 32, 0]


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_the_predictor_sees_each_frame_in_rgb_whatever_its_encoding(rig, encoding):
    """color_keyword (a real predictor that reads colours) keeps the red half of a red | blue frame in every
    channel order: a BGR frame handed over unconverted would make it keep the blue half."""
    node, probe = rig(model="color_keyword")
    _instruct(node, probe, "pick up the red block")
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :24] = (200, 30, 30)  # red
    rgb[:, 24:] = (30, 30, 200)  # blue
    ordered = rgb[..., ::-1] if encoding.startswith("bgr") else rgb
    image = np.dstack([ordered, np.full((32, 48), 9, np.uint8)]) if encoding.endswith("a8") else ordered
    arr = _masked(probe, np.ascontiguousarray(image), encoding, stamp_ns=3_000_000_000)
    np.testing.assert_array_equal(arr[:, :24], ordered[:, :24])  # the red half kept, in the input's order
    assert (arr[:, 24:] == 255).all()  # the blue half filled white


def test_bad_input_is_counted_and_node_keeps_serving(rig):
    node, probe = rig(max_pixels=64 * 48, max_instruction_chars=50)
    probe.instruct("keep the centre")
    assert wait_for(lambda: node.stats()["instruction"] == "keep the centre")
    img = frame()
    bad_msgs = []
    m = probe.send(img)  # a good one to build variants from
    wrong_len = probe.send(img)
    wrong_len.data = wrong_len.data.tobytes()[:-5]
    bad_msgs.append(wrong_len)
    short_step = probe.send(img)
    short_step.step = 10
    short_step.data = bytes(10 * 48)
    bad_msgs.append(short_step)
    zero = probe.send(img)
    zero.height = zero.width = zero.step = 0
    zero.data = b""
    bad_msgs.append(zero)
    huge = probe.send(np.zeros((49, 64, 3), np.uint8))
    bad_msgs.append(huge)
    enc = probe.send(img)
    enc.encoding = "yuv422"
    bad_msgs.append(enc)
    serialized = serialize_message(m)
    bad_msgs.append(serialized[:-100])  # truncated CDR: the data length runs past the end
    lying = bytearray(serialized)
    lying[12:16] = (1 << 31).to_bytes(4, "little")  # a frame_id "2 GB long"
    bad_msgs.append(bytes(lying))
    probe.instruct("   ")
    assert wait_for(lambda: node.stats().get("rejected_instruction_empty", 0) >= 1)
    probe.instruct("x" * 51)
    keys = [
        "rejected_data_length",
        "rejected_step",
        "rejected_size",
        "rejected_encoding",
        "rejected_cdr_truncated",
        "rejected_cdr_string",
        "rejected_instruction_empty",
        "rejected_instruction_too_long",
    ]

    sent = [0]

    def poll() -> bool:  # one message per poll: a depth-1 best-effort subscription keeps only the newest
        probe.image_pub.publish(bad_msgs[sent[0] % len(bad_msgs)])
        sent[0] += 1
        return all(node.stats().get(k, 0) >= 1 for k in keys) and node.stats()["rejected_size"] >= 2

    assert wait_for(poll, 10, 0.05), node.stats()
    assert node.stats()["rejected_size"] >= 2  # zero and too large
    assert node.stats()["instruction"] == "keep the centre"  # bad instructions did not replace it
    before = len(probe.received["masked_image"])
    del m
    _send_until(probe, "masked_image", img)
    assert len(probe.received["masked_image"]) > before


def test_predictor_failure_is_counted_and_node_recovers(rig):
    node, probe = rig(model="support.predictors:FailingPredictorForTest")
    probe.instruct("explode now")
    img = frame()
    assert wait_for(lambda: (probe.send(img), node.stats().get("dropped_error", 0) >= 1)[1], 10, 0.05)
    probe.instruct("be calm")
    _send_until(probe, "masked_image", img)


def test_compressed_input(rig):
    node, probe = rig(image_transport="compressed")
    probe.instruct("anything")
    pub = probe.create_publisher(CompressedImage, "image_raw/compressed", 10)
    img = frame()
    good = array_to_compressed(img, "rgb8", fmt="png")
    good.header.frame_id = "cam_c"
    broken = CompressedImage(format="jpeg", data=b"\xff\xd8not a jpeg")

    sent = [0]

    def poll():  # alternate: a depth-1 subscription and the one-slot mailbox keep only the newest
        pub.publish((broken, good)[sent[0] % 2])
        sent[0] += 1
        return len(probe.received["masked_image"]) > 0 and node.stats().get("rejected_decode", 0) > 0

    assert wait_for(poll, 10, 0.05), node.stats()
    out = probe.received["masked_image"][-1]
    arr, enc = image_to_array(out)
    assert enc == "bgr8" and out.header.frame_id == "cam_c"
    np.testing.assert_array_equal(arr[24, 32], img[24, 32, ::-1])  # PNG is lossless


def test_overlay_only_when_subscribed(rig, monkeypatch):
    node, probe = rig()
    calls = []
    import ivm_ros.ros.masking_node as mn

    real = mn.debug_overlay
    monkeypatch.setattr(mn, "debug_overlay", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    probe.instruct("anything")
    img = frame()
    _send_until(probe, "masked_image", img, n=3)
    assert calls == []
    probe.listen("overlay")
    out = _send_until(probe, "overlay", img)
    assert calls and image_to_array(out)[0].shape == img.shape


def test_mask_is_published_only_when_subscribed(rig):
    node, probe = rig(listen=("masked_image",))
    spy = node._pubs["mask"] = PublishSpy(node._pubs["mask"], "mask")
    _instruct(node, probe, "anything")
    img = frame()
    _send_until(probe, "masked_image", img, n=3)  # frames go out ...
    assert spy.calls == 0 and node.stats()["frames_out"] >= 3  # ... and no mask with them
    probe.listen("mask")
    mask = _send_until(probe, "mask", img)
    assert spy.calls >= 1 and image_to_array(mask)[1] == "mono8"


def test_an_encapsulation_the_cdr_parser_does_not_read_falls_back_to_rclpy(rig):
    node, probe = rig(raw_cdr=True)
    _instruct(node, probe, "anything")
    img = frame()
    msg = array_to_image(img, "rgb8")
    msg.header.frame_id = "cam_fallback"
    msg.header.stamp.sec, msg.header.stamp.nanosec = 42, 7
    other = bytearray(serialize_message(msg))
    other[1] = 0x03  # an encapsulation id parse_image refuses and Fast CDR reads
    with pytest.raises(CdrUnsupported):
        parse_image(bytes(other))
    assert isinstance(MaskingFrame.from_message(bytes(other), 0.0).msg, Image)  # the rclpy path
    unreadable = bytearray(other)
    unreadable[0:2] = b"\x12\x34"  # neither reads it: rejected, counted

    def poll() -> bool:
        probe.image_pub.publish(bytes(other))
        return any(m.header.frame_id == "cam_fallback" for m in probe.received["masked_image"])

    assert wait_for(poll, 10, 0.05), node.stats()
    out = next(m for m in probe.received["masked_image"] if m.header.frame_id == "cam_fallback")
    assert (out.header.stamp.sec, out.header.stamp.nanosec) == (42, 7)
    arr = image_to_array(out)[0]
    np.testing.assert_array_equal(arr[12:36, 16:48], img[12:36, 16:48])
    assert (arr[:12] == 255).all()
    assert wait_for(lambda: (probe.image_pub.publish(bytes(unreadable)),
                             node.stats().get("rejected_cdr_deserialize", 0) >= 1)[1], 10, 0.05), node.stats()


#: Publishers as camera drivers, rosbag play and default-QoS nodes make them (rclpy's own profiles, not ivm_ros's).
PUBLISHER_QOS = {"sensor_data": qos_profile_sensor_data,
                 "reliable": QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
                 "system_default": qos_profile_system_default}


@pytest.mark.parametrize("image_qos", sorted(PUBLISHER_QOS))
def test_each_image_qos_choice_receives_from_a_matching_publisher(rig, image_qos):
    node, probe = rig(image_qos=image_qos, probe_qos=PUBLISHER_QOS[image_qos])
    _instruct(node, probe, "anything")
    _masked(probe, frame(), "rgb8", stamp_ns=11_000_000_000)
    assert node.stats()["frames_in"] >= 1
    (sub,) = probe.get_subscriptions_info_by_topic("/image_raw")  # the node's subscription, as the graph sees it
    expected = ReliabilityPolicy.BEST_EFFORT if image_qos == "sensor_data" else ReliabilityPolicy.RELIABLE
    assert sub.node_name == "masking_node" and sub.qos_profile.reliability == expected
    assert sub.qos_profile.durability == DurabilityPolicy.VOLATILE  # a camera's volatile publisher matches too
    assert not {k: v for k, v in node.stats().items() if k.startswith(("qos_incompatible", "rejected"))}


def test_lifecycle_transitions(rig):
    from support.predictors import ClosingPredictorForTest

    ClosingPredictorForTest.closed = 0
    node, probe = rig(model="support.predictors:ClosingPredictorForTest")
    probe.instruct("anything")
    img = frame()
    _send_until(probe, "masked_image", img)
    node.trigger_deactivate()
    assert node._state_machine.current_state[1] == "inactive"
    wait_for(lambda: False, 0.3)  # let a frame published just before deactivation arrive
    n = len(probe.received["masked_image"])
    for _ in range(5):
        probe.send(img)
    wait_for(lambda: False, 0.5)
    assert len(probe.received["masked_image"]) == n  # inactive: nothing published
    node.trigger_cleanup()
    assert ClosingPredictorForTest.closed == 1 and node.pipeline is None
    # model can change while unconfigured; an unknown one fails configure and leaves the node unconfigured
    assert node.set_parameters([Parameter("model", value="no_such_model")])[0].successful
    node.trigger_configure()
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    node.set_parameters([Parameter("model", value="keep_all")])
    node.trigger_configure()
    node.trigger_activate()
    assert node._state_machine.current_state[1] == "active"
    arr = image_to_array(_send_until(probe, "masked_image", img))[0]
    np.testing.assert_array_equal(arr, img)  # keep_all keeps everything


def _diag_values(probe: Probe, level: bytes, message: str = "", **at_least: float) -> dict[str, str] | None:
    """The values of the newest /diagnostics status with ``level`` whose message contains ``message`` and whose
    named values are >= the given numbers, or None."""
    for array in reversed(probe.diagnostics):
        for s in array.status:
            values = {kv.key: kv.value for kv in s.values}
            if s.level == level and message in s.message and all(
                    values.get(k, "n/a") != "n/a" and float(values[k]) >= v for k, v in at_least.items()):
                return values
    return None


def test_diagnostics_report_rates_latency_and_drops(rig):
    node, probe = rig()
    probe.listen_diagnostics()
    # no instruction yet: a warning (frames pass through unmasked meanwhile)
    assert wait_for(lambda: _diag_values(probe, diagnostics.WARN, "no instruction yet") is not None, 5)
    probe.instruct("anything")
    img = frame()

    def counted() -> bool:
        probe.send(img)
        return _diag_values(probe, diagnostics.OK, "masking", frames_in=5, frames_out=5, input_rate_hz=0.001,
                            output_rate_hz=0.001, latency_p50_ms=0.001) is not None

    assert wait_for(counted, 10, 0.05), probe.diagnostics[-1:]
    values = _diag_values(probe, diagnostics.OK, "masking", frames_in=5, frames_out=5)
    for key in ("model", "device", "input_rate_hz", "output_rate_hz", "latency_p95_ms", "instruction_age_s",
                "frames_in", "frames_out"):
        assert key in values
    assert values["model"] == CENTER and values["device"] == "cpu" and values["instruction"] == "anything"
    assert float(values["input_rate_hz"]) > 0 and float(values["output_rate_hz"]) > 0
    assert float(values["latency_p95_ms"]) >= float(values["latency_p50_ms"]) > 0
    assert 0 <= float(values["instruction_age_s"]) < 60
    assert int(values["frames_out"]) <= int(values["frames_in"])
    # a rejected frame turns the status into a warning that counts it
    bad = array_to_image(img, "rgb8")
    bad.encoding = "yuv422"
    assert wait_for(lambda: (probe.image_pub.publish(bad),
                             _diag_values(probe, diagnostics.WARN, "input(s) rejected",
                                          rejected_encoding=1) is not None)[1], 10, 0.05), probe.diagnostics[-1:]


def test_qos_mismatch_is_reported(rig, ros_context):
    node, probe = rig(image_qos="reliable")
    pub = probe.create_publisher(Image, "image_raw", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    assert wait_for(lambda: node.stats().get("qos_incompatible_reliability", 0) >= 1, 10), node.stats()
    probe.destroy_publisher(pub)


def test_bad_initial_parameter_fails_configure_and_node_stays_up(ros_context):
    node = MaskingNode(
        context=ros_context,
        parameter_overrides=[Parameter("mode", value="sparkle"), Parameter("autostart", value=False)],
    )
    try:
        node.trigger_configure()
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        assert "mode must be one of" in node._last_error
        assert node.set_parameters([Parameter("mode", value="gray")])[0].successful
        node.trigger_configure()
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_INACTIVE
    finally:
        node.on_shutdown(None)
        node.destroy_node()


def test_stamp_ages_under_sim_time_are_measured_on_the_sim_clock(rig, ros_context):
    """A frame stamped with the current sim time has age 0 at arrival (it was -33.9 ms in a sim run: wall time
    in the node subtracted from a sim-time age)."""
    from rclpy.qos import qos_profile_system_default
    from rosgraph_msgs.msg import Clock

    node, probe = rig(use_sim_time=True, default_instruction="lift the block")
    clock_pub = probe.create_publisher(Clock, "/clock", qos_profile_system_default)
    now = Clock()
    now.clock.sec = 10
    assert wait_for(lambda: (clock_pub.publish(now), node.get_clock().now().nanoseconds == 10_000_000_000)[1], 5)
    assert wait_for(lambda: (probe.send(frame(), stamp_ns=10_000_000_000), node.counters.get("frames_out") >= 3)[1],
                    5)
    stats = node.stats()
    assert stats["input_age_p50_ms"] == 0.0 and stats["output_age_p50_ms"] == 0.0  # the sim clock stood still
