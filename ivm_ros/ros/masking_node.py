"""masking_node: camera frames + instruction -> masked observation (a lifecycle node).

Topics (relative, remappable): in ``image_raw`` (sensor_msgs/Image, or ``image_raw/compressed`` with
``image_transport:=compressed``) and ``instruction`` (std_msgs/String, reliable + transient-local); out
``~/masked_image``, ``~/mask`` (mono8, 0..255 as applied), ``~/overlay`` (debug view, computed only while
someone subscribes) and ``/diagnostics``. Every output copies the input header.

Lifecycle: configure loads the predictor and creates publishers; activate subscribes and starts the worker;
deactivate unsubscribes and stops it; cleanup frees the predictor. With ``autostart`` (default) the node
configures and activates itself, so ``ros2 run`` works without a lifecycle manager.

Callbacks only validate and hand the newest frame to a one-slot mailbox; one worker thread runs the
predictor and the masking, so a slow model drops frames (counted) instead of queueing them.

With ``raw_cdr`` (default) Images are taken and published as serialized CDR bytes (:mod:`ivm_ros.ros.cdr`):
the input is a zero-copy view of the received bytes and each output is serialized with one copy, instead of
rclpy's message conversion (two to three copies of the pixels each way). Other nodes see the same messages.

Masks at camera rate: with ``predictor_rate`` > 0 (Hz, paced by the frames' header stamps) or ``predictor_every``
> 0 the predictor runs only that often and the frames between get the newest mask carried by optical flow
(``propagation:=flow``) or repeated (``hold``); a carried mask failing its confidence check gets
``propagation_fallback`` (``repredict`` or ``whole_frame``); a new instruction is always predicted at once. Frames
of each kind are counted (``mask_predicted`` ... ``mask_whole_frame`` on /diagnostics); see
:mod:`ivm_ros.masking.propagate`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import rclpy
import torch
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import ROSClock
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String

from ivm_ros.inputs import InputRejected, check_instruction
from ivm_ros.masking import CROP_MODES, MODES, MaskingConfig, debug_overlay
from ivm_ros.masking.propagate import FALLBACKS, PropagationSettings
from ivm_ros.masking_meters import MaskingMeters
from ivm_ros.models.registry import PREDICTORS, load_predictor
from ivm_ros.pipeline import FAIL_SAFE_ACTIONS, FailSafeSettings, MaskingPipeline, MaskingResult
from ivm_ros.ros import diagnostics, qos
from ivm_ros.ros.cdr import CdrUnsupported, RawImage, parse_image, serialize_image
from ivm_ros.ros.conversions import (
    ImageRejected,
    array_to_image,
    check_compressed_header,
    check_image_fields,
    compressed_to_array,
    image_to_array,
)
from ivm_ros.ros.dedicated import DedicatedSubscription
from ivm_ros.ros.instruction import subscribe_instruction
from ivm_ros.ros.params import Param, declare, declare_table
from ivm_ros.ros.worker_node import WorkerLifecycleNode, spin_node
from ivm_ros.runtime import tune_malloc

DEFAULT_MODEL = "lite"
BEFORE_INSTRUCTION = ("pass_through", "drop")
_DEFAULTS = MaskingConfig()
#: Masking parameters: each is the MaskingConfig field of the same name and changes at runtime.
MASKING_PARAMETERS = (
    Param("threshold", _DEFAULTS.threshold, "probability above which a pixel is kept", lo=0.0, hi=0.999),
    Param("mode", _DEFAULTS.mode, "background treatment: " + ", ".join(MODES), choices=MODES),
    Param("fill_color", list(_DEFAULTS.fill_color), "overlay/highlight colour as [R, G, B] 0-255"),
    Param("dilate_ratio", _DEFAULTS.dilate_ratio, "dilation kernel 2*int(r*H)+1 px (IVM: 0.05); 0 = off",
          lo=0.0, hi=0.5),
    Param("feather_ratio", _DEFAULTS.feather_ratio, "Gaussian feathering kernel 2*int(r*H)+1 px; 0 = off",
          lo=0.0, hi=0.5),
    Param("blur_ratio", _DEFAULTS.blur_ratio, "background blur kernel for mode 'blur', fraction of H",
          lo=0.0, hi=0.5),
    Param("highlight_alpha", _DEFAULTS.highlight_alpha, "fraction of background kept in mode 'highlight'",
          lo=0.0, hi=1.0),
    Param("crop", _DEFAULTS.crop, "crop the output to the kept region's box (always on in mode 'crop')"),
    Param("crop_mode", _DEFAULTS.crop_mode, "crop to the dilated mask's 'box' or, as the release, to the feathered "
          "mask's support ('release', never resized back)", choices=CROP_MODES),
    Param("crop_resize", _DEFAULTS.crop_resize, "resize a crop back to the input size (crop_mode box)"),
    Param("release_compat", _DEFAULTS.release_compat, "behave as the IVM release: fail-safe and crop_mode 'release' "
          "and, for model ivm, model_config.release_compat (precision, padding side); threshold stays yours",
          read_only=True),
)
_MASKING_FIELDS = tuple(p.name for p in MASKING_PARAMETERS)
#: What a frame gets when no pixel passes the threshold (ivm_ros.pipeline.FailSafeSettings), and when to warn.
FAIL_SAFE_PARAMETERS = (
    Param("fail_safe", "keep", "no pixel above threshold: 'keep' the whole frame unmasked (IVM), 'hold_last' "
          "mask of this instruction for up to fail_safe_hold frames, 'drop' the frame (publish nothing), or "
          "'release' (the released code's float32 arithmetic: partly or wholly background)",
          choices=FAIL_SAFE_ACTIONS),
    Param("fail_safe_hold", 15, "hold_last: frames in a row that reuse the last mask before the whole frame is kept",
          lo=1, hi=100000),
    Param("fail_safe_warn_fraction", 0.1, "WARN (log and /diagnostics) when more than this fraction of the last "
          "100 frames were fail-safe", lo=0.0, hi=1.0),
)
#: Masks at camera rate (ivm_ros.masking.propagate): the predictor at most at predictor_rate Hz by the frames' stamps,
#: the frames between get the newest mask carried by optical flow (or held); all change at runtime.
PROPAGATION_PARAMETERS = (
    Param("predictor_rate", 0.0, "run the predictor at most this often (Hz, by the frames' header stamps; 0 = every "
          "frame); the frames between get the newest mask by 'propagation'", lo=0.0, hi=1000.0),
    Param("predictor_every", 0, "run the predictor on every K-th frame instead (0 = use predictor_rate)",
          lo=0, hi=100000),
    Param("propagation", "flow", "frames between predictions: 'flow' carries the newest mask by dense optical flow, "
          "'hold' repeats it", choices=("flow", "hold")),
    Param("propagation_fallback", "repredict", "a flow-carried mask failing its confidence check: 'repredict' "
          "(run the predictor on the frame) or 'whole_frame' (keep the whole frame until the next prediction); "
          "counted in /diagnostics", choices=FALLBACKS),
    Param("propagation_min_confidence", 0.9, "fraction of the mask region whose warp must match the frame",
          lo=0.0, hi=1.0),
)


def _pipeline_settings(node: Any) -> dict[str, Any]:
    """The pipeline's fail-safe and propagation settings from the node's parameters."""
    value = lambda name: node.get_parameter(name).value
    return {"fail_safe": FailSafeSettings(value("fail_safe"), value("fail_safe_hold")),
            "propagation": PropagationSettings(
                mode=value("propagation"), predictor_rate=value("predictor_rate"),
                predictor_every=value("predictor_every"), fallback=value("propagation_fallback"),
                min_confidence=value("propagation_min_confidence"))}


#: The node's own parameters (besides ``model`` and ``model_config.*``).
PARAMETERS = (
    Param("image_transport", "raw", "input transport: 'raw' (image_raw) or 'compressed' (image_raw/compressed)",
          choices=("raw", "compressed"), read_only=True),
    Param("image_qos", "sensor_data", "input QoS", choices=qos.PROFILES, read_only=True),
    Param("image_qos_depth", 1, "input queue depth", lo=1, hi=100, read_only=True),
    Param("output_qos", "reliable", "outputs' QoS ('reliable' serves both kinds of subscriber)",
          choices=qos.PROFILES, read_only=True),
    Param("raw_cdr", True, "take and publish Images as serialized CDR bytes (zero-copy input, one copy out) "
          "instead of through rclpy's message conversion", read_only=True),
    Param("max_pixels", 3840 * 2160, "frames with more pixels are rejected", lo=1, hi=1 << 30),
    Param("max_instruction_chars", 1000, "longer instructions are rejected", lo=1, hi=100000),
    Param("before_instruction", "pass_through", "until a valid instruction arrives: publish the frame unmasked "
          "('pass_through') or publish nothing ('drop')", choices=BEFORE_INSTRUCTION),
    Param("default_instruction", "", "instruction used until one arrives on the topic (empty: none)"),
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", lo=0.1, hi=60.0, read_only=True),
    Param("torch_threads", 1, "torch CPU threads for the worker (0: torch's default). More than one lets OpenMP "
          "spin-waits starve the ROS threads on small machines", lo=0, hi=256, read_only=True),
    Param("log_throttle", 5.0, "seconds between repeated warnings of one kind", lo=0.0, hi=3600.0),
)


def _release_compat_setting(node: WorkerLifecycleNode) -> dict[str, bool]:
    """The node's ``release_compat`` passed on to the predictor when it has that setting (model ivm)."""
    on = node.get_parameter("release_compat").value and node.has_parameter("model_config.release_compat")
    return {"release_compat": True} if on else {}


