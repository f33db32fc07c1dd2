"""``calvin-eval`` on Ray: a local Ray with 2 workers and a real two-node cluster on this machine (``ray start
--head`` plus a second ``ray start --address``, each its own raylet) give the same per-chain outcomes as running
the chains in this process."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ivm_ros_sim.eval import calvin_eval

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

CHAINS = ["--policy", "expert", "--chains", "4", "--start", "1", "--gifs", "0"]


def _outcomes(out: Path) -> dict[int, tuple[int, list[int]]]:
    rows = [json.loads(line) for line in (out / "chains.jsonl").read_text().splitlines()]
    return {r["index"]: (r["completed"], r["steps"]) for r in rows}


def _workers(out: Path) -> set[str]:
    return {json.loads(line)["worker"] for line in (out / "chains.jsonl").read_text().splitlines()}


def _ray_start(*args: str) -> None:
    exe = str(Path(sys.executable).with_name("ray"))
    subprocess.run([exe, "start", "--num-cpus", "1", "--disable-usage-stats", *args], check=True,
                   capture_output=True, timeout=120, env=os.environ)


def test_per_chain_outcomes_do_not_depend_on_workers_or_nodes(tmp_path, ray_env, capsys):
    assert calvin_eval.main([*CHAINS, "--workers", "0", "--out", str(tmp_path / "inproc")]) == 0
    reference = _outcomes(tmp_path / "inproc")
    assert sorted(reference) == [1, 2, 3, 4]

    assert calvin_eval.main([*CHAINS, "--workers", "2", "--out", str(tmp_path / "local")]) == 0
    assert _outcomes(tmp_path / "local") == reference
    assert len(_workers(tmp_path / "local")) == 2

    port = random.randint(20000, 29999)
    _ray_start("--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", str(ray_env))
    _ray_start("--address", f"127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    ray.init(address=f"127.0.0.1:{port}", logging_level="ERROR")
    try:
        while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    finally:
        ray.shutdown()
    out = tmp_path / "cluster"
    assert calvin_eval.main([*CHAINS, "--workers", "2", "--address", f"127.0.0.1:{port}", "--out", str(out)]) == 0
    assert _outcomes(out) == reference
    assert len(_workers(out)) == 2  # one actor per node (each node has one CPU)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["workers"] == 2
