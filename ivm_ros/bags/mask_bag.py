"""A recorded rosbag2 (MCAP or sqlite3) -> a rosbag2 MCAP bag with masked camera topics; no ROS install needed.

Reading and writing are the ``rosbags`` library's (``AnyReader``, ``rosbag2.Writer``); each frame goes through
the same :class:`~ivm_ros.pipeline.MaskingPipeline` as masking_node. Messages are taken in log-time order, so the
instruction a frame gets is the newest valid one logged at or before it (as the node applies the newest one it
received); ``MaskBagOptions.instruction`` holds until the first one. Every input topic is copied byte for byte at
its log time (the camera topics too unless ``drop_input_images``); each camera topic ``T`` gains ``T/masked`` and
``T/mask`` (mono8, 0..255 as applied) at the frame's log time, with its header stamp and frame_id. An Image
topic's outputs are Images; a CompressedImage topic's are CompressedImages (the input's JPEG or PNG; masks PNG)
unless ``raw_output``.

Usage::

    with MaskBagJob(Path("in_bag"), MaskBagOptions(instruction_topic="/instruction")) as job:  # BagError
        summary = job.run(MaskingPipeline(load_predictor("lite")), Path("out_bag"))
"""

from __future__ import annotations

import collections
import dataclasses
import shutil
import sqlite3
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from tqdm import tqdm

from ivm_ros.bags import BagError
from ivm_ros.bags.folder import FrameFolder
from ivm_ros.bags.frames import IMAGE, IMAGE_TYPES, ImageMessages, compression_of, message_to_array
from ivm_ros.inputs import InputRejected, check_instruction
from ivm_ros.pipeline import MaskingPipeline, MaskingResult

STRING = "std_msgs/msg/String"
BEFORE_INSTRUCTION = ("pass_through", "drop")


@dataclasses.dataclass(frozen=True)
class MaskBagOptions:
    """What to mask and what to write (defaults as masking_node's)."""

    image_topics: tuple[str, ...] = ()  # empty: every Image and CompressedImage topic of the bag
    instruction_topic: str = ""  # std_msgs/msg/String topic; "" = none
    instruction: str = ""  # the instruction before the first valid one on instruction_topic (or throughout)
    before_instruction: str = "pass_through"  # frames before any instruction: written unmasked, or dropped
    output_suffix: str = "masked"  # masked frames of topic T go to T/<output_suffix>
    mask_suffix: str = "mask"  # masks to T/<mask_suffix>; "" = no mask topics
    raw_output: bool = False  # CompressedImage inputs: write sensor_msgs/Image outputs instead
    drop_input_images: bool = False  # leave the masked camera topics themselves out of the output
    compression: str = "none"  # none | zstd (MCAP chunk compression; Foxglove and ros2 bag read both)
    frames_dir: Path | None = None  # also write every masked frame and mask as PNG (see ivm_ros.bags.folder)
    max_pixels: int = 3840 * 2160  # larger frames are skipped (rejected_size)
    max_instruction_chars: int = 1000

    def __post_init__(self) -> None:
        if self.before_instruction not in BEFORE_INSTRUCTION:
            raise ValueError(f"before_instruction must be one of {BEFORE_INSTRUCTION}, got {self.before_instruction!r}")
        if self.compression not in ("none", "zstd"):
            raise ValueError(f"compression must be none or zstd, got {self.compression!r}")
        if not self.output_suffix.strip("/") or self.output_suffix.strip("/") == self.mask_suffix.strip("/"):
            raise ValueError("output suffix must be non-empty and differ from the mask suffix")


