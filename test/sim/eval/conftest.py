"""Shared fixtures of the evaluation tests."""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path

import pytest


def _kill_tree_of(marker: str) -> None:
    """Ends every process whose command line names ``marker`` (this test's Ray temp dir): only what it started."""
    psutil = pytest.importorskip("psutil")
    procs = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    for p in procs:
        p.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        p.kill()


@pytest.fixture()
def ray_env(monkeypatch):
    """An isolated HOME (Ray keeps an auth token in ~/.ray; a stale one stops a second node joining) and temp dir
    (short: Ray's socket paths must fit in 107 characters)."""
    home = Path(tempfile.mkdtemp(prefix="rayhome", dir="/tmp"))
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RAY_TMPDIR", str(temp))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    yield temp
    _kill_tree_of(str(temp))
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(temp, ignore_errors=True)
