"""Small shared helpers for the ``ivm-ros bench`` commands: timing, tables and the --json line."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def time_calls(fn: Callable[[], Any], repeat: int, warmup: int = 3) -> np.ndarray:
    """Calls ``fn`` ``warmup`` then ``repeat`` times; returns each call's wall time in milliseconds."""
    for _ in range(warmup):
        fn()
    out = np.empty(repeat)
    for i in range(repeat):
        start = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - start) * 1e3
    return out


def percentiles(samples_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """p50 / p95 / max of a sample, in the sample's unit, rounded to 3 decimals."""
    a = np.asarray(samples_ms, dtype=float)
    if a.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {k: round(float(v), 3) for k, v in zip(("p50", "p95", "max"), np.percentile(a, [50, 95, 100]))}


def print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """Prints ``rows`` as an aligned text table with the given column order."""
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def emit_json(args: argparse.Namespace, payload: dict[str, Any]) -> None:
    """With --json, prints the payload as the last line of output."""
    if getattr(args, "json", False):
        print(json.dumps(payload, sort_keys=True))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)
