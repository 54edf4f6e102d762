"""A local cluster's workers run with one thread per native pool, without Dask's profiler and with
glibc's own malloc thresholds.

The default cluster is one single-threaded worker process per core; a thread pool of OpenCV's (it
takes every core), PyTorch's or BLAS's in each worker would only make the workers compete for the
same cores (emoprep.extraction.runtime.WORKER_ENV).
"""

from __future__ import annotations

import os

from emoprep.extraction.runtime import LOCAL_CLUSTER_CONFIG, WORKER_ENV, open_executor, worker_env


def _worker_settings() -> dict:
    import cv2
    import dask
    import torch

    return {"cv2": cv2.getNumThreads(), "torch": torch.get_num_threads(),
            "env": {name: os.environ.get(name) for name in WORKER_ENV},
            "malloc_trim": os.environ.get("MALLOC_TRIM_THRESHOLD_"),
            "profile": dask.config.get("distributed.worker.profile.enabled"), "pid": os.getpid(),
            "tick": dask.config.get("distributed.admin.tick.interval")}


def test_local_cluster_workers_use_one_thread_per_pool_and_no_profiler(monkeypatch) -> None:
    for name in (*WORKER_ENV, "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    with open_executor(workers=1) as executor:
        [got] = executor.call_on_every_worker(_worker_settings).values()
    assert got["pid"] != os.getpid()  # it ran in a worker process
    assert got["env"] == WORKER_ENV
    assert got["cv2"] == 1 and got["torch"] == 1
    assert got["profile"] is False and got["tick"] == LOCAL_CLUSTER_CONFIG["distributed.admin.tick.interval"]
    assert got["malloc_trim"] is None  # glibc's adaptive thresholds (see LOCAL_CLUSTER_CONFIG)


def test_a_thread_count_set_by_the_user_is_kept(monkeypatch) -> None:
    monkeypatch.setenv("OPENCV_FOR_THREADS_NUM", "3")
    assert worker_env()["OPENCV_FOR_THREADS_NUM"] == "3" and worker_env()["OMP_NUM_THREADS"] == "1"
