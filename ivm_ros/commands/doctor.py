"""``ivm-ros doctor``: is this install and this ROS graph ready to mask a camera? One line per check, with advice.

    ivm-ros doctor [--camera-topic /camera/image_raw] [--seconds 3] [--image-qos sensor_data] [--no-load] [--json]

Checks, in order: the RMW, Fast DDS profile and discovery settings of this shell (what a node started from it
gets); the camera topic's publishers and their QoS against masking_node's ``image_qos``; the frames a best-effort
and a reliable subscription receive over ``--seconds``, against the rate the camera's header stamps imply and the
samples DDS reports lost; what the camera's process uses (read from its environment when its command line names
the node, else judged by the loss); whether the model's and the policy's Python packages are there and they load
(``--no-load``: packages only); the simulator's assets.

The probe listens like masking_node under manipulation.launch.py: with the shipped Fast DDS profile
(``--fastdds-profile keep``: this shell's; ``--fastdds-profile FILE``: another), so a loss it measures is on the
camera's side. Exit status 1 when any check is an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from ivm_ros import doctor
from ivm_ros.doctor import Finding
from ivm_ros.paths import config_file, fastdds_major, variables_for
from ivm_ros.runtime import quiet_progress_bars

LAUNCH_TOPIC = "/camera/image_raw"  #: manipulation.launch.py's default camera_topic


def _use_probe_profile(choice: str, major: int | None) -> Finding:
    """Sets the Fast DDS profile this process listens with (before rclpy starts) and says which."""
    if choice == "keep":
        name, _ = doctor.profile_variable(os.environ, major)
        shown = f"{name}={os.environ[name]}" if name else "Fast DDS defaults"
        return Finding("probe", "ok", f"listens with this shell's profile: {shown} (--fastdds-profile keep)")
    path = config_file("fastdds.xml") if choice == "shipped" else Path(choice)
    names = variables_for(major)
    for name in names:
        os.environ[name] = str(path)
    why = "the shipped profile, as manipulation.launch.py gives masking_node" if choice == "shipped" else "chosen"
    return Finding("probe", "ok", f"listens with {'='.join([*names, str(path)])} ({why}), so a loss it measures is "
                   "on the camera's side; --fastdds-profile keep listens with this shell's")


def _graph_findings(args: argparse.Namespace, major: int | None, report: dict[str, Any]) -> list[Finding]:
    """The camera topic's publishers, rates and the camera side; the raw numbers go into ``report``."""
    found = [_use_probe_profile(args.fastdds_profile, major)]
    import rclpy

    from ivm_ros.ros.graph_probe import probe_topic

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        probe = probe_topic(context, args.camera_topic, args.seconds, args.discovery_seconds)
    finally:
        rclpy.shutdown(context=context)
    rate_hz = doctor.stamp_rate(probe.stamps_ns)
    report.update(publishers=probe.publishers, received=probe.received, lost=probe.lost, stamp_rate_hz=rate_hz,
                  incompatible=probe.incompatible, seconds=args.seconds)
    found += doctor.qos_findings(args.camera_topic, probe.publishers, args.image_qos)
    if not probe.counted:
        return found  # no publishers, or not one image type
    be, rel, lost = probe.received["best_effort"], probe.received["reliable"], probe.lost["best_effort"]
    found += doctor.rate_findings(args.camera_topic, args.seconds, be, rel, rate_hz, probe.publishers, lost, major)
    loss = doctor.measured_loss(be, lost, args.seconds, rate_hz)
    processes = {p["node"]: doctor.node_processes(p["node"]) for p in probe.publishers}
    return found + doctor.camera_side_findings(probe.publishers, processes, loss, major)


def _load(kind: str, name: str) -> dict[str, Any]:
    """Loads model or policy ``name`` with its default settings and returns its description."""
    if kind == "model":
        from ivm_ros.models.registry import load_predictor as load
    else:
        from ivm_ros.policies.registry import load_policy as load
    plugin = load(name, {})
    try:
        return plugin.describe()
    finally:
        plugin.close()


def _load_findings(args: argparse.Namespace) -> list[Finding]:
    """Packages (found, not imported) and, unless ``--no-load``, loading the model and the policy."""
    chosen = [(kind, name) for kind, name in (("model", args.model), ("policy", args.policy)) if name != "none"]
    found = doctor.package_findings([f"{kind} {name}" for kind, name in chosen] + ["simulator"])
    missing = {f.check.removesuffix(" packages") for f in found if f.level == "error"}
    otherwise = {"model": "`ivm-ros predictors` lists the models and their settings",
                 "policy": "see README.md, section policy_node, for the policies and their settings"}
    for kind, name in chosen:
        if not args.no_load and f"{kind} {name}" not in missing:
            found.append(doctor.load_finding(f"{kind} {name}", lambda k=kind, n=name: _load(k, n), otherwise[kind]))
    try:
        from ivm_ros.assets import find_calvin_assets
    except ImportError:
        return found + [doctor.assets_finding(None, "ivm_ros.assets is not part of this install")]
    return found + [doctor.assets_finding(find_calvin_assets)]


def _seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivm-ros doctor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--camera-topic", default=LAUNCH_TOPIC, help="the image topic masking_node reads "
                        f"(default: the launch file's, {LAUNCH_TOPIC})")
    parser.add_argument("--image-qos", default="sensor_data", choices=("sensor_data", "reliable", "system_default"),
                        help="masking_node's image_qos, to check the publishers against (default sensor_data)")
    parser.add_argument("--seconds", type=_seconds, default=3.0, help="how long to count frames, s (default 3)")
    parser.add_argument("--discovery-seconds", type=_seconds, default=5.0,
                        help="how long to wait for the camera's publisher to be discovered, s (default 5)")
    parser.add_argument("--fastdds-profile", default="shipped", metavar="shipped|keep|FILE",
                        help="the Fast DDS profile the probe listens with (default: the shipped one, like the launch)")
    parser.add_argument("--model", default="lite", help="masking_node's model to check (default lite; none: skip)")
    parser.add_argument("--policy", default="embedded", help="policy_node's policy (default embedded; none: skip)")
    parser.add_argument("--no-load", action="store_true", help="check packages only, do not load model and policy")
    parser.add_argument("--no-graph", action="store_true", help="skip the checks that need the ROS graph")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet_progress_bars()  # transformers' "Loading weights" bar would interleave with the report
    shell = dict(os.environ)  # before the probe sets its profile
    major = fastdds_major(shell)
    findings = doctor.transport_findings(shell, config_file("fastdds.xml"), major, who="this shell")
    report: dict[str, Any] = {}
    if not args.no_graph:
        findings += _graph_findings(args, major, report)
    findings += _load_findings(args)
    for finding in findings:
        print(finding.line())
    level = doctor.worst(findings)
    counts = {lvl: sum(f.level == lvl for f in findings) for lvl in ("error", "warn")}
    print(f"doctor: {level.upper()} ({counts['error']} error(s), {counts['warn']} warning(s))")
    if args.json:
        print(json.dumps({"level": level, **counts, "findings": [dataclasses.asdict(f) for f in findings],
                          "probe": report}))
    return 1 if level == "error" else 0
