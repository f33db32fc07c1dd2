"""Checks package.xml's dependency keys against a ros/rosdistro checkout (what `rosdep install` would resolve).

    python tools/check_rosdep_keys.py /path/to/rosdistro [--distros jazzy kilted rolling]

A key is a ROS package when the distro's distribution.yaml releases it, otherwise a system key from
rosdep/base.yaml or rosdep/python.yaml, resolved for Debian bookworm and Ubuntu noble (apt package, pip package,
or missing / null). Exit status 1 when any key does not resolve everywhere.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = (("debian", "bookworm"), ("ubuntu", "noble"))


def package_keys(package_xml: Path) -> list[str]:
    root = ET.parse(package_xml).getroot()
    tags = ("depend", "exec_depend", "build_depend", "test_depend")
    return sorted({e.text.strip() for tag in tags for e in root.findall(tag) if e.text})


def released_packages(rosdistro: Path, distro: str) -> set[str]:
    data = yaml.safe_load((rosdistro / distro / "distribution.yaml").read_text())
    names: set[str] = set()
    for repo, entry in data["repositories"].items():
        release = entry.get("release")
        if release:
            names.update(release.get("packages", [repo]))
    return names


def resolve(rule: object, os_name: str, codename: str) -> str | None:
    """One rosdep rule for one platform -> 'apt: ...' / 'pip: ...' or None where it does not resolve."""
    if not isinstance(rule, dict) or os_name not in rule:
        return None
    entry = rule[os_name]
    if isinstance(entry, dict) and ("pip" not in entry and "packages" not in entry):
        entry = entry.get(codename, entry.get("*"))
    if entry is None:
        return None
    if isinstance(entry, list):
        return "apt: " + " ".join(entry)
    if isinstance(entry, dict) and "pip" in entry:
        return "pip: " + " ".join(entry["pip"]["packages"])
    if isinstance(entry, dict) and "packages" in entry:
        return "apt: " + " ".join(entry["packages"])
    return None


def check(rosdistro: Path, distros: list[str], package_xml: Path = ROOT / "package.xml") -> list[str]:
    """Problems found (empty: every key resolves); prints one line per key."""
    rules: dict = {}
    for name in ("base.yaml", "python.yaml"):
        rules.update(yaml.safe_load((rosdistro / "rosdep" / name).read_text()))
    released = {d: released_packages(rosdistro, d) for d in distros}
    problems = []
    for key in package_keys(package_xml):
        if all(key in released[d] for d in distros):
            print(f"{key:<28} ROS package in {', '.join(distros)}")
            continue
        if key in rules:
            found = {f"{o} {c}": resolve(rules[key], o, c) for o, c in PLATFORMS}
            print(f"{key:<28} " + "; ".join(f"{p}: {r}" for p, r in found.items()))
            problems += [f"{key}: does not resolve on {p}" for p, r in found.items() if r is None]
        else:
            problems.append(f"{key}: neither a released package of {distros} nor a rosdep key")
            print(f"{key:<28} MISSING")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rosdistro", type=Path, help="a checkout of github.com/ros/rosdistro")
    parser.add_argument("--distros", nargs="+", default=["jazzy", "kilted", "rolling"])
    args = parser.parse_args(argv)
    problems = check(args.rosdistro, args.distros)
    for line in problems:
        print("PROBLEM", line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