@dataclasses.dataclass
class MaskingFrame:
    """A frame in the mailbox: its header (copied to every output), the message and when it arrived."""

    sec: int  # input header stamp, copied to every output
    nanosec: int
    frame_id: str
    msg: Image | CompressedImage | RawImage
    received: float  # time.monotonic() at arrival
    stamp_ns: int = dataclasses.field(init=False)
    arrived_ns: int = 0  # the node's clock (ROS time: sim time under use_sim_time) at arrival, ns

    def __post_init__(self) -> None:
        self.stamp_ns = self.sec * 1_000_000_000 + self.nanosec

    @classmethod
    def from_message(cls, msg: bytes | Image | CompressedImage, received: float) -> MaskingFrame:
        """A frame from a received message: serialized Image bytes (``raw_cdr``: parsed zero-copy, or by rclpy
        for an encapsulation the parser does not read), an Image or a CompressedImage. Raises ImageRejected."""
        if isinstance(msg, bytes):
            try:
                msg = parse_image(msg)
            except CdrUnsupported:
                try:
                    msg = deserialize_message(msg, Image)
                except RuntimeError as exc:
                    raise ImageRejected("cdr_deserialize", str(exc)) from None
        if isinstance(msg, RawImage):
            return cls(msg.sec, msg.nanosec, msg.frame_id, msg, received)
        return cls(msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id, msg, received)

    def header(self) -> Header:
        if isinstance(self.msg, (Image, CompressedImage)):
            return self.msg.header
        header = Header(frame_id=self.frame_id)
        header.stamp.sec, header.stamp.nanosec = self.sec, self.nanosec
        return header

    def validate(self, max_pixels: int) -> None:
        """Checks the fields of an Image, or a compressed frame's JPEG/PNG header, without decoding a pixel;
        raises ImageRejected."""
        msg = self.msg
        if isinstance(msg, RawImage):
            check_image_fields(msg.encoding, msg.height, msg.width, msg.step, msg.data.size, max_pixels)
        elif isinstance(msg, Image):
            h, w, step = int(msg.height), int(msg.width), int(msg.step)
            check_image_fields(msg.encoding, h, w, step, len(msg.data), max_pixels)
        elif max_pixels and len(msg.data):  # empty: rejected by compressed_to_array (data_length)
            check_compressed_header(msg.data, max_pixels)

    def image(self, max_pixels: int = 0) -> tuple[np.ndarray, str]:
        """(H, W, C) uint8 (a zero-copy view unless compressed) and its encoding; raises ImageRejected."""
        if isinstance(self.msg, RawImage):
            return self.msg.to_array(max_pixels), self.msg.encoding
        if isinstance(self.msg, CompressedImage):
            return compressed_to_array(self.msg, max_pixels)
        return image_to_array(self.msg, max_pixels)


