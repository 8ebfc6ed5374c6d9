"""A local S3 server (moto) on a free port: a bucket to test object-storage reads against.

moto's server speaks the S3 protocol over HTTP on 127.0.0.1, so pyarrow's S3 filesystem and
everything above it run for real; credentials come from the environment, as on a cluster.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BUCKET = "rsearch-shards"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def moto_bucket(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bucket: str = BUCKET, prefix: str = "digits"
) -> Iterator[tuple[str, Any]]:
    """Start moto, make a bucket, yield (the s3:// URI of prefix in it, with the endpoint, and a
    filesystem), stop.

    Processes started meanwhile (an embedded Ray) inherit the credentials set here.
    """
    import pyarrow.fs

    port = _free_port()
    log = (tmp_path / "moto.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, "moto did not start"
                time.sleep(0.1)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # as on a cluster: the environment
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        fs = pyarrow.fs.S3FileSystem(
            endpoint_override=f"127.0.0.1:{port}",
            scheme="http",
            region="us-east-1",
            allow_bucket_creation=True,
        )
        fs.create_dir(bucket)
        yield f"s3://{bucket}/{prefix}?endpoint_override=127.0.0.1:{port}&scheme=http", fs
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
