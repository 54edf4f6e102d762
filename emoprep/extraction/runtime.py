"""Where the DAG runs: a local cluster (default), an existing Dask cluster, or in-process.

* default: ``distributed.LocalCluster`` with one single-threaded worker process per core (capped by the
  number of shards): the extractors are CPU-bound and hold non-thread-safe models (phonet's
  network, mediapipe), so processes, not threads, are the unit of parallelism;
* ``--scheduler tcp://host:8786`` or ``--scheduler-file PATH`` (the JSON file a scheduler started
  with ``--scheduler-file`` writes, as dask-jobqueue and SLURM setups use): join a running cluster;
  its workers must have emoprep installed (the same version and extraction backends: the pipeline
  checks) and reach the dataset and output paths, a shared filesystem or object storage
  (docs/cluster.md);
* ``--synchronous``: Dask's synchronous scheduler in this process, for debugging and tests.

All three run the same task functions; :class:`Executor` hides only how futures come back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SetupError


@dataclass
class Outcome:
    """The result of one task: its key, and either a value or the exception it raised."""

    key: Any
    value: Any = None
    error: BaseException | None = None


class Executor:
    """Runs one function call now (``call``), many as they complete (``map_unordered``), or Dask
    graphs as they complete (``compute_unordered``)."""

    description = "synchronous"
    remote = False
    """Whether the workers run outside this machine's installation (a cluster this run joined)."""

    def call(self, fn: Callable, *args: Any) -> Any:
        import dask

        return dask.compute(dask.delayed(fn, pure=False)(*args), scheduler="synchronous")[0]

    def call_on_every_worker(self, fn: Callable, *args: Any) -> dict[str, Any]:
        """``fn(*args)`` once in every worker process, all at once; their results by worker address."""
        return {"this process": self.call(fn, *args)}

    def map_unordered(self, fn: Callable, items: list[tuple[Any, tuple]]) -> Iterator[Outcome]:
        for key, args in items:
            try:
                yield Outcome(key, self.call(fn, *args))
            except Exception as exc:  # noqa: BLE001 - reported per task by the caller
                yield Outcome(key, error=exc)

    def compute_unordered(self, graphs: list[tuple[Any, Any]]) -> Iterator[Outcome]:
        """Compute ``(key, dask.delayed)`` graphs, yielding each result (or error) as it completes:
        one graph that fails does not stop the others."""
        import dask

        for key, graph in graphs:
            try:
                yield Outcome(key, dask.compute(graph, scheduler="synchronous")[0])
            except Exception as exc:  # noqa: BLE001 - reported per graph by the caller
                yield Outcome(key, error=exc)


class DistributedExecutor(Executor):
    def __init__(self, client: Any, description: str, remote: bool = False) -> None:
        self.client = client
        self.description = description
        self.remote = remote

    def call(self, fn: Callable, *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False).result()

    def call_on_every_worker(self, fn: Callable, *args: Any) -> dict[str, Any]:
        """One task pinned to each worker, so that every worker loads its models at the same time at
        the start, rather than each when its first shard task reaches it."""
        workers = list(self.client.scheduler_info()["workers"])
        futures = [self.client.submit(fn, *args, pure=False, workers=[w], allow_other_workers=False) for w in workers]
        return dict(zip(workers, self.client.gather(futures)))

    def map_unordered(self, fn: Callable, items: list[tuple[Any, tuple]]) -> Iterator[Outcome]:
        futures = {self.client.submit(fn, *args, pure=False, key=f"shard-{key}"): key for key, args in items}
        return _outcomes_as_completed(futures)

    def compute_unordered(self, graphs: list[tuple[Any, Any]]) -> Iterator[Outcome]:
        futures = dict(zip(self.client.compute([graph for _, graph in graphs]), (key for key, _ in graphs)))
        return _outcomes_as_completed(futures)


def _outcomes_as_completed(futures: dict[Any, Any]) -> Iterator[Outcome]:
    """``{future: key}`` as outcomes, in the order they finish; each future is released once read."""
    from distributed import as_completed

    for future in as_completed(futures):
        key = futures[future]
        try:
            yield Outcome(key, future.result())
        except Exception as exc:  # noqa: BLE001 - reported per task by the caller
            yield Outcome(key, error=exc)
        finally:
            future.release()


WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OPENCV_FOR_THREADS_NUM": "1"}
"""Native thread pools of a local cluster's workers: one thread each.  The workers are one
single-threaded process per core, so a pool of its own in each (OpenCV's ``parallel_for`` takes
every core by default; PyTorch, BLAS and OpenMP are already held to 1 by Dask's
``distributed.nanny.pre-spawn-environ``) only makes the workers compete for the same cores, and its
idle threads spin while they wait.  A variable already set in the environment is kept."""
LOCAL_CLUSTER_CONFIG = {
    # Dask's statistical profiler wakes every worker's event loop every 10 ms to sample the task
    # thread's stack (for the dashboard, which a local cluster here does not serve)
    "distributed.worker.profile.enabled": False,
    # Every scheduler, nanny and worker event loop wakes every 20 ms by default only to notice when it
    # has been blocked (a warning), checks memory every 100 ms and samples system metrics for the
    # dashboard every 500 ms.  Measured with 2 idle workers: 0.10 cores of polling with the defaults,
    # 0.016 cores with these (a 9-minute run of 720p takes 1-3 minutes on 2 cores: 5-15 CPU-s saved).
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",  # still well inside a part's growth
    # Dask sets MALLOC_TRIM_THRESHOLD_=65536 in its workers so that freed memory goes back to the
    # OS at once.  Setting any malloc threshold also turns off glibc's adaptive mmap threshold, so
    # every large temporary (a 720p frame is 2.7 MB; STFT blocks, network batches) is mmap'ed, page-
    # faulted in and unmapped again: measured on 720p recordings in one process, 3.2x the page
    # faults and +12% CPU seconds for the whole default pipeline.  A worker's memory is bounded by
    # its part (PART_ROWS utterances) and its models, so glibc's defaults are kept (None unsets it).
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}
"""Dask settings of the local cluster's workers (passed to the worker processes by their nannies)."""


def worker_env() -> dict[str, str]:
    """:data:`WORKER_ENV`, with any of its variables already set in this process's environment kept."""
    return {name: os.environ.get(name, value) for name, value in WORKER_ENV.items()}


def default_workers(n_tasks: int) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, n_tasks))


@contextmanager
def open_executor(
    scheduler: str | None = None, workers: int | None = None, synchronous: bool = False, n_tasks: int = 1,
    scheduler_file: str | None = None,
) -> Iterator[Executor]:
    """The executor for the chosen mode; clusters it started are shut down on exit."""
    if synchronous:
        yield Executor()
        return
    import dask
    from distributed import Client, LocalCluster

    if scheduler or scheduler_file:
        with connect(scheduler, scheduler_file) as client:
            where = f"at {scheduler}" if scheduler else f"from {scheduler_file}"
            yield DistributedExecutor(client, f"cluster {where}, {len(client.scheduler_info()['workers'])} worker(s)",
                                      remote=True)
        return
    n = workers or default_workers(n_tasks)
    with dask.config.set(LOCAL_CLUSTER_CONFIG), LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        env=worker_env(),
    ) as cluster, Client(cluster) as client:
        client.wait_for_workers(n)
        yield DistributedExecutor(client, f"local cluster, {n} worker process(es)")


def connect(scheduler: str | None = None, scheduler_file: str | None = None) -> Any:
    """A ``distributed.Client`` of a running cluster, by address or by scheduler file (not both);
    a file that does not exist, or a scheduler that does not answer, is a SetupError."""
    from distributed import Client

    if scheduler and scheduler_file:
        raise SetupError("give --scheduler or --scheduler-file, not both")
    if scheduler_file and not Path(scheduler_file).is_file():
        raise SetupError(f"scheduler file not found: {scheduler_file} (the scheduler writes it when started "
                         "with --scheduler-file; is it running, and is the path on a disk this machine sees?)")
    try:
        if scheduler_file:
            return Client(scheduler_file=scheduler_file, timeout="30s")
        return Client(scheduler, timeout="30s")
    except OSError as exc:
        raise SetupError(f"no Dask scheduler answered at {scheduler or scheduler_file}: {exc}") from exc
