"""``ivm-ros mask-bag INPUT OUTPUT``: mask the camera topics of a recorded rosbag2 (MCAP or sqlite3) into a new
rosbag2 MCAP bag (``ros2 bag info`` / ``ros2 bag play`` / Foxglove read it), through the same pipeline as
masking_node; no ROS install needed.

Each camera topic T gains T/masked and T/mask at the frame's log time, with its header; every input topic is
copied unchanged. The newest instruction logged at or before a frame applies (--instruction-topic); --instruction
gives one for the whole bag, or until the first message on the topic. Exit status 2 with one line for a bag,
topic, model or setting that cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from ivm_ros.bags import BagError
from ivm_ros.bags.mask_bag import BEFORE_INSTRUCTION, MaskBagJob, MaskBagOptions
from ivm_ros.inputs import InputRejected, check_instruction
from ivm_ros.masking import CROP_MODES, MODES, MaskingConfig
from ivm_ros.pipeline import FAIL_SAFE_ACTIONS, FailSafeSettings, MaskingPipeline
from ivm_ros.plugins import PluginLoadError

_D = MaskingConfig()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ivm-ros mask-bag", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", type=Path, help="rosbag2 folder (metadata.yaml + .mcap or .db3)")
    p.add_argument("output", type=Path, nargs="?", help="new rosbag2 MCAP folder (optional with --frames-dir)")
    p.add_argument("--image-topic", action="append", default=[], help="camera topic, Image or CompressedImage "
                   "(repeatable; default: every such topic)")
    p.add_argument("--instruction-topic", default="", help="std_msgs/String topic of the instructions")
    p.add_argument("--instruction", default="", help="instruction for the whole bag, or until the topic's first")
    p.add_argument("--before-instruction", default="pass_through", choices=BEFORE_INSTRUCTION,
                   help="frames before any instruction: written unmasked or dropped")
    p.add_argument("--model", default="lite", help="predictor: a registered name (ivm-ros predictors) or module:Class")
    p.add_argument("--model-config", action="append", default=[], metavar="KEY=VALUE",
                   help="predictor setting (repeatable; VALUE read as YAML)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--output-suffix", default="masked", help="masked frames of topic T go to T/SUFFIX")
    p.add_argument("--mask-suffix", default="mask", help="masks of topic T go to T/SUFFIX ('' : no mask topics)")
    p.add_argument("--raw-output", action="store_true", help="write CompressedImage topics' outputs as raw Images")
    p.add_argument("--drop-input-images", action="store_true", help="leave the masked camera topics out")
    p.add_argument("--compression", default="none", choices=("none", "zstd"), help="MCAP chunk compression")
    p.add_argument("--frames-dir", type=Path, help="also write masked frames and masks as PNG + frames.csv")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object as the last line")
    _masking_arguments(p.add_argument_group("masking (as masking_node's parameters)"))
    return p


def _masking_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--threshold", type=float, default=_D.threshold, help="probability above which a pixel is kept")
    g.add_argument("--mode", default=_D.mode, choices=MODES, help="background treatment")
    g.add_argument("--fill-color", type=int, nargs=3, default=list(_D.fill_color), metavar=("R", "G", "B"))
    g.add_argument("--dilate-ratio", type=float, default=_D.dilate_ratio, help="dilation kernel 2*int(r*H)+1 px")
    g.add_argument("--feather-ratio", type=float, default=_D.feather_ratio, help="feathering kernel, fraction of H")
    g.add_argument("--blur-ratio", type=float, default=_D.blur_ratio, help="background blur kernel (mode blur)")
    g.add_argument("--highlight-alpha", type=float, default=_D.highlight_alpha, help="background kept (highlight)")
    g.add_argument("--crop", action=argparse.BooleanOptionalAction, default=_D.crop, help="crop to the kept box")
    g.add_argument("--crop-mode", default=_D.crop_mode, choices=CROP_MODES)
    g.add_argument("--crop-resize", action=argparse.BooleanOptionalAction, default=_D.crop_resize)
    g.add_argument("--release-compat", action="store_true", help="the IVM release's fail-safe and crop")
    g.add_argument("--fail-safe", default="keep", choices=FAIL_SAFE_ACTIONS, help="no pixel above threshold")
    g.add_argument("--fail-safe-hold", type=int, default=15, help="hold_last: frames that reuse the last mask")


def _model_settings(items: list[str]) -> dict[str, Any]:
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--model-config wants KEY=VALUE, got {item!r}")
        settings[key.strip()] = yaml.safe_load(value)
    return settings


def _settings(args: argparse.Namespace) -> tuple[MaskingConfig, FailSafeSettings, MaskBagOptions]:
    """The masking config, fail-safe and job options from the arguments; ValueError names a bad one."""
    config = MaskingConfig(
        threshold=args.threshold, mode=args.mode, fill_color=tuple(args.fill_color), dilate_ratio=args.dilate_ratio,
        feather_ratio=args.feather_ratio, blur_ratio=args.blur_ratio, highlight_alpha=args.highlight_alpha,
        crop=args.crop, crop_mode=args.crop_mode, crop_resize=args.crop_resize, release_compat=args.release_compat)
    fail_safe = FailSafeSettings(args.fail_safe, args.fail_safe_hold)
    if not args.instruction_topic and not args.instruction.strip():
        raise ValueError("give --instruction-topic TOPIC or --instruction TEXT (or both)")
    if args.instruction.strip():
        try:
            check_instruction(args.instruction, 1000)
        except InputRejected as exc:
            raise ValueError(f"--instruction {args.instruction!r} cannot be used ({exc.reason})") from None
    options = MaskBagOptions(
        image_topics=tuple(args.image_topic), instruction_topic=args.instruction_topic, instruction=args.instruction,
        before_instruction=args.before_instruction, output_suffix=args.output_suffix, mask_suffix=args.mask_suffix,
        raw_output=args.raw_output, drop_input_images=args.drop_input_images, compression=args.compression,
        frames_dir=args.frames_dir)
    if args.output is None and args.frames_dir is None:
        raise ValueError("give OUTPUT (a new bag folder) or --frames-dir DIR")
    if args.output is not None and args.output.exists():
        raise ValueError(f"output {args.output} exists already; choose a new path")
    return config, fail_safe, options


def _pipeline(args: argparse.Namespace, config: MaskingConfig, fail_safe: FailSafeSettings) -> MaskingPipeline:
    import torch

    from ivm_ros.models.registry import load_predictor

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        predictor = load_predictor(args.model, _model_settings(args.model_config))
    except (PluginLoadError, OSError, TypeError) as exc:
        raise ValueError(f"cannot load predictor {args.model!r}: {exc}") from None
    return MaskingPipeline(predictor, config, fail_safe)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        config, fail_safe, options = _settings(args)
        with MaskBagJob(args.input, options) as job:  # the bag and its topics are checked before the model loads
            pipeline = _pipeline(args, config, fail_safe)
            try:
                summary = job.run(pipeline, args.output, progress=not args.no_progress)
            finally:
                pipeline.close()
    except (BagError, ValueError) as exc:
        print(f"ivm-ros mask-bag: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ivm-ros mask-bag: interrupted; no output bag was left", file=sys.stderr)
        return 130
    print(summary.text())
    where = [str(p) for p in (args.output, args.frames_dir) if p is not None]
    print(f"wrote {' and '.join(where)}")
    if args.json:
        print(json.dumps(summary.as_dict(), sort_keys=True))
    return 0
