"""A local JPush-compatible server on 127.0.0.1, for JPush's official SDK (`jpush`).

It speaks JPush's REST API v3 push (`POST /v3/push`, HTTP/1.1 JSON) as JPush does: HTTP Basic
authentication with appKey:masterSecret (401 and error 1004 otherwise), an audience of at most
1000 registration ids (error 1003 past that), one `msg_id` for the whole push, the rate-limit
headers (`X-Rate-Limit-Limit`, `-Remaining`, `-Reset`) on every answer, and JPush's error shape
`{"error": {"code": ..., "message": ...}, "msg_id": ...}`. A push none of whose registration
ids it knows is error 1011 (no push target); ids it knows are all but those `forget()` names.
`fail_next([(429, 2002), (503, 1000)])` answers the next pushes so, whatever they carry;
`delay_s` holds every answer that long.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MESSAGES = {
    1000: "Server Internal error",
    1003: "Parameter value is invalid",
    1004: "Authen failed",
    1011: "cannot find user by this audience or has been inactive for more than 255 days",
    2002: "Request times exceed the limit",
    2008: "Push rate exceeds the limit",
}
RATE_LIMIT = 600  # requests a minute, JPush's default quota


@dataclass
class Received:
    registration_ids: list[str]
    body: dict
    at: float  # time.monotonic()
    answer: int  # 0 for accepted, else the error code
    msg_id: str | None = None


@dataclass
class FakeJPush:
    app_key: str = "a1b2c3d4e5f6a1b2c3d4e5f6"
    master_secret: str = "f6e5d4c3b2a1f6e5d4c3b2a1"
    delay_s: float = 0.0
    reset_s: int = 1  # X-Rate-Limit-Reset on a 429
    received: list[Received] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)
    refused_auth: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    base_url: str = ""
    _fail: list[tuple[int, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(18100000000000001))

    def forget(self, *registration_ids: str) -> None:
        """Registration ids JPush does not know (an uninstalled app, say)."""
        self.unknown.update(registration_ids)

    def fail_next(self, answers: list[tuple[int, int]]) -> None:
        with self._lock:
            self._fail.extend(answers)

    def delivered(self) -> list[str]:
        """The registration ids of accepted pushes that JPush knows."""
        return [
            rid
            for r in self.received
            if r.answer == 0
            for rid in r.registration_ids
            if rid not in self.unknown
        ]

    def _authorised(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.app_key}:{self.master_secret}".encode()).decode()
        return header == f"Basic {expected}"

    def _answer(self, body: dict) -> tuple[int, int, str | None]:
        """(HTTP status, error code or 0, msg_id) for one push request."""
        with self._lock:
            scripted = self._fail.pop(0) if self._fail else None
        msg_id = str(next(self._ids))
        if scripted:
            return scripted[0], scripted[1], msg_id
        audience = body.get("audience")
        ids = audience.get("registration_id") if isinstance(audience, dict) else None
        notification = body.get("notification")
        if not isinstance(ids, list) or not ids or len(ids) > 1000 or not notification:
            return 400, 1003, msg_id
        if all(i in self.unknown for i in ids):
            return 400, 1011, msg_id
        return 200, 0, msg_id


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:  # quiet
        return

    def _send(self, status: int, body: dict, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        limits = {"X-Rate-Limit-Limit": str(RATE_LIMIT), "X-Rate-Limit-Reset": "60"}
        if self.path != "/v3/push":
            self._send(404, {"error": {"code": 1001, "message": "Not found"}}, limits)
            return
        if not fake._authorised(self.headers.get("Authorization")):
            with fake._lock:
                fake.refused_auth += 1
            self._send(401, {"error": {"code": 1004, "message": MESSAGES[1004]}}, limits)
            return
        with fake._lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            if fake.delay_s:
                time.sleep(fake.delay_s)
        finally:
            with fake._lock:
                fake.in_flight -= 1
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        status, code, msg_id = fake._answer(body if isinstance(body, dict) else {})
        audience = body.get("audience") if isinstance(body, dict) else None
        ids = audience.get("registration_id", []) if isinstance(audience, dict) else []
        with fake._lock:
            fake.received.append(Received(list(ids), body, time.monotonic(), code, msg_id))
            remaining = max(0, RATE_LIMIT - len(fake.received))
        limits["X-Rate-Limit-Remaining"] = str(0 if status == 429 else remaining)
        if status == 429:
            limits["X-Rate-Limit-Reset"] = str(fake.reset_s)
        if status == 200:
            self._send(200, {"sendno": "0", "msg_id": msg_id}, limits)
            return
        message = MESSAGES.get(code, "error")
        self._send(status, {"error": {"code": code, "message": message}, "msg_id": msg_id}, limits)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, fake: FakeJPush):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def running(delay_s: float = 0.0) -> Iterator[FakeJPush]:
    """A FakeJPush serving on a free loopback port until the block ends."""
    fake = FakeJPush(delay_s=delay_s)
    server = _Server(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
