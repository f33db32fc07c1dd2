"""Chains fanned out over workers: in this process (``workers=0``), over a local Ray with ``workers`` processes,
or over an existing Ray cluster (``address``). Chains are independent; results stream back as they finish.

On a cluster every node needs this package and the CALVIN assets installed (same Python); the driver sends
only the settings and the chains.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
from ivm_ros_sim.eval.protocol import Chain, ChainResult
from ivm_ros_sim.eval.workers import EvalSettings, make_worker

#: One thread per worker process: BLAS, torch and XLA otherwise each start a pool per core and fight.
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                  "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
                  "PYTHONWARNINGS": "ignore"}


def run_local(chains: Sequence[Chain], settings: EvalSettings, record: frozenset[int] = frozenset()
              ) -> Iterator[tuple[ChainResult, list[np.ndarray]]]:
    """In this process, in order."""
    worker = make_worker(settings)
    try:
        for chain in chains:
            yield worker.run(chain, chain.index in record)
    finally:
        worker.close()


def _init_ray(workers: int, address: str | None) -> int:
    """Connects to ``address`` or starts a local Ray with ``workers`` CPUs; returns the number of actors to start."""
    import ray

    env = {"env_vars": {**ONE_THREAD_ENV, **{k: v for k, v in os.environ.items() if k.startswith("IVM_ROS")}}}
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=False, logging_level="ERROR")
        return workers if workers > 0 else max(1, int(ray.cluster_resources().get("CPU", 1)))
    if workers < 1:
        raise ValueError("local Ray needs --workers >= 1")
    ray.init(num_cpus=workers, include_dashboard=False, runtime_env=env, log_to_driver=False, logging_level="ERROR")
    return workers


class _RayWorker:
    """A Ray actor around the settings' worker (:func:`~ivm_ros_sim.eval.workers.make_worker`)."""

    def __init__(self, settings: EvalSettings, index: int) -> None:
        self.worker = make_worker(settings, index)

    def run(self, chain: Chain, record: bool) -> tuple[ChainResult, list[np.ndarray]]:
        return self.worker.run(chain, record)


def run_ray(chains: Sequence[Chain], settings: EvalSettings, workers: int, address: str | None = None,
            record: frozenset[int] = frozenset()) -> Iterator[tuple[ChainResult, list[np.ndarray]]]:
    """On Ray: one actor (one CPU, one env + agent) per worker; chains go to whichever actor is free."""
    import ray
    from ray.util import ActorPool

    n = _init_ray(workers, address)
    try:
        actor = ray.remote(num_cpus=1)(_RayWorker)
        pool = ActorPool([actor.remote(settings, i) for i in range(min(n, len(chains)) or 1)])
        yield from pool.map_unordered(lambda a, c: a.run.remote(c, c.index in record), list(chains))
    finally:
        ray.shutdown()


def run_chains(chains: Sequence[Chain], settings: EvalSettings, workers: int = 0, address: str | None = None,
               record: frozenset[int] = frozenset()) -> Iterator[tuple[ChainResult, list[np.ndarray]]]:
    """(result, frames) per chain as they finish (any order with Ray; in order locally)."""
    if workers == 0 and not address:
        return run_local(chains, settings, record)
    return run_ray(chains, settings, workers, address, record)
