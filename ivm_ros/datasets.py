"""The simulator's on-disk datasets (``index.json`` + ``.npz`` files, never pickled), as read by training code."""

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
