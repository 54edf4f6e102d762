"""Shared fixtures: the real sample data beside the project (skipped cleanly when absent), an
isolated cache per test session, and a small demo corpus built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A file of the real sample data in ``../shared/data``; skips the test when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real sample data not available ({p} missing)")
    return p


@pytest.fixture(scope="session")
def shared():
    """``shared("glove", "x.txt.gz")`` -> path of a real sample file, or skip the test."""
    return shared_path


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep GloVe caches, checksums and the demo corpus of the tests away from the user's cache."""
    cache = tmp_path_factory.mktemp("emoprep-cache")
    old = os.environ.get("EMOPREP_CACHE")
    os.environ["EMOPREP_CACHE"] = str(cache)
    os.environ.pop("EMOPREP_GLOVE", None)
    # No test may touch the network; HuggingFace libraries also keep their caches in the sandbox.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HOME"] = str(cache / "hf")
    yield cache
    if old is None:
        os.environ.pop("EMOPREP_CACHE", None)
    else:
        os.environ["EMOPREP_CACHE"] = old


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-video, 12-clip demo corpus in the raw MOSEI layout (built once per session)."""
    from emoprep.extraction.readers.demo.corpus import build_demo

    root = tmp_path_factory.mktemp("small-demo") / "tree"
    build_demo(root, n_videos=4, clips_per_video=3, seed=3)
    return root


@pytest.fixture(scope="session")
def demo_shards(small_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small demo extracted with every default modality (4-row shards), once per session."""
    from emoprep.extraction.config import build_config
    from emoprep.extraction import run_extract

    out = tmp_path_factory.mktemp("demo-shards") / "shards"
    run_extract(build_config("demo", {"shard_size": 4}), small_demo, out, synchronous=True)
    return out


@pytest.fixture
def one_torch_thread():
    """One torch thread for tiny models: thread hand-offs cost more than their arithmetic (about 10x
    slower with two threads on a 2-core machine).  Autouse in tests/train and tests/predict."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def object_store():
    """A real S3 API on localhost (moto's server) for the session; ``object_store.bucket()`` gives a
    fresh ``s3://`` bucket URL and ``object_store.options`` the storage options that reach it."""
    from emoprep.testing.object_store import moto_s3

    with moto_s3() as store:
        yield store
