"""The ``ivm-ros`` command.

Subcommands and benchmarks are looked up by name and imported only when run, so ``ivm-ros --help`` stays
fast. Packages that build on ivm_ros (``sim/`` -> ``ivm_ros_sim``) add their own through the entry-point
groups ``ivm_ros.commands`` and ``ivm_ros.benches`` (see setup.py): ivm_ros never imports them by name.

Every command is a function ``main(argv: list[str]) -> int``.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

#: Built-in subcommands: name -> ("module:function", one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "ivm-convert": (
        "ivm_ros.commands.ivm_convert:main",
        "IVM-V1.0 release files (SAM + LLaVA + IVM) -> one safetensors",
    ),
    "demo": ("ivm_ros.commands.demo:main", "mask a real photo through the real masking node and save the results"),
    "doctor": ("ivm_ros.commands.doctor:main", "check this install and the camera topic: transport, QoS, frame loss, "
               "model, policy, sim assets"),
    "mask": ("ivm_ros.commands.mask:main", "mask image files offline with a predictor (no ROS)"),
    "mask-bag": ("ivm_ros.commands.mask_bag:main", "mask the camera topics of a rosbag2 (MCAP or sqlite3) into a "
                 "new MCAP bag (no ROS)"),
    "predictors": ("ivm_ros.commands.predictors:main", "list registered mask predictors and their settings"),
    "sim-assets": ("ivm_ros.commands.sim_assets:main", "where the simulator's CALVIN assets are; download, "
                   "install or link them (checked against the pinned release)"),
}

#: Built-in benchmarks: name -> ("module:function", one-line help).
BENCHES: dict[str, tuple[str, str]] = {
    "bag": ("ivm_ros.commands.bench.bag:main", "ivm-ros mask-bag frames/s vs the masking pipeline alone (one run)"),
    "ivm": ("ivm_ros.commands.bench.ivm:main", "IVM-V1.0 engine vs the release's reference path (--tiny on CPU)"),
    "lite": ("ivm_ros.commands.bench.lite:main", "lite predictor and full masking pipeline per frame, threads x sizes"),
    "masking": ("ivm_ros.commands.bench.masking:main", "masking library vs an OpenCV/NumPy reference"),
    "policy": ("ivm_ros.commands.bench.policy:main", "embedded policy step: act(), jitted vs eager forward"),
    "propagation": ("ivm_ros.commands.bench.propagation:main", "mask carried by optical flow (masks at camera "
                    "rate) vs the lite predictor, ms per frame and ratio"),
    "node": ("ivm_ros.commands.bench.node:main", "masking node overhead and frame loss between two processes"),
}


def _plugins(group: str) -> dict[str, tuple[str, str]]:
    found = {}
    for ep in entry_points(group=group):
        found[ep.name] = (ep.value, f"(from {ep.dist.name if ep.dist else 'plugin'})")
    return found


def _run(target: str, argv: list[str]) -> int:
    module_name, _, func = target.partition(":")
    return int(getattr(importlib.import_module(module_name), func)(argv) or 0)


def _usage(commands: dict[str, tuple[str, str]], benches: dict[str, tuple[str, str]]) -> str:
    lines = ["usage: ivm-ros <command> [args]   (ivm-ros <command> --help for details)", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in sorted(commands.items())]
    lines += ["  bench NAME   run a benchmark (--json: one JSON object as the last line)", "", "benchmarks:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in sorted(benches.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {**COMMANDS, **_plugins("ivm_ros.commands")}
    benches = {**BENCHES, **_plugins("ivm_ros.benches")}
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(commands, benches))
        return 0
    name, rest = argv[0], argv[1:]
    if name == "bench":
        if not rest or rest[0] not in benches:
            print(_usage(commands, benches), file=sys.stderr)
            print(f"\nivm-ros bench: choose one of {sorted(benches)}", file=sys.stderr)
            return 2
        return _run(benches[rest[0]][0], rest[1:])
    if name not in commands:
        print(_usage(commands, benches), file=sys.stderr)
        print(f"\nivm-ros: unknown command {name!r}", file=sys.stderr)
        return 2
    return _run(commands[name][0], rest)


if __name__ == "__main__":
    raise SystemExit(main())
