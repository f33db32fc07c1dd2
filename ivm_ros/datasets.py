"""The simulator's on-disk datasets (``index.json`` + ``.npz`` files, never pickled), as read by training code and
continued by the commands that write them (``--resume``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_index(root: str | Path, fmt: str, make_with: str) -> dict[str, Any]:
    """``root/index.json`` after checking its format string; errors say what is wrong and which command makes
    such a folder (``make_with``)."""
    path = Path(root) / "index.json"
    if not path.is_file():
        raise FileNotFoundError(f"{root} has no index.json; make one with `{make_with}`")
    index = json.loads(path.read_text())
    if index.get("format") != fmt:
        raise ValueError(f"{path}: format {index.get('format')!r}, expected {fmt!r}")
    return index


def start_index(out: Path, args: dict[str, Any], resume: bool, prog: str, fresh: dict[str, Any]) -> dict[str, Any]:
    """The index a writing command starts from: ``out/index.json`` when ``resume`` and it was made with the same
    ``args``, else ``fresh`` when there is none. SystemExit naming ``prog`` when it exists without ``resume`` or
    with other ``args``."""
    path = Path(out) / "index.json"
    if not path.exists():
        return fresh
    if not resume:
        raise SystemExit(f"{prog}: {path} exists: add --resume to continue it, or choose another --out")
    index = json.loads(path.read_text())
    if index.get("args") != args:
        raise SystemExit(f"{prog}: {out} was made with other settings ({index.get('args')})")
    return index
