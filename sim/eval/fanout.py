"""Independent evaluation jobs (CALVIN chains, SimplerEnv episodes) fanned out over workers: in this process
(``workers=0``), over a local Ray with ``workers`` processes, or over an existing Ray cluster (``address``). Results
stream back as they finish.

A worker is built in its process by ``factory(settings, index)`` (``index``: the Ray actor's, None in this process)
and has ``run(job, record) -> (result, frames)`` and ``close()``; ``record`` is whether ``key(job)`` is in the
``record`` set (frames kept for GIFs). On a cluster every node needs this package and the simulator's assets
installed (same Python); the driver sends only the settings and the jobs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ivm_ros_sim.eval.protocol import Chain, ChainResult
    from ivm_ros_sim.eval.workers import EvalSettings

#: One thread per worker process: BLAS, torch and XLA otherwise each start a pool per core and fight.
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                  "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
                  "PYTHONWARNINGS": "ignore"}

WorkerFactory = Callable[[Any, "int | None"], Any]  #: (settings, actor index or None) -> worker
Outcome = tuple[Any, list[np.ndarray]]  #: (result, frames) of one job


def _index(job: Any) -> Hashable:
    return job.index


def _calvin_worker(settings: Any, index: int | None = None) -> Any:
    from ivm_ros_sim.eval.workers import make_worker

    return make_worker(settings, index)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """This process computes as a Ray worker does (:data:`ONE_THREAD_ENV`), restored afterwards: torch on one
    intra-op thread (now, when torch is loaded; at import otherwise). A chain's outcome must not depend on how it is
    run, and torch's results do depend on its thread count: the lite model's probabilities differ by ~1e-6 between
    1 and 2 threads, and a closed loop amplifies that (chain 0 with the masked policy: 0 subtasks on one thread, 2 on
    two). XLA's flags take effect only if JAX has not started its CPU backend yet (its results were found identical
    either way)."""
    saved = {k: os.environ.get(k) for k in ONE_THREAD_ENV}
    os.environ.update(ONE_THREAD_ENV)
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(threads or os.cpu_count() or 1)


def run_local(jobs: Sequence[Any], settings: Any, record: frozenset = frozenset(),
              factory: WorkerFactory = _calvin_worker, key: Callable[[Any], Hashable] = _index) -> Iterator[Outcome]:
    """In this process, in order, one-threaded as a Ray worker (:func:`one_thread`)."""
    with one_thread():
        worker = factory(settings, None)
        try:
            for job in jobs:
                yield worker.run(job, key(job) in record)
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
    """A Ray actor around the worker ``factory`` builds."""

    def __init__(self, factory: WorkerFactory, settings: Any, index: int) -> None:
        self.worker = factory(settings, index)

    def run(self, job: Any, record: bool) -> Outcome:
        return self.worker.run(job, record)


def run_ray(jobs: Sequence[Any], settings: Any, workers: int, address: str | None = None,
            record: frozenset = frozenset(), factory: WorkerFactory = _calvin_worker,
            key: Callable[[Any], Hashable] = _index) -> Iterator[Outcome]:
    """On Ray: one actor (one CPU, one worker) per worker; jobs go to whichever actor is free."""
    import ray
    from ray.util import ActorPool

    n = _init_ray(workers, address)
    try:
        actor = ray.remote(num_cpus=1)(_RayWorker)
        pool = ActorPool([actor.remote(factory, settings, i) for i in range(min(n, len(jobs)) or 1)])
        yield from pool.map_unordered(lambda a, j: a.run.remote(j, key(j) in record), list(jobs))
    finally:
        ray.shutdown()


def run_jobs(jobs: Sequence[Any], settings: Any, factory: WorkerFactory, workers: int = 0,
             address: str | None = None, record: frozenset = frozenset(),
             key: Callable[[Any], Hashable] = _index) -> Iterator[Outcome]:
    """(result, frames) per job as they finish (any order with Ray; in order locally)."""
    if workers == 0 and not address:
        return run_local(jobs, settings, record, factory, key)
    return run_ray(jobs, settings, workers, address, record, factory, key)


def run_chains(chains: Sequence[Chain], settings: EvalSettings, workers: int = 0, address: str | None = None,
               record: frozenset[int] = frozenset()) -> Iterator[tuple[ChainResult, list[np.ndarray]]]:
    """CALVIN chains (:func:`~ivm_ros_sim.eval.workers.make_worker`): (result, frames) per chain as they finish."""
    return run_jobs(chains, settings, _calvin_worker, workers, address, record)