class MaskingNode(WorkerLifecycleNode):
    """See the module docstring."""

    DIAGNOSTIC_TASK = "masking"
    OK_MESSAGE = "masking"

    def __init__(self, node_name: str = "masking_node", **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        declare_table(self, MASKING_PARAMETERS)
        self.model = declare(
            self, "model", DEFAULT_MODEL, "predictor: a registered name (ivm-ros predictors) or 'module:Class'"
        )
        self._declare_plugin_settings(PREDICTORS, "model_config", self.model)
        declare_table(self, PARAMETERS + FAIL_SAFE_PARAMETERS + PROPAGATION_PARAMETERS)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)

        self.meters = MaskingMeters()
        self.pipeline: MaskingPipeline | None = None
        self._instruction: tuple[str, float] | None = None  # (text, monotonic time received)
        self._work_start = 0.0
        self._raw = True
        self._image_sub: DedicatedSubscription | None = None
        self._subs: list[Any] = []
        self._diag_timer = None
        default = self.get_parameter("default_instruction").value.strip()
        if default:
            self._instruction = (default, time.monotonic())
        self._start_when_asked()

    # ------------------------------------------------------------------------------------------ parameters

    def masking_config(self, overrides: dict[str, Any] | None = None) -> MaskingConfig:
        """Builds (and validates) a MaskingConfig from the current parameters plus ``overrides``."""
        values = {name: self.get_parameter(name).value for name in _MASKING_FIELDS} | (overrides or {})
        values["fill_color"] = tuple(values["fill_color"])
        return MaskingConfig(**values)

    def _on_set_parameters(self, params: list[rclpy.Parameter]) -> SetParametersResult:
        if refusal := self._refuse_while_loaded(params, self.pipeline is not None, ("model", "model_config")):
            return refusal
        if overrides := {p.name: p.value for p in params if p.name in _MASKING_FIELDS}:
            try:
                self.masking_config(overrides)
            except (ValueError, TypeError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _after_set_parameters(self, params: list[rclpy.Parameter]) -> None:
        """Applies parameters once every check accepted them (a refused set never reaches the pipeline)."""
        if any(p.name in _MASKING_FIELDS for p in params):
            if self.pipeline is not None:
                self.pipeline.config = self.masking_config()
            self._last_error = ""
        if self.pipeline is not None and any(p.name.startswith(("fail_safe", "predictor_", "propag")) for p in params):
            self.pipeline.configure(**_pipeline_settings(self))
        for p in params:
            if p.name == "model":
                self.model = p.value

    # ------------------------------------------------------------------------------------------- lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if error := self._parameters_error():
            return self._refuse_configure(error)
        threads = self.get_parameter("torch_threads").value
        if threads > 0:
            torch.set_num_threads(threads)
        self._declare_plugin_settings(PREDICTORS, "model_config", self.model)
        settings = self._plugin_settings(PREDICTORS, "model_config", self.model, sequence=tuple)
        settings.update(_release_compat_setting(self))
        try:
            config = self.masking_config()
        except (ValueError, TypeError) as exc:
            return self._refuse_configure(f"invalid masking parameters: {exc}")
        try:
            predictor = load_predictor(self.model, settings)
        except Exception as exc:  # a bad model must fail the transition, not kill the node
            return self._refuse_configure(f"cannot load predictor {self.model!r}: {exc}", exc)
        self.pipeline = MaskingPipeline(predictor, config, **_pipeline_settings(self))
        self._configured()
        out_qos = qos.profile(self.get_parameter("output_qos").value, 1)
        for name in ("masked_image", "mask", "overlay"):
            self._pubs[name] = self.create_publisher(Image, f"~/{name}", out_qos, event_callbacks=qos.publisher_events(
                self.get_logger(), f"~/{name}", "output_qos", self._count_qos))
        self._diagnostics_publisher()
        self._diag_timer = self.diagnostics_timer(self.publish_diagnostics)
        self.get_logger().info(f"configured: model={self.model} {predictor.describe()}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        transport = self.get_parameter("image_transport").value
        qos_name = self.get_parameter("image_qos").value
        in_qos = qos.profile(qos_name, self.get_parameter("image_qos_depth").value)
        compressed = transport == "compressed"
        topic, msg_type = ("image_raw/compressed", CompressedImage) if compressed else ("image_raw", Image)
        self._raw = self.get_parameter("raw_cdr").value
        self._image_sub = DedicatedSubscription(  # its own thread: no executor delay (ros/dedicated.py)
            self, msg_type, topic, self._on_image, in_qos, raw=self._raw and msg_type is Image,
            event_callbacks=qos.subscription_events(self.get_logger(), topic, "image_qos", self._count_qos),
            on_error=self._on_take_error, name="ivm_masking_input",
        )
        self._subs = subscribe_instruction(self, self._on_instruction, self._count_qos)
        self._start_worker("ivm_masking_worker")
        self.get_logger().info(
            f"active: {self.resolve_topic_name(topic)} ({qos_name}) -> {self.resolve_topic_name('~/masked_image')}"
        )
        return super().on_activate(state)

    def _unsubscribe(self) -> None:
        """Stops the worker and drops the input subscriptions (what activate set up)."""
        if self._image_sub is not None:
            self._image_sub.destroy()
            self._image_sub = None
        self._stop_worker()
        self._destroy(subscriptions=self._subs)
        self._subs = []

    def _release(self) -> None:
        self._destroy(timers=[self._diag_timer])
        self._diag_timer = None
        self._destroy_publishers()
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

    # ------------------------------------------------------------------------------------------- callbacks

    def _on_image(self, msg: bytes | Image | CompressedImage) -> None:
        now = time.monotonic()
        self.meters.rate_in.tick(now)
        self.counters.add("frames_in")
        try:
            frame = MaskingFrame.from_message(msg, now)
            frame.arrived_ns = self._now_ns()
            frame.validate(self.get_parameter("max_pixels").value)  # fields only: no pixel is read
        except ImageRejected as exc:
            self._reject(exc.reason, str(exc))
            return
        if self.mailbox.put(frame) is not None:
            self.counters.add("dropped_busy")

    def _on_instruction(self, msg: String) -> None:
        try:
            text = check_instruction(msg.data, self.get_parameter("max_instruction_chars").value)
        except InputRejected as exc:
            self._reject(exc.reason, exc.detail)
            return
        self._instruction = (text, time.monotonic())
        self.counters.add("instructions")
        self.get_logger().info(f"instruction: {text!r}")

    def _on_take_error(self, exc: Exception) -> None:
        self.counters.add("dropped_error")
        self.get_logger().error(f"image input: {type(exc).__name__}: {exc}",
                                throttle_duration_sec=self.get_parameter("log_throttle").value)

    # -------------------------------------------------------------------------------------------- worker

    def _process(self, frame: MaskingFrame) -> None:
        self._work_start = time.monotonic()
        self.meters.wait_ms.add((self._work_start - frame.received) * 1e3)
        pipeline = self.pipeline
        if pipeline is None:
            return
        image, encoding = frame.image(self.get_parameter("max_pixels").value)
        instruction = self._instruction
        if instruction is None:
            if self.get_parameter("before_instruction").value == "drop":
                self.counters.add("dropped_no_instruction")
                return
            result = MaskingPipeline.pass_through(image, encoding)
            self.counters.add("passed_no_instruction")
        else:
            result = pipeline.run(image, encoding, instruction[0], frame.stamp_ns * 1e-9 or frame.received)
            self.meters.predictor_ms.add(result.predictor_ms)
            self.counters.add(f"mask_{result.mask_source}")  # predicted, propagated, held, repredicted, whole_frame
            if result.fail_safe and self._fail_safe_frame(result.fail_safe_action):
                return
        self._publish(frame, result, image, encoding)

    def _fail_safe_frame(self, action: str) -> bool:
        """Counts a frame where nothing passed the threshold and warns (throttled) when they are too many; True
        when the frame is dropped."""
        self.counters.add("fail_safe")
        self.counters.add(f"fail_safe_{action}")
        if (status := self._fail_safe_status()) is not None:
            self.get_logger().warning(status[1], throttle_duration_sec=self.get_parameter("log_throttle").value)
        return action == "dropped"

    def _fail_safe_status(self) -> tuple[bytes, str] | None:
        limit = self.get_parameter("fail_safe_warn_fraction").value
        message = self.pipeline.fail_safe_warning(limit) if self.pipeline is not None else None
        return (diagnostics.WARN, message) if message else None

    def _now_ns(self) -> int:
        """The node's clock in ns: ``time.time_ns()`` unless ROS (sim) time is active (Clock.now() costs ~65 us)."""
        clock = self.get_clock()
        if isinstance(clock, ROSClock) and clock.ros_time_is_active:
            return clock.now().nanoseconds
        return time.time_ns()

    def _publish(self, frame: MaskingFrame, result: MaskingResult, image: np.ndarray, encoding: str) -> None:
        """Publishes the masked image, and the mask and the overlay (made from the frame's decoded ``image``)
        where someone subscribes, each with the input's header."""
        pubs = self._pubs
        if not pubs:
            return
        if self._raw:
            encode = lambda arr, enc: serialize_image(arr, enc, frame.sec, frame.nanosec, frame.frame_id)
        else:
            header = frame.header()
            encode = lambda arr, enc: array_to_image(arr, enc, header)
        start = time.monotonic()
        if frame.stamp_ns:  # ages on the node's clock: under sim time the wall time since arrival is no measure
            self.meters.add_ages(frame.stamp_ns, frame.arrived_ns, self._now_ns())
        pubs["masked_image"].publish(encode(result.masked, result.encoding))
        if pubs["mask"].get_subscription_count() > 0:
            pubs["mask"].publish(encode(result.mask, "mono8"))
        if pubs["overlay"].get_subscription_count() > 0:
            view = debug_overlay(image[..., :3], result.mask)
            enc = "bgr8" if encoding in ("bgr8", "bgra8", "8UC3") else "rgb8"
            pubs["overlay"].publish(encode(view, enc))
        self.counters.add("frames_out")
        self.meters.rate_out.tick()
        done = time.monotonic()
        self.meters.publish_ms.add((done - start) * 1e3)
        self.meters.latency.add((done - frame.received) * 1e3)
        self.meters.work_ms.add((done - self._work_start) * 1e3)

    # --------------------------------------------------------------------------------------- diagnostics

    def stats(self) -> dict[str, Any]:
        """The numbers /diagnostics reports, as a dict (also used by tests and benchmarks)."""
        instruction = self._instruction
        values: dict[str, Any] = {
            "model": self.model,
            "device": str(self.pipeline.predictor.device) if self.pipeline else "n/a",
            **self.meters.values(),
            "fail_safe_fraction": self.pipeline.fail_safe_fraction() if self.pipeline else 0.0,
            "instruction": instruction[0] if instruction else "",
            "instruction_age_s": (time.monotonic() - instruction[1]) if instruction else float("nan"),
        }
        values.update(self.counters.snapshot())
        return values

    def _status(self, values: dict) -> tuple[bytes, str] | None:
        return (diagnostics.WARN, "no instruction yet") if not values["instruction"] else self._fail_safe_status()


def main(args: list[str] | None = None) -> None:
    # OPENCV_IO_MAX_IMAGE_PIXELS (the decoder's own limit) cannot follow max_pixels: OpenCV reads it once, when it
    # loads, and this module's imports load it. Set it in the node's environment to bound the decoder as well.
    tune_malloc()  # frame-sized buffers stay in the heap instead of being page-faulted in per frame (runtime.py)
    spin_node(MaskingNode, args)


if __name__ == "__main__":
    main()
