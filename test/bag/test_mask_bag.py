"""``ivm-ros mask-bag`` on real rosbag2 files written with rosbags (MCAP and sqlite3): Image, CompressedImage, an
instruction topic and another topic in; the output read back with rosbags, and checked with the mcap library's
reader and its ROS 2 decoder (what Foxglove does); the error cases exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from ivm_ros.bags import synthetic
from ivm_ros.bags.synthetic import CAMERA, INSTRUCTION, JOINTS, WRIST
from ivm_ros.commands.cli import main as cli

FRAMES, SIZE = 8, (64, 48)
RED, BLUE = "pick up the red block", "touch the blue ball"
#: color_keyword with crisp masks: the mask is exactly the pixels of the named colour.
CRISP = ["--model", "color_keyword", "--dilate-ratio", "0", "--feather-ratio", "0", "--no-progress", "--json"]


def _run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    rc = cli(["mask-bag", *map(str, argv)])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    summary = json.loads(lines[-1]) if rc == 0 and "--json" in argv else None
    return rc, summary, err


def _read(path: Path) -> dict[str, list[tuple[int, bytes, object]]]:
    """topic -> [(log time, raw bytes, message)] of a bag, read with rosbags."""
    from rosbags.highlevel import AnyReader

    found: dict[str, list] = {}
    with AnyReader([path]) as reader:
        for conn, t, raw in reader.messages():
            found.setdefault(conn.topic, []).append((t, bytes(raw), reader.deserialize(raw, conn.msgtype)))
    return found


def _pixels(msg) -> np.ndarray:
    if hasattr(msg, "encoding"):
        return np.asarray(msg.data).reshape(msg.height, msg.width, -1)
    return cv2.imdecode(np.asarray(msg.data), cv2.IMREAD_UNCHANGED).reshape(*SIZE[::-1], -1)


def _colour(rgb: np.ndarray, index: int) -> np.ndarray:
    """(H, W) bool: where the frame is red (channel 0 high) or blue (channel 2 high)."""
    return (rgb[..., index] > 150) & (rgb[..., 1] < 100)


@pytest.fixture(params=["mcap", "sqlite3"])
def bag(request, tmp_path) -> Path:
    path = tmp_path / f"in_{request.param}"
    synthetic.write_bag(path, request.param, frames=FRAMES, size=SIZE, instructions=((0, RED), (FRAMES // 2, BLUE)))
    return path


def test_masks_every_frame_with_the_instruction_of_its_time(bag, tmp_path, capsys):
    out = tmp_path / "out"
    rc, summary, _ = _run(capsys, bag, out, "--instruction-topic", INSTRUCTION, *CRISP)
    assert rc == 0
    assert summary["frames"] == summary["masked"] == 2 * FRAMES and summary["instructions"] == 2
    assert summary["fail_safe"] == 0 and summary["skipped"] == {}
    src, dst = _read(bag), _read(out)
    for topic in (CAMERA, WRIST, INSTRUCTION, JOINTS):  # every input topic copied byte for byte at its log time
        assert [(t, raw) for t, raw, _ in dst[topic]] == [(t, raw) for t, raw, _ in src[topic]]
    for camera in (CAMERA, WRIST):
        masked, masks = dst[f"{camera}/masked"], dst[f"{camera}/mask"]
        assert len(masked) == len(masks) == FRAMES
        for i, ((t_in, _, frame), (t_m, _, m), (t_k, _, k)) in enumerate(zip(src[camera], masked, masks)):
            assert t_in == t_m == t_k  # the input's log time
            for msg in (m, k):
                assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (
                    frame.header.stamp.sec, frame.header.stamp.nanosec)
                assert msg.header.frame_id == "camera_optical"
            rgb = synthetic.scene(i, FRAMES, *SIZE)
            want = _colour(rgb, 0 if i < FRAMES // 2 else 2)  # red until the second instruction, then blue
            mask = _pixels(k)[..., 0] > 127
            iou = (mask & want).sum() / (mask | want).sum()
            assert iou > (0.999 if camera == CAMERA else 0.8), (camera, i, iou)
            if camera == CAMERA:  # raw: exact overlay, white outside the mask, the frame inside
                pixels = _pixels(m)
                assert m.encoding == "rgb8"
                assert (pixels[~mask] == 255).all() and (pixels[mask] == rgb[mask]).all()
            else:
                assert "jpeg" in m.format and "png" in k.format


def test_output_is_an_mcap_rosbag2_that_ros2_bag_info_and_foxglove_read(bag, tmp_path, capsys):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out = tmp_path / "out"
    rc, summary, _ = _run(capsys, bag, out, "--instruction", RED, "--compression", "zstd", *CRISP)
    assert rc == 0
    meta = yaml.safe_load((out / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap" and meta["version"] == 9
    files = [out / f for f in meta["relative_file_paths"]]
    assert [f.suffix for f in files] == [".mcap"] and all(f.is_file() for f in files)
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]}
    assert counts == summary["output_topics"] and counts[f"{WRIST}/mask"] == FRAMES
    assert all(t["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
               for t in meta["topics_with_message_count"])
    with files[0].open("rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()], validate_crcs=True)
        assert reader.get_header().profile == "ros2"
        mcap_summary = reader.get_summary()
        assert {s.encoding for s in mcap_summary.schemas.values()} == {"ros2msg"}
        assert {c.message_encoding for c in mcap_summary.channels.values()} == {"cdr"}
        decoded = {}
        for _, channel, _message, ros in reader.iter_decoded_messages():
            decoded[channel.topic] = decoded.get(channel.topic, 0) + 1
            if channel.topic == f"{CAMERA}/masked":
                assert (ros.height, ros.width, ros.encoding, len(ros.data)) == (SIZE[1], SIZE[0], "rgb8",
                                                                               SIZE[0] * SIZE[1] * 3)
    assert decoded == counts
    assert sum(counts.values()) == meta["message_count"]


def test_before_the_first_instruction_frames_pass_through_or_drop(tmp_path, capsys):
    bag = tmp_path / "late"
    synthetic.write_bag(bag, "mcap", frames=FRAMES, size=SIZE, instructions=((3, RED),))
    rc, summary, _ = _run(capsys, bag, tmp_path / "a", "--instruction-topic", INSTRUCTION, "--image-topic", CAMERA,
                          *CRISP)
    assert rc == 0 and (summary["passed_through"], summary["masked"]) == (3, FRAMES - 3)
    out = _read(tmp_path / "a")
    assert {f"{WRIST}/masked", f"{WRIST}/mask"}.isdisjoint(out)  # only the chosen camera is masked
    first = _pixels(out[f"{CAMERA}/masked"][0][2])
    assert (first == synthetic.scene(0, FRAMES, *SIZE)).all() and (_pixels(out[f"{CAMERA}/mask"][0][2]) == 255).all()
    rc, summary, _ = _run(capsys, bag, tmp_path / "b", "--instruction-topic", INSTRUCTION, "--image-topic", CAMERA,
                          "--before-instruction", "drop", *CRISP)
    assert rc == 0 and summary["skipped"] == {"no_instruction": 3} and summary["masked"] == FRAMES - 3
    assert len(_read(tmp_path / "b")[f"{CAMERA}/masked"]) == FRAMES - 3
    rc, summary, _ = _run(capsys, bag, tmp_path / "c", "--instruction-topic", INSTRUCTION, "--instruction", BLUE,
                          "--image-topic", CAMERA, *CRISP)  # --instruction holds until the topic's first
    assert rc == 0 and summary["masked"] == FRAMES and summary["passed_through"] == 0
    masks = [_pixels(m)[..., 0] > 127 for _, _, m in _read(tmp_path / "c")[f"{CAMERA}/mask"]]
    assert (masks[0] == _colour(synthetic.scene(0, FRAMES, *SIZE), 2)).all()
    assert (masks[3] == _colour(synthetic.scene(3, FRAMES, *SIZE), 0)).all()


def test_fail_safe_frames_are_counted_and_follow_the_setting(tmp_path, capsys):
    bag = tmp_path / "in"
    synthetic.write_bag(bag, "sqlite3", frames=FRAMES, size=SIZE)
    rc, summary, _ = _run(capsys, bag, tmp_path / "keep", "--instruction", "the green cup", *CRISP)
    assert rc == 0 and summary["fail_safe"] == 2 * FRAMES and summary["fail_safe_actions"] == {"kept": 2 * FRAMES}
    kept = _read(tmp_path / "keep")[f"{CAMERA}/masked"]
    assert (_pixels(kept[0][2]) == synthetic.scene(0, FRAMES, *SIZE)).all()  # whole frame kept (IVM)
    rc, summary, _ = _run(capsys, bag, tmp_path / "drop", "--instruction", "the green cup", "--fail-safe", "drop",
                          *CRISP)
    assert rc == 0 and summary["skipped"] == {"fail_safe_dropped": 2 * FRAMES} and summary["masked"] == 0
    assert f"{CAMERA}/masked" not in _read(tmp_path / "drop")  # declared, never written


def test_output_options(tmp_path, capsys):
    bag = tmp_path / "in"
    synthetic.write_bag(bag, "mcap", frames=4, size=SIZE)
    rc, _, _ = _run(capsys, bag, tmp_path / "out", "--instruction", RED, "--raw-output", "--drop-input-images",
                    "--mask-suffix", "", "--output-suffix", "ivm/masked", *CRISP)
    assert rc == 0
    out = _read(tmp_path / "out")
    assert set(out) == {INSTRUCTION, JOINTS, f"{CAMERA}/ivm/masked", f"{WRIST}/ivm/masked"}
    wrist = out[f"{WRIST}/ivm/masked"][0][2]
    assert wrist.encoding == "bgr8" and (wrist.height, wrist.width) == SIZE[::-1]  # a raw Image from a JPEG topic


def test_frames_folder_without_a_bag(tmp_path, capsys):
    bag = tmp_path / "in"
    synthetic.write_bag(bag, "mcap", frames=4, size=SIZE, instructions=((2, BLUE),))
    rc, summary, _ = _run(capsys, bag, "--frames-dir", tmp_path / "frames", "--instruction", RED,
                          "--instruction-topic", INSTRUCTION, *CRISP)
    assert rc == 0 and summary["output_bytes"] == 0
    folder = tmp_path / "frames" / "camera_image_raw"
    rows = (folder / "frames.csv").read_text().splitlines()
    assert rows[0] == "log_time_ns,stamp_ns,frame_id,fail_safe_action,instruction"
    assert [r.split(",")[-1] for r in rows[1:]] == [RED, RED, BLUE, BLUE]
    log_time, stamp = (int(v) for v in rows[1].split(",")[:2])
    assert log_time - stamp == synthetic.STAMP_LAG_NS
    masked = cv2.imread(str(folder / "masked" / f"{log_time}.png"))[..., ::-1]
    mask = cv2.imread(str(folder / "mask" / f"{log_time}.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert (mask == _colour(synthetic.scene(0, 4, *SIZE), 0)).all() and (masked[~mask] == 255).all()
    assert len(list((tmp_path / "frames" / "wrist_image_raw_compressed" / "mask").glob("*.png"))) == 4


def test_damaged_frames_are_skipped_and_counted(tmp_path, capsys):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.LATEST)
    t = store.types
    bag = tmp_path / "damaged"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(CAMERA, "sensor_msgs/msg/Image", typestore=store)
        for i, (encoding, n) in enumerate((("rgb8", 12), ("16UC1", 8), ("rgb8", 11), ("rgb8", 12))):
            image = t["sensor_msgs/msg/Image"](header=t["std_msgs/msg/Header"](
                stamp=t["builtin_interfaces/msg/Time"](sec=i, nanosec=0), frame_id="c"), height=2, width=2,
                encoding=encoding, is_bigendian=0, step=n // 2, data=np.full(n, 200, np.uint8))
            writer.write(conn, 1000 + i, store.serialize_cdr(image, "sensor_msgs/msg/Image"))
        writer.write(conn, 2000, b"\x00\x01\x00\x00\x05")  # not an Image at all
    rc, summary, err = _run(capsys, bag, tmp_path / "out", "--instruction", RED, *CRISP)
    assert rc == 0, err
    assert summary["masked"] == 2 and summary["skipped"] == {
        "rejected_encoding": 1, "rejected_step": 1, "rejected_deserialize": 1}
    assert "16UC1" in err


def test_the_default_lite_model_runs_over_a_bag(tmp_path, capsys):
    bag = tmp_path / "in"
    synthetic.write_bag(bag, "mcap", frames=2, size=SIZE)
    rc, summary, err = _run(capsys, bag, tmp_path / "out", "--instruction-topic", INSTRUCTION, "--threads", "1",
                            "--no-progress", "--json")
    assert rc == 0, err
    assert summary["frames"] == 4 and summary["masked"] + summary["skipped"].get("fail_safe_dropped", 0) == 4
    assert summary["pipeline_seconds"] > 0


def _without_definitions(bag: Path, tmp_path: Path, custom_type: str = "") -> Path:
    """A copy of the sqlite3 ``bag`` without message definitions or type hashes, as Humble's rosbag2 writes them;
    ``custom_type`` renames the joint-state topic's type to one no typestore knows."""
    import shutil
    import sqlite3

    path = tmp_path / "humble"
    path.mkdir()
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    shutil.copy(bag / info["relative_file_paths"][0], path / "humble.db3")
    info["relative_file_paths"], info["files"][0]["path"] = ["humble.db3"], "humble.db3"
    for topic in info["topics_with_message_count"]:
        topic["topic_metadata"]["type_description_hash"] = ""
        if custom_type and topic["topic_metadata"]["name"] == JOINTS:
            topic["topic_metadata"]["type"] = custom_type
    (path / "metadata.yaml").write_text(yaml.safe_dump(meta))
    with sqlite3.connect(path / "humble.db3") as db:
        db.execute("DELETE FROM message_definitions")
        db.execute("UPDATE topics SET type_description_hash = ''")
        if custom_type:
            db.execute("UPDATE topics SET type = ? WHERE name = ?", (custom_type, JOINTS))
    return path