@dataclasses.dataclass
class MaskBagSummary:
    """Counts of one run. ``masked``: frames through the predictor and written (fail-safe ones included);
    ``skipped``: frames not written, by reason; ``seconds``: wall time of the whole run (read, mask, write);
    ``pipeline_seconds``: of it, time in :meth:`MaskingPipeline.run`."""

    frames: int = 0
    masked: int = 0
    fail_safe: int = 0
    fail_safe_actions: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    passed_through: int = 0
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    copied: int = 0
    instructions: int = 0
    instructions_rejected: int = 0
    seconds: float = 0.0
    pipeline_seconds: float = 0.0
    output_bytes: int = 0
    output_topics: dict[str, int] = dataclasses.field(default_factory=dict)  # messages per topic, as written

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values.update(fail_safe_actions=dict(self.fail_safe_actions), skipped=dict(self.skipped),
                      frames_per_second=round(self.frames_per_second, 3))
        return values

    def text(self) -> str:
        """Two lines for the user."""
        fail = ", ".join(f"{n} {a}" for a, n in sorted(self.fail_safe_actions.items()))
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items()))
        return (f"frames {self.frames}: masked {self.masked}, fail-safe {self.fail_safe}{f' ({fail})' if fail else ''}"
                f", passed through before any instruction {self.passed_through}, skipped {sum(self.skipped.values())}"
                f"{f' ({skipped})' if skipped else ''}\n"
                f"time {self.seconds:.1f} s ({self.frames_per_second:.1f} frames/s; pipeline "
                f"{self.pipeline_seconds:.1f} s), instructions {self.instructions} (+{self.instructions_rejected} "
                f"rejected), other messages copied {self.copied}, output {self.output_bytes / 1e6:.1f} MB")


def _read_errors() -> tuple[type[BaseException], ...]:
    """What the rosbags readers raise for a file they cannot read (bad yaml, truncated MCAP, not a database)."""
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError
    from rosbags.serde import SerdeError
    from rosbags.typesys import TypesysError

    return AnyReaderError, ReaderError, SerdeError, TypesysError, sqlite3.Error, EOFError, struct.error


