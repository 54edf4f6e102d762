"""Credentials given as storage options never reach what emoprep writes or prints: a secret planted
in the options (flags, then the environment variable) is looked for in every object written under
the bucket — those seen while the run goes (the lease) as well as those left — in everything the
command printed, and in every log record, for a run, a resumed run, a refused run and a failed one."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from emoprep.extraction.engine.lease import LEASE_NAME
from emoprep.format.storage import STORAGE_OPTIONS_ENV, Folder

REPO = Path(__file__).resolve().parents[2]


def _flags(options: dict) -> list[str]:
    flags = []
    for key, value in options.items():
        if isinstance(value, dict):
            flags += [f for k, v in value.items() for f in ("--storage-option", f"{key}.{k}={v}")]
        else:
            flags += ["--storage-option", f"{key}={value}"]
    return flags


class _Objects:
    """Every object under a bucket, read over and over while runs go (so short-lived ones count)."""

    def __init__(self, bucket: Folder) -> None:
        self.bucket = bucket
        self.seen: dict[str, set[bytes]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def read_all(self) -> None:
        fs = self.bucket.fs
        for key in fs.find(self.bucket.path("").rstrip("/"), refresh=True):
            try:
                self.seen.setdefault(key, set()).add(bytes(fs.cat_file(key)))
            except FileNotFoundError:
                pass  # deleted between the listing and the read (the lease, at the end)

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.read_all()

    def __enter__(self) -> _Objects:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.read_all()


def test_a_planted_secret_reaches_no_object_no_output_and_no_log(
    small_demo: Path, object_store, caplog: pytest.LogCaptureFixture,  # noqa: ANN001
) -> None:
    secret = f"planted-secret-{uuid.uuid4().hex}"
    options = {**object_store.options, "secret": secret}
    bucket_url = object_store.bucket()
    out = f"{bucket_url}/demo"
    base = ["extract", "--dataset", "demo", "--root", str(small_demo), "--out", out, "--modalities", "text",
            "--shard-size", "3", "--synchronous"]
    printed: list[str] = []
    caplog.set_level(logging.DEBUG)

    with _Objects(Folder.of(bucket_url, options)) as objects:
        # 1. a run, its secret on the command line (recorded in the lease's command, hidden there)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        run = subprocess.run([sys.executable, "-m", "emoprep", *base, *_flags(options)], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=300, check=False)
        printed += [run.stdout, run.stderr]
        assert run.returncode == 0, run.stderr
        # 2. resumed, its secret in the environment variable
        resumed = CliRunner().invoke(main, base, env={STORAGE_OPTIONS_ENV: json.dumps(options)})
        printed.append(resumed.output)
        assert resumed.exit_code == 0 and "already complete" in resumed.output
        # 3. refused: another run holds the prefix
        prefix = Folder.of(out, options)
        assert prefix.create_exclusive(LEASE_NAME, b'{"pid": 1, "host": "elsewhere"}')
        refused = CliRunner().invoke(main, [*base, *_flags(options)])
        printed.append(refused.output)
        assert refused.exit_code == 2 and LEASE_NAME in refused.output
        prefix.remove(LEASE_NAME)
    # 4. failed: a bucket that does not exist
    missing = CliRunner().invoke(main, [*base[:-3], "--out", f"{bucket_url}-absent/demo", *_flags(options)])
    printed.append(missing.output)
    assert missing.exit_code == 2 and "cannot write there" in missing.output

    keys = set(objects.seen)
    assert any(k.endswith("/demo/manifest.json") for k in keys)
    leases = [data for key, versions in objects.seen.items() if key.endswith(LEASE_NAME) for data in versions]
    assert any(b"--storage-option '***'" in data for data in leases), "the run's lease records its command, hidden"
    for key, versions in objects.seen.items():
        for data in versions:
            assert secret.encode() not in data, key
    for text in printed:
        assert secret not in text
    assert caplog.records and not [r for r in caplog.records if secret in r.getMessage()]
