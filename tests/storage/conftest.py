"""Shard folders and runs on moto's S3 server for the reader and consumer tests: a locally extracted
folder is copied into a fresh bucket object by object, as a user would upload it."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoprep.format.storage import Folder


def put_folder(local: Path, url: str, options: dict) -> str:
    """Upload every file under ``local`` to the prefix ``url`` (same relative names); returns ``url``."""
    folder = Folder.of(url, options)
    for p in sorted(local.rglob("*")):
        if p.is_file():
            folder.put(p, p.relative_to(local).as_posix())
    return url


@pytest.fixture(scope="session")
def upload():
    """``upload(local_folder, url, options)``: :func:`put_folder`, for the tests of this folder."""
    return put_folder


@pytest.fixture(scope="module")
def s3_shards(object_store, demo_shards: Path) -> str:  # noqa: ANN001 - the session fixture
    """The session's demo shard folder, copied to ``s3://<fresh bucket>/shards`` (the same folder name)."""
    return put_folder(demo_shards, object_store.bucket() + "/" + demo_shards.name, object_store.options)
