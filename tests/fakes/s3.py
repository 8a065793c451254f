"""An S3-compatible server for the tests: moto's server mode (a real HTTP server speaking the S3
REST API, in a subprocess of its own on 127.0.0.1), so the app's boto3 client goes over the
network exactly as it would to MinIO, Ceph or a cloud provider. No in-process mocking.

`shared_server()` starts one per test process (stopped at exit); the storage suite and the
media and exports suites under QF_TEST_STORAGE=s3 use it, each test on a bucket of its own or
on the run's bucket.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from tests.ops.processes import free_port

ACCESS_KEY = "qf-test-access"
SECRET_KEY = "qf-test-secret"
REGION = "us-east-1"
_MOTO = Path(sys.executable).with_name("moto_server")


class S3Server:
    """moto_server on 127.0.0.1:<free port>: `start`, `endpoint_url`, `client()`, `stop`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._client = None

    def start(self, timeout_s: float = 30) -> S3Server:
        self.process = subprocess.Popen(  # noqa: S603 - our venv's moto_server
            [str(_MOTO), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):  # noqa: S310
                    return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self):
        """One boto3 client for the tests' own calls (making one loads the S3 model: slow)."""
        if self._client is None:
            from app.storage.s3 import make_client

            self._client = make_client(self.endpoint_url, REGION, ACCESS_KEY, SECRET_KEY, "path")
        return self._client

    def new_bucket(self, prefix: str = "qf-test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings(self, bucket: str) -> dict[str, str]:
        """The app's settings for `bucket` on this server."""
        return {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_BUCKET": bucket,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": ACCESS_KEY,
            "S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "S3_ADDRESSING_STYLE": "path",
        }


_shared: S3Server | None = None


def shared_server() -> S3Server:
    """The test process's one S3 server, started on first use and stopped at exit."""
    global _shared
    if _shared is None:
        _shared = S3Server().start()
        atexit.register(_shared.stop)
    return _shared
