"""moto's S3 server on a loopback port, for the tests of the lake on S3 (``otelcost/lake/s3.py``).

A real HTTP server speaking the S3 API (``moto[server]``, a test extra), started as a process:
pyarrow's S3 client talks to it exactly as to AWS, with path-style requests to the endpoint.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from otelcost.lake.location import S3Root
from otelcost.lake.s3 import S3Lake, s3_filesystem

REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    @property
    def environ(self) -> dict[str, str]:
        """The AWS variables an otelcost process reads to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }

    def new_lake(self, prefix: str = "otelcost") -> S3Lake:
        """A lake in a bucket of its own (created here), so tests never see each other's keys."""
        bucket = f"lake-{uuid.uuid4().hex[:12]}"
        creator = pafs.S3FileSystem(
            endpoint_override=self.endpoint.removeprefix("http://"),
            scheme="http",
            region=REGION,
            access_key="testing",
            secret_key="testing",
            allow_bucket_creation=True,
        )
        creator.create_dir(bucket)
        return S3Lake(S3Root(bucket, prefix), s3_filesystem(self.environ))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_s3(log: Path) -> Iterator[S3Server]:
    port = _free_port()
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    with log.open("w") as out:
        process = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not listen: {log.read_text()}") from None
                time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)
