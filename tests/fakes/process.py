"""A fake service (FCM, APNs or JPush) in a process of its own, for benchmarks.

Run inside the benchmark's process, the three fakes and the benchmark's own polling take turns
on one interpreter lock: the fakes then answer as slowly as that process is busy, which is not
how a remote service behaves. In a process each (started with `spawn`, so nothing of the
parent's threads or connections is inherited) every fake has an interpreter of its own; the
parent reads what arrived through a pipe. Arrival times are `time.monotonic()`, which is the
same clock in every process of the machine (CLOCK_MONOTONIC).

Tests keep the in-process fakes (`tests.fakes.fcm.running()`...), whose scripts and records
they read directly.
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.connection
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

MODULES = {"fcm": "tests.fakes.fcm", "apns": "tests.fakes.apns", "jpush": "tests.fakes.jpush"}


class _Tally:
    """Pushes delivered so far and when the last arrived, counted once per record: the
    fake's list only grows between clears, so each poll reads only what is new."""

    def __init__(self, kind: str, fake: Any):
        self.kind, self.fake = kind, fake
        self.seen = self.count = 0
        self.last = 0.0

    def read(self) -> tuple[int, float]:
        records = self.fake.received
        end = len(records)
        for record in records[self.seen : end]:
            if self.kind == "jpush":
                delivered = len(record.registration_ids) if record.answer == 0 else 0
            else:
                delivered = 1 if record.answer == "ok" else 0
            if delivered:
                self.count += delivered
                self.last = max(self.last, record.at)
        self.seen = end
        return self.count, self.last

    def clear(self) -> None:
        self.fake.received.clear()
        self.seen = self.count = 0
        self.last = 0.0


def _details(kind: str, fake: Any, directory: Path) -> dict[str, Any]:
    details: dict[str, Any] = {"base_url": fake.base_url, "pid": os.getpid()}
    if kind == "fcm":
        details["credentials_file"] = str(fake.service_account(directory))
    elif kind == "apns":
        details.update(
            key_file=str(fake.key_file(directory)),
            key_id=fake.key_id,
            team_id=fake.team_id,
            topic=fake.topic,
        )
    else:
        details.update(app_key=fake.app_key, master_secret=fake.master_secret)
    return details


def _serve(
    kind: str, delay_s: float, directory: str, conn: multiprocessing.connection.Connection
) -> None:
    module = importlib.import_module(MODULES[kind])
    with module.running(delay_s=delay_s) as fake:
        tally = _Tally(kind, fake)
        conn.send(_details(kind, fake, Path(directory)))
        while True:
            command = conn.recv()
            if command == "arrivals":
                conn.send(tally.read())
            elif command == "clear":
                tally.clear()
                conn.send(None)
            else:  # "stop"
                return


class FakeProcess:
    """A running fake: its URL and credentials as attributes (`base_url`, `key_id`,
    `app_key`...), `arrivals()` and `clear()`."""

    def __init__(self, kind: str, details: dict[str, Any], conn, process):
        self.kind = kind
        self.__dict__.update(details)
        self._conn, self._process = conn, process

    def arrivals(self) -> tuple[int, float]:
        """(pushes delivered since the last clear, monotonic time the last of them arrived)."""
        self._conn.send("arrivals")
        return self._conn.recv()

    def clear(self) -> None:
        self._conn.send("clear")
        self._conn.recv()


@contextmanager
def running(kind: str, delay_s: float, directory: Path) -> Iterator[FakeProcess]:
    """The fake of `kind` serving from a child process until the block ends; its key files
    are written to `directory`."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_serve, args=(kind, delay_s, str(directory), child), name=f"fake-{kind}"
    )
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError(f"the {kind} fake did not start")
        yield FakeProcess(kind, parent.recv(), parent, process)
    finally:
        if process.is_alive():
            with suppress(OSError):
                parent.send("stop")
            process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)
