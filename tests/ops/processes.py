"""Real processes for the tests of faults and shared limits: free ports, waiting for answers."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from app.config import PROJECT_ROOT

VENV_BIN = PROJECT_ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(
    method: str,
    url: str,
    body: dict | None = None,
    timeout: float = 5,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    """One request on a new connection; (status, JSON body or {}). Status 0: no answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (OSError, TimeoutError):
        return 0, {}
    try:
        return status, json.loads(raw or b"{}")
    except ValueError:
        return status, {}


def wait_until(predicate, timeout: float, interval: float = 0.1) -> float | None:
    """Seconds until `predicate()` held, or None when it did not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    return None


def base_environment(**values: str) -> dict[str, str]:
    """A clean environment for a child: none of the caller's database or store settings."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(values)
    return env


@contextlib.contextmanager
def gunicorn(env: dict[str, str], log: Path, workers: int = 2) -> Iterator[str]:
    """The API under gunicorn (gunicorn.conf.py) with `workers` processes; yields its base URL."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own gunicorn
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
            cwd=PROJECT_ROOT,
            env={**env, "PORT": str(port), "WEB_CONCURRENCY": str(workers)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = wait_until(lambda: http("GET", f"{base}/readyz")[0] == 200, timeout=60)
        assert ready is not None, log.read_text()[-3000:]
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