def open_reader(path: Path) -> Any:
    """An open ``rosbags`` AnyReader of the rosbag2 folder ``path``; BagError when it cannot be read."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    if not path.exists():
        raise BagError(f"input bag {path} does not exist")
    if not path.is_dir():
        raise BagError(f"input {path} is not a rosbag2 folder (a folder with metadata.yaml and its .mcap or .db3 "
                       "files; `ros2 bag reindex` makes a metadata.yaml)")
    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores.LATEST))
        reader.open()
    except (*_read_errors(), OSError) as exc:
        raise BagError(f"cannot read bag {path}: {_one_line(exc)}") from None
    return reader


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class MaskBagJob:
    """An input bag opened and its topics checked (:class:`BagError` else); :meth:`run` writes one output."""

    def __init__(self, path: Path, options: MaskBagOptions) -> None:
        self.path, self.options = path, options
        self.reader = open_reader(path)
        try:
            self.images, self.instruction_topic = self._plan()
        except BagError:
            self.reader.close()
            raise

    def __enter__(self) -> MaskBagJob:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    @property
    def frame_count(self) -> int:
        """Frames on the camera topics (from the bag's index)."""
        return sum(c.msgcount for c in self.reader.connections if c.topic in self.images)

    def _plan(self) -> tuple[dict[str, str], str]:
        """Camera topic -> type, and the instruction topic; BagError for a missing or mistyped one."""
        types: dict[str, str] = {}
        for conn in self.reader.connections:
            types.setdefault(conn.topic, conn.msgtype)
        available = sorted(t for t, ty in types.items() if ty in IMAGE_TYPES)
        wanted = self.options.image_topics or tuple(available)
        if not wanted:
            raise BagError(f"{self.path} has no sensor_msgs Image or CompressedImage topic; its topics: "
                           f"{sorted(types)}")
        images = {}
        for topic in wanted:
            if topic not in types:
                raise BagError(f"image topic {topic} is not in {self.path}; its image topics: {available}")
            if types[topic] not in IMAGE_TYPES:
                raise BagError(f"topic {topic} is {types[topic]}, not sensor_msgs/msg/Image or CompressedImage")
            images[topic] = types[topic]
        topic = self.options.instruction_topic
        if topic and topic not in types:
            strings = sorted(t for t, ty in types.items() if ty == STRING)
            raise BagError(f"instruction topic {topic} is not in {self.path}; its std_msgs/String topics: {strings}")
        if topic and types[topic] != STRING:
            raise BagError(f"instruction topic {topic} is {types[topic]}, not {STRING}")
        for camera in images:
            for name in self.output_topics(camera):
                if name in types:
                    raise BagError(f"output topic {name} is already in {self.path}: choose another --output-suffix")
        return images, topic

    def output_topics(self, topic: str) -> list[str]:
        """The masked topic and, unless turned off, the mask topic of camera ``topic``."""
        opts = self.options
        names = [f"{topic.rstrip('/')}/{opts.output_suffix.strip('/')}"]
        return names + ([f"{topic.rstrip('/')}/{opts.mask_suffix.strip('/')}"] if opts.mask_suffix.strip("/") else [])

    def run(self, pipeline: MaskingPipeline, output: Path | None, progress: bool = True) -> MaskBagSummary:
        """Masks every frame into the MCAP bag folder ``output`` (new; None: only ``frames_dir``) and returns the
        counts. A failed run leaves no output folder behind."""
        if output is not None and output.exists():
            raise BagError(f"output {output} exists already; rosbag2 writers never overwrite: choose a new path")
        if output is None and self.options.frames_dir is None:
            raise BagError("nothing to write: give an output bag or a frames folder")
        start = time.perf_counter()
        try:
            writer = _Output(output, self.reader, self.options, self) if output is not None else None
            folder = FrameFolder(self.options.frames_dir, self.images) if self.options.frames_dir else None
            summary = _Pass(self, pipeline, writer, folder).run(progress)
            summary.seconds = time.perf_counter() - start
            if writer is not None:
                summary.output_bytes = sum(p.stat().st_size for p in output.iterdir())  # type: ignore[union-attr]
                summary.output_topics = mcap_topic_counts(output)  # type: ignore[arg-type]
                if sum(summary.output_topics.values()) != writer.written:
                    raise BagError(f"{output}: its MCAP summary counts {sum(summary.output_topics.values())} "
                                   f"messages, {writer.written} were written")
        except BaseException:
            if output is not None and output.exists():
                shutil.rmtree(output, ignore_errors=True)
            raise
        return summary


def mcap_topic_counts(folder: Path) -> dict[str, int]:
    """Messages per topic in the MCAP files of a bag folder, from each file's summary section (the ``mcap``
    library's reader, as Foxglove reads it); BagError for a file without a summary or a schema that is not
    ros2msg / ros2idl."""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader

    counts: collections.Counter = collections.Counter()
    for path in sorted(folder.glob("*.mcap")):
        try:
            with path.open("rb") as handle:
                summary = make_reader(handle).get_summary()
        except (McapError, OSError, ValueError) as exc:
            raise BagError(f"cannot read {path} back: {_one_line(exc)}") from None
        if summary is None or summary.statistics is None:
            raise BagError(f"{path} has no summary section (statistics): Foxglove would have to scan it")
        if bad := sorted({s.name for s in summary.schemas.values() if s.encoding not in ("ros2msg", "ros2idl")}):
            raise BagError(f"{path}: schemas {bad} are not ros2msg/ros2idl")
        for channel_id, n in summary.statistics.channel_message_counts.items():
            counts[summary.channels[channel_id].topic] += n
    return dict(counts)


class _Output:
    """The output bag: a rosbags MCAP Writer with one connection per copied input connection and two per camera."""

    def __init__(self, path: Path, reader: Any, options: MaskBagOptions, job: MaskBagJob) -> None:
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.messages = ImageMessages(get_typestore(Stores.LATEST))
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        if options.compression == "zstd":
            self.writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self.writer.open()
        self.copied: dict[int, Any] = {}  # input connection id -> output connection
        self.outputs: dict[str, list[Any]] = {}  # camera topic -> [masked, mask] connections
        self._add_copies(reader, options, job)
        for topic, msgtype in job.images.items():
            qos = next(c.ext.offered_qos_profiles for c in reader.connections if c.topic == topic)
            out_type = IMAGE if options.raw_output else msgtype
            self.outputs[topic] = [self._add(name, out_type, qos) for name in job.output_topics(topic)]

    def _add_copies(self, reader: Any, options: MaskBagOptions, job: MaskBagJob) -> None:
        by_key: dict[tuple, Any] = {}
        self._defined = {c.msgtype: _definition(c, reader.typestore) for c in reader.connections
                         if c.msgtype in IMAGE_TYPES}
        for conn in reader.connections:
            if options.drop_input_images and conn.topic in job.images:
                continue
            key = (conn.topic, conn.msgtype, conn.ext.serialization_format, repr(conn.ext.offered_qos_profiles))
            if key not in by_key:
                msgdef, digest = _definition(conn, reader.typestore)
                by_key[key] = self.writer.add_connection(
                    conn.topic, conn.msgtype, msgdef=msgdef, rihs01=digest,
                    serialization_format=conn.ext.serialization_format,
                    offered_qos_profiles=conn.ext.offered_qos_profiles)
            self.copied[conn.id] = by_key[key]

    def _add(self, topic: str, msgtype: str, qos: list) -> Any:
        """A new output connection; an image type the input already defines keeps the input's definition (a bag
        holds one schema per type)."""
        msgdef, digest = self._defined.get(msgtype) or self.messages.definition(msgtype)
        return self.writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=digest, offered_qos_profiles=qos)

    @property
    def written(self) -> int:
        """Messages written so far."""
        return sum(self.writer.counts.values())

    def close(self, ok: bool) -> None:
        (self.writer.close if ok else self.writer.abort)()


