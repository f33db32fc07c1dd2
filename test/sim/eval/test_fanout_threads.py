"""Jobs run in this process (``--workers 0``) compute one-threaded, as a Ray worker does, so a chain's outcome does
not depend on how it is run (torch's results change with its thread count); the process's settings come back after."""

from __future__ import annotations

import os

import torch
from ivm_ros_sim.eval import fanout


class ThreadsSeenForTest:
    """A worker double that records the torch threads and OMP setting each job ran with."""

    def __init__(self, settings, index) -> None:
        pass

    def run(self, job, record):
        return (job, torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")), []

    def close(self) -> None:
        pass


class Job:
    def __init__(self, index: int) -> None:
        self.index = index


def test_local_jobs_run_one_threaded_and_settings_come_back(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = [r for r, _ in fanout.run_local([Job(0), Job(1)], None, factory=ThreadsSeenForTest)]
        assert [(threads, omp) for _, threads, omp in out] == [(1, "1"), (1, "1")]
        assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
    finally:
        torch.set_num_threads(before)


def test_one_thread_restores_unset_variables(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    with fanout.one_thread():
        assert "intra_op_parallelism_threads=1" in os.environ["XLA_FLAGS"]
    assert "XLA_FLAGS" not in os.environ
