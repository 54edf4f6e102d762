"""A real S3 API on localhost for tests and benchmarks: moto's server, with a fresh bucket per use.

Object-storage code is tested against moto's ``ThreadedMotoServer`` (a real HTTP S3 endpoint that
s3fs, Dask workers in other processes and pyarrow all talk to), never against a mock of fsspec.
moto >= 5.2.1 honours conditional writes (``If-None-Match: *``), which the exclusive manifest and the
output lease rely on.  moto and s3fs come with the ``test`` extra.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_REGION = "us-east-1"


@dataclass
class ObjectStore:
    """A running S3 endpoint and the storage options that reach it."""

    endpoint: str
    options: dict[str, Any] = field(repr=False)
    _count: Iterator[int] = field(default_factory=itertools.count, repr=False)

    def bucket(self, prefix: str = "emoprep-test") -> str:
        """A new, empty bucket; returns its ``s3://`` URL."""
        import boto3  # noqa: PLC0415

        name = f"{prefix}-{next(self._count)}"
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name=_REGION,
                              aws_access_key_id=self.options["key"], aws_secret_access_key=self.options["secret"])
        client.create_bucket(Bucket=name)
        return f"s3://{name}"

    def option_flags(self) -> list[str]:
        """The same options as ``--storage-option KEY=VALUE`` arguments."""
        return ["--storage-option", f"key={self.options['key']}", "--storage-option", f"secret={self.options['secret']}",
                "--storage-option", f"client_kwargs.endpoint_url={self.endpoint}",
                "--storage-option", f"client_kwargs.region_name={_REGION}"]


@contextmanager
def moto_s3(secret: str = "test-secret-not-real") -> Iterator[ObjectStore]:
    """Serve S3 on a free localhost port for the duration of the block."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        options = {"key": "test-key-id", "secret": secret,
                   "client_kwargs": {"endpoint_url": endpoint, "region_name": _REGION}}
        yield ObjectStore(endpoint, options)
    finally:
        server.stop()
