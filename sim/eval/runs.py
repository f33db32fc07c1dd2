"""What the evaluation commands (``calvin-eval``, ``simpler-eval``; ``lite-eval``, ``photo-check``) share about
options and their ``--out`` folder: ``KEY=VALUE`` settings, the rows a run already finished (``--resume``; a folder
made with other settings is refused), the standard error of a mean, the name of the worker that ran a job and a
one-shot evaluation's report files."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ivm_ros.commands.options import key_values

__all__ = ["key_values", "finished_rows", "stderr", "worker_id", "write_report"]


def finished_rows(out: Path, name: str, settings: dict[str, Any], resume: bool, prog: str) -> list[dict[str, Any]]:
    """The JSON rows of ``out/name`` (one per finished job) for ``--resume``; [] when there is none. SystemExit when
    the file exists without ``resume``, or when ``out/settings.json`` holds other ``settings``."""
    jsonl, saved = out / name, out / "settings.json"
    if not jsonl.exists():
        return []
    if not resume:
        raise SystemExit(f"{prog}: {jsonl} exists: add --resume to continue it, or choose another --out")
    old = json.loads(saved.read_text()) if saved.exists() else None
    if old != settings:
        raise SystemExit(f"{prog}: {out} holds a run with other settings ({old}); choose another --out")
    return [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]


def stderr(values: Sequence[float]) -> float:
    """Standard error of the mean (sample standard deviation / sqrt(n)); 0 for fewer than 2 values."""
    v = np.asarray(values, np.float64)
    return float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0


def worker_id() -> str:
    """``host:pid`` of this process: which worker ran a job."""
    return f"{socket.gethostname()}:{os.getpid()}"


def write_report(out: Path | None, name: str, report: dict[str, Any], as_json: bool,
                 draw: Callable[[Path], Path]) -> None:
    """A one-shot evaluation's outputs (``lite-eval``, ``photo-check``): with ``out``, ``<out>/<name>.json``
    (indented) and the picture ``draw(out)`` writes (it returns the file); with ``as_json``, the report as one
    JSON line last on stdout."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(report, indent=1))
        print(f"wrote {out / f'{name}.json'} and {draw(out)}")
    if as_json:
        print(json.dumps(report))
