"""emoprep.format.storage.Folder: the same guarantees on a local folder and on S3 (moto's server)."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emoprep.errors import SetupError
from emoprep.format.storage import Folder, is_url, parse_storage_options, redact


@pytest.fixture(params=["local", "s3"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Folder:
    if request.param == "local":
        return Folder.of(tmp_path / "out")
    store = request.getfixturevalue("object_store")
    return Folder.of(store.bucket() + "/out", store.options)


def test_write_read_list_remove(folder: Folder) -> None:
    assert folder.names() == [] and not folder.exists()
    folder.mkdir()
    folder.write_text("b.json", "{}")
    folder.write_bytes("a.bin", b"\x00\x01")
    assert folder.names() == ["a.bin", "b.json"]
    assert folder.read_bytes("a.bin") == b"\x00\x01" and folder.size("a.bin") == 2
    assert folder.exists("b.json") and not folder.exists("c.json")
    folder.remove("a.bin")
    folder.remove("a.bin")  # absent: nothing to do
    assert folder.names() == ["b.json"]


def test_create_exclusive_refuses_an_existing_file(folder: Folder) -> None:
    folder.mkdir()
    assert folder.create_exclusive("lease.json", b"first")
    assert not folder.create_exclusive("lease.json", b"second")
    assert folder.read_bytes("lease.json") == b"first"


def test_upload_moves_a_finished_file_and_can_be_exclusive(folder: Folder, tmp_path: Path) -> None:
    folder.mkdir()
    staged = (folder.local or tmp_path) / ".staged"
    pq.write_table(pa.table({"x": [1, 2, 3]}), staged)
    folder.upload(staged, "t.parquet")
    assert not staged.exists()
    fs, base = folder.arrow()
    assert pq.read_table(f"{base}/t.parquet", filesystem=fs).column("x").to_pylist() == [1, 2, 3]
    staged.write_bytes(b"other")
    with pytest.raises(FileExistsError):
        folder.upload(staged, "t.parquet", exclusive=True)


def test_a_folder_travels_to_workers_with_its_options(object_store) -> None:
    folder = Folder.of(object_store.bucket(), object_store.options)
    folder.write_text("x.txt", "hello")
    copy = pickle.loads(pickle.dumps(folder))
    assert copy.read_text("x.txt") == "hello"


def test_credentials_stay_out_of_what_is_shown(object_store) -> None:
    folder = Folder.of(object_store.bucket(), object_store.options)
    secret = object_store.options["secret"]
    for shown in (repr(folder), str(folder), folder.url, folder.display("manifest.json")):
        assert secret not in shown
    assert redact("s3://user:pw@host/b") == "s3://***@host/b"


def test_storage_options_from_flags_and_environment() -> None:
    env = {"EMOPREP_STORAGE_OPTIONS": "key=abc anon=false"}
    opts = parse_storage_options(["client_kwargs.endpoint_url=http://h:9000", "anon=true"], env)
    assert opts == {"key": "abc", "anon": True, "client_kwargs": {"endpoint_url": "http://h:9000"}}
    assert parse_storage_options([], {"EMOPREP_STORAGE_OPTIONS": '{"token": "t"}'}) == {"token": "t"}
    with pytest.raises(SetupError, match="KEY=VALUE"):
        parse_storage_options(["secretvalue"], {})


def test_schemes() -> None:
    assert is_url("s3://b/p") and is_url("memory://x") and not is_url("file:///tmp/x") and not is_url("/tmp/x")
    assert Folder.of("file:///tmp/x").local == Path("/tmp/x")
    with pytest.raises(SetupError, match="not a storage scheme"):
        Folder.of("nosuchscheme://b/p").names()


def test_a_missing_backend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = importlib.import_module("fsspec.registry")  # `fsspec.registry` is also a mapping's name
    monkeypatch.setitem(registry.known_implementations, "s3",
                        {"class": "no_such_module_xyz.S3FileSystem", "err": "Install s3fs to access S3"})
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    with pytest.raises(SetupError, match=r"emoprep\[s3\]"):
        Folder.of("s3://bucket/x").names()


def test_an_upload_keeps_its_sha256_with_the_object_on_s3(folder: Folder, tmp_path: Path) -> None:
    folder.mkdir()
    staged = (folder.local or tmp_path) / ".staged"
    staged.write_bytes(b"shard bytes")
    digest = "ab" * 32
    folder.upload(staged, "a.parquet", sha256=digest)
    # S3 answers from the object's metadata; a local folder has none (its files are hashed, cheaply)
    assert folder.recorded_sha256("a.parquet") == (digest if folder.remote else None)
    folder.write_bytes("b.parquet", b"put some other way")
    assert folder.recorded_sha256("b.parquet") is None and folder.recorded_sha256("absent") is None
