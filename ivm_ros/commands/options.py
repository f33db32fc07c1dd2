"""Command-line option parsing the commands share."""

from __future__ import annotations

import json
from typing import Any


def key_values(items: list[str], what: str, prog: str) -> tuple[tuple[str, Any], ...]:
    """``["k=v", ...]`` -> ``(("k", v), ...)``; each value parsed as JSON when it is JSON, else kept as a string.
    SystemExit naming ``prog`` and ``what`` (the option) for an item without ``=``."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{prog}: {what} takes KEY=VALUE, got {item!r}")
        try:
            out.append((key, json.loads(value)))
        except json.JSONDecodeError:
            out.append((key, value))
    return tuple(out)
