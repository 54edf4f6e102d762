"""``--glove s3://...``: each machine that needs the vectors fetches the file once into its own GloVe
cache, keyed by the sha256 the run recorded, so workers need no disk shared with the driver."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from emoprep.errors import SetupError
from emoprep.extraction import run_extract
from emoprep.extraction.config import build_config
from emoprep.extraction.engine.worker import fetch_resources
from emoprep.extraction.glove import GloveVectors, ensure_remote_glove
from emoprep.extraction.media.fetch import MediaAccess
from emoprep.extraction.pipeline import prepare_text
from emoprep.format.storage import filesystem

WORDS = ["the", "I", "i", "it", "is", "so", "angry", "happy", ".", ","]


@pytest.fixture()
def glove(object_store, tmp_path: Path) -> tuple[Path, str]:
    """A 300-d GloVe text file, locally and at a bucket URL."""
    rng = np.random.default_rng(1)
    text = "".join(w + " " + " ".join(f"{x:.5f}" for x in rng.normal(size=300)) + "\n" for w in WORDS)
    local = tmp_path / "glove.test.300d.txt"
    local.write_text(text)
    url = object_store.bucket() + "/vectors/glove.test.300d.txt"
    fs, key = filesystem(url, object_store.options)
    fs.pipe_file(key, text.encode())
    return local, url


@pytest.fixture()
def own_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Switch to another machine's cache (nothing shared with what came before)."""
    def switch(name: str) -> Path:
        monkeypatch.setenv("EMOPREP_CACHE", str(tmp_path / name))
        return tmp_path / name
    return switch


def test_fetched_once_into_a_cache_keyed_by_checksum(glove, object_store, own_disk) -> None:
    local, url = glove
    own_disk("driver")
    target, checksum = ensure_remote_glove(url, object_store.options)
    assert checksum == hashlib.sha256(local.read_bytes()).hexdigest() and checksum[:24] in str(target)
    np.testing.assert_allclose(GloveVectors(target).lookup(["angry"])[0][0],
                               [float(x) for x in local.read_text().splitlines()[6].split()[1:]], atol=1e-5)
    assert not any(p.name.startswith(".download") for p in target.parent.parent.iterdir())
    fs, key = filesystem(url, object_store.options)
    fs.rm_file(key)  # the cache is found by the run's checksum: the file is not read again
    assert ensure_remote_glove(url, object_store.options, checksum) == (target, checksum)


def test_a_worker_machine_builds_its_own_cache_from_the_url(glove, object_store, own_disk) -> None:
    _, url = glove
    own_disk("driver")
    config = prepare_text(build_config("demo", {"modalities": ["text"]}), url, storage_options=object_store.options)
    assert config.text.glove == url and config.text.glove_checksum
    worker_cache = own_disk("worker")
    fetch_resources(config, MediaAccess(object_store.options))
    assert (worker_cache / "glove" / config.text.glove_checksum[:24] / "vectors.kv").is_file()
    other = own_disk("late-worker")
    fs, key = filesystem(url, object_store.options)
    fs.pipe_file(key, b"the " + b"0.5 " * 299 + b"0.5\n")  # replaced after the run started
    with pytest.raises(SetupError, match="changed during the run"):
        fetch_resources(config, MediaAccess(object_store.options))
    assert not (other / "glove" / config.text.glove_checksum[:24]).exists()


def test_missing_glove_url_is_a_setup_error(object_store) -> None:
    url = object_store.bucket() + "/nope/glove.txt"
    with pytest.raises(SetupError, match="GloVe file not found: s3://") as info:
        prepare_text(build_config("demo", {"modalities": ["text"]}), url, storage_options=object_store.options)
    assert object_store.options["secret"] not in str(info.value)


def test_text_columns_equal_with_the_local_file(glove, object_store, small_demo: Path, tmp_path: Path) -> None:
    local, url = glove
    config = build_config("demo", {"shard_size": 4, "modalities": ["text"]})
    a = run_extract(config, small_demo, tmp_path / "a", glove=str(local), synchronous=True, limit=4)
    b = run_extract(config, small_demo, tmp_path / "b", glove=url, storage_options=object_store.options,
                    synchronous=True, limit=4)
    assert a.oov_rate == b.oov_rate and a.oov_rate < 1.0
    for shard in sorted((tmp_path / "a").glob("*-of-*.parquet")):
        assert pq.read_table(tmp_path / "b" / shard.name).equals(pq.read_table(shard))


def test_processes_of_one_machine_fetch_and_build_once_while_the_others_wait(glove, object_store, own_disk,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers of one machine asking for the same GloVe URL at once (a node with a worker per core):
    one downloads it and builds the cache, the others wait for its lock and then use that cache.  The
    lock is a file lock, so threads holding their own lock file handles stand in for processes."""
    from concurrent.futures import ThreadPoolExecutor

    from emoprep.extraction import glove as glove_module

    local, url = glove
    own_disk("node")
    counts = {"download": 0, "build": 0}

    def counted(name: str):  # noqa: ANN202
        real = getattr(glove_module, name)

        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            counts["download" if name == "_download" else "build"] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(glove_module, "_download", counted("_download"))
    monkeypatch.setattr(glove_module, "_build_cache", counted("_build_cache"))
    with ThreadPoolExecutor(4) as pool:
        remote = list(pool.map(lambda _: ensure_remote_glove(url, object_store.options), range(4)))
    assert counts == {"download": 1, "build": 1}
    assert len(set(remote)) == 1 and remote[0][1] == hashlib.sha256(local.read_bytes()).hexdigest()

    own_disk("other-node")  # and a local file, built into an empty cache by 4 at once
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(lambda _: glove_module.ensure_glove_cache(local), range(4)))
    assert counts == {"download": 1, "build": 2} and len(set(built)) == 1 and built[0].is_file()


def test_a_cache_on_a_filesystem_without_locks_is_built_all_the_same(glove, own_disk,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import filelock

    from emoprep.extraction.glove import ensure_glove_cache

    def refused(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(filelock.FileLock, "acquire", refused)
    local, _ = glove
    own_disk("nfs-home")
    target = ensure_glove_cache(local)
    assert target.is_file() and len(GloveVectors(target).index) == len(set(WORDS))