def _definition(conn: Any, typestore: Any) -> tuple[str, str]:
    """(definition text, RIHS01 hash) of an input connection: the bag's own where it has both, else generated
    from the reader's typestore (a bag without definitions: the standard types)."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import TypesysError

    if conn.msgdef.format != MessageDefinitionFormat.NONE and conn.digest:
        return conn.msgdef.data, conn.digest
    try:
        return typestore.generate_msgdef(conn.msgtype, ros_version=2)[0], typestore.hash_rihs01(conn.msgtype)
    except (TypesysError, KeyError):
        raise BagError(f"topic {conn.topic}: the bag has no definition of {conn.msgtype}, and it is no standard "
                       "type; record with a newer rosbag2 (Iron or later stores definitions)") from None


class _Pass:
    """One pass over the input in log-time order: instructions update, frames are masked, the rest copied."""

    def __init__(self, job: MaskBagJob, pipeline: MaskingPipeline, out: _Output | None,
                 folder: FrameFolder | None) -> None:
        self.job, self.pipeline, self.out, self.folder = job, pipeline, out, folder
        self.options = job.options
        self.summary = MaskBagSummary()
        self.instruction = check_instruction(job.options.instruction, job.options.max_instruction_chars) \
            if job.options.instruction.strip() else ""
        self._warned: set[str] = set()

    def run(self, progress: bool) -> MaskBagSummary:
        ok = False
        bar = tqdm(total=self.job.frame_count, unit="frame", desc="mask-bag", disable=not progress)
        try:
            for conn, log_time, raw in self._messages():
                camera = conn.topic in self.job.images
                if camera:
                    self._frame(conn, log_time, raw)
                    bar.update()
                elif conn.topic == self.job.instruction_topic:
                    self._instruction(raw)
                if self.out is not None and conn.id in self.out.copied:
                    self.out.writer.write(self.out.copied[conn.id], log_time, raw)
                    self.summary.copied += not camera
            ok = True
        finally:
            bar.close()
            if self.out is not None:
                self.out.close(ok)
            if self.folder is not None:
                self.folder.close()
        return self.summary

    def _messages(self) -> Iterator[tuple[Any, int, bytes]]:
        """The reader's (connection, log time ns, CDR bytes) in log-time order; whatever the reader raises on a
        damaged file (its errors, or struct/overflow errors from bad offsets) becomes one BagError line."""
        messages = self.job.reader.messages()
        while True:
            try:
                item = next(messages)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - the reader's failures on damaged files are not all typed
                raise BagError(f"cannot read bag {self.job.path} after {self.summary.frames} frames: "
                               f"{type(exc).__name__}: {_one_line(exc)}") from None
            yield item

    def _deserialize(self, raw: bytes, msgtype: str, topic: str) -> Any:
        """The message, or None (counted, warned once) for bytes that do not parse as ``msgtype``."""
        try:
            return self.job.reader.deserialize(raw, msgtype)
        except Exception as exc:  # noqa: BLE001 - rosbags' CDR parser raises several kinds on damaged bytes
            self._warn("deserialize", f"{topic}: message skipped: cannot parse {msgtype}: {_one_line(exc)}")
            return None

    def _instruction(self, raw: bytes) -> None:
        msg = self._deserialize(raw, STRING, self.job.instruction_topic)
        try:
            if msg is None:
                raise InputRejected("deserialize", "unparsable instruction message ignored")
            self.instruction = check_instruction(msg.data, self.options.max_instruction_chars)
            self.summary.instructions += 1
        except InputRejected as exc:
            self.summary.instructions_rejected += 1
            self._warn(exc.reason, exc.detail)

    def _warn(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            tqdm.write(f"mask-bag: {text} (further ones only counted)", file=sys.stderr)

    def _frame(self, conn: Any, log_time: int, raw: bytes) -> None:
        summary = self.summary
        summary.frames += 1
        msg = self._deserialize(raw, conn.msgtype, conn.topic)
        if msg is None:
            summary.skipped["rejected_deserialize"] += 1
            return
        try:
            image, encoding = message_to_array(msg, conn.msgtype, self.options.max_pixels)
        except InputRejected as exc:
            summary.skipped[f"rejected_{exc.reason}"] += 1
            self._warn(exc.reason, f"{conn.topic}: frame skipped: {exc.detail}")
            return
        if not self.instruction:
            if self.options.before_instruction == "drop":
                summary.skipped["no_instruction"] += 1
                return
            result = MaskingPipeline.pass_through(image, encoding)
            summary.passed_through += 1
        else:
            start = time.perf_counter()
            result = self.pipeline.run(image, encoding, self.instruction)
            summary.pipeline_seconds += time.perf_counter() - start
            if result.fail_safe:
                summary.fail_safe += 1
                summary.fail_safe_actions[result.fail_safe_action] += 1
            if result.fail_safe_action == "dropped":
                summary.skipped["fail_safe_dropped"] += 1
                return
            summary.masked += 1
        self._write(conn, msg, log_time, result)

    def _write(self, conn: Any, msg: Any, log_time: int, result: MaskingResult) -> None:
        stamp = msg.header.stamp
        if self.folder is not None:
            self.folder.add(conn.topic, log_time, stamp.sec * 1_000_000_000 + stamp.nanosec, msg.header.frame_id,
                            result, self.instruction)
        if self.out is None:
            return
        build = self.out.messages
        header = build.header(stamp.sec, stamp.nanosec, msg.header.frame_id)
        connections = self.out.outputs[conn.topic]
        kinds = [(result.masked, result.encoding, compression_of(getattr(msg, "format", ""))),
                 (result.mask, "mono8", "png")]
        for (arr, enc, kind), out_conn in zip(kinds, connections):
            if out_conn.msgtype == IMAGE:
                data = build.image(arr, enc, header)
            else:
                data = build.compressed(arr, enc, header, kind)
            self.out.writer.write(out_conn, log_time, data)