def test_a_bag_without_definitions_gets_the_standard_ones(tmp_path, capsys):
    bag = tmp_path / "in"
    synthetic.write_bag(bag, "sqlite3", frames=3, size=SIZE)
    old = _without_definitions(bag, tmp_path)
    rc, summary, err = _run(capsys, old, tmp_path / "out", "--instruction", RED, *CRISP)
    assert rc == 0, err
    meta = yaml.safe_load((tmp_path / "out" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert all(t["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
               for t in meta["topics_with_message_count"])
    assert len(_read(tmp_path / "out")[JOINTS]) == 3 and summary["masked"] == 6


def _corrupt_chunk(bag: Path, tmp_path: Path) -> Path:
    path = tmp_path / "corrupt"
    path.mkdir()
    (path / "metadata.yaml").write_text((bag / "metadata.yaml").read_text().replace(bag.name, path.name))
    data = bytearray((bag / f"{bag.name}.mcap").read_bytes())
    data[len(data) // 3: len(data) // 3 + 4000] = bytes(4000)  # inside the first chunk: the index stays readable
    (path / f"{path.name}.mcap").write_bytes(bytes(data))
    return path


ERRORS = {  # name -> (how to make the input, extra arguments, what the one line says)
    "missing image topic": (None, ["--instruction", RED, "--image-topic", "/nope"], "image topic /nope is not in"),
    "missing instruction topic": (None, ["--instruction-topic", "/nope"], "instruction topic /nope is not in"),
    "instruction topic of another type": (None, ["--instruction-topic", JOINTS], "not std_msgs/msg/String"),
    "image topic of another type": (None, ["--instruction", RED, "--image-topic", JOINTS], "not sensor_msgs"),
    "no instruction": (None, [], "give --instruction-topic"),
    "bad threshold": (None, ["--instruction", RED, "--threshold", "2"], "threshold must be in"),
    "unknown model": (None, ["--instruction", RED, "--model", "nope"], "unknown predictor 'nope'"),
    "empty instruction": (None, ["--instruction", RED, "--instruction", "\x07"], "instruction_encoding"),
    "no such bag": (lambda bag, tmp: tmp / "nope", ["--instruction", RED], "does not exist"),
    "a file, not a folder": (lambda bag, tmp: bag / "metadata.yaml", ["--instruction", RED], "not a rosbag2 folder"),
    "bad metadata": (lambda bag, tmp: _garbage(tmp, "metadata.yaml", "rosbag2_bagfile_information: [\n"),
                     ["--instruction", RED], "cannot read bag"),
    "not a database": (lambda bag, tmp: _garbage(tmp, "x.db3", "x" * 500, bag), ["--instruction", RED],
                       "cannot read bag"),
    "damaged chunk": (_corrupt_chunk, ["--instruction", RED], "cannot read bag"),
    "a type without a definition": (lambda bag, tmp: _without_definitions(_sqlite(bag, tmp), tmp, "my_pkg/msg/Arm"),
                                    ["--instruction", RED], "no definition of my_pkg/msg/Arm"),
}


def _sqlite(bag: Path, tmp: Path) -> Path:
    synthetic.write_bag(tmp / "in_sqlite3", "sqlite3", frames=3, size=SIZE)
    return tmp / "in_sqlite3"


def _garbage(tmp: Path, name: str, text: str, like: Path | None = None) -> Path:
    path = tmp / "garbage"
    path.mkdir()
    if like is not None:  # a real metadata.yaml that points at a file of garbage
        meta = yaml.safe_load((like / "metadata.yaml").read_text())
        info = meta["rosbag2_bagfile_information"]
        info["storage_identifier"], info["relative_file_paths"] = "sqlite3", [name]
        (path / "metadata.yaml").write_text(yaml.safe_dump(meta))
    (path / name).write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_user_errors_exit_2_with_one_line_and_leave_no_output(case, tmp_path, capsys):
    make, extra, said = ERRORS[case]
    bag = tmp_path / "in"
    synthetic.write_bag(bag, "mcap", frames=3, size=SIZE)
    source = make(bag, tmp_path) if make else bag
    out = tmp_path / "out"
    rc = cli(["mask-bag", str(source), str(out), "--model", "color_keyword", "--no-progress", *extra])
    _, err = capsys.readouterr()
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("ivm-ros mask-bag: error: "), err
    assert said in err and "Traceback" not in err
    assert not out.exists()


def test_an_existing_output_is_never_overwritten(tmp_path, capsys):
    bag = tmp_path / "in"
    synthetic.write_bag(bag, "mcap", frames=2, size=SIZE)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    rc = cli(["mask-bag", str(bag), str(tmp_path / "out"), "--instruction", RED, "--no-progress"])
    assert rc == 2 and "exists already" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
