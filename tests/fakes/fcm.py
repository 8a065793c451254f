"""A local FCM-compatible server on 127.0.0.1, for the real firebase-admin SDK.

It speaks what the SDK speaks: the OAuth 2.0 token endpoint a service account's `token_uri`
names (a JWT-bearer grant answered with an access token), and the FCM HTTP v1 API
(`POST /v1/projects/{project}/messages:send`), answering as FCM does: a message name on
success, or FCM's error bodies (`UNREGISTERED` 404, `INVALID_ARGUMENT` 400, `QUOTA_EXCEEDED` 429
with Retry-After, `UNAVAILABLE` 503, `INTERNAL` 500). What a token gets is scripted per token
(`script(token, ["QUOTA_EXCEEDED", "ok"])`: one answer per attempt, the last one repeating);
unscripted tokens succeed. Requests without the access token it issued are refused (401).
`delay_s` adds latency to every send, as the real service's round trip would. It counts
connections (`connections`, `max_open_connections`, and `send_connections`, those that carried
a send) so a test can see a sender's bound.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_SEND = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
ERRORS = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
}


@dataclass
class Received:
    token: str
    message: dict
    at: float  # time.monotonic()
    answer: str  # "ok" or an FCM error code


@dataclass
class FakeFcm:
    project_id: str = "qunfang-test"
    delay_s: float = 0.0
    retry_after_s: int | None = None  # a Retry-After on 429s (the SDK's transport obeys it)
    received: list[Received] = field(default_factory=list)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    tokens_issued: int = 0
    unauthenticated: int = 0  # sends refused for a missing or wrong access token
    connections: int = 0  # accepted so far
    open_connections: int = 0
    max_open_connections: int = 0
    send_connections: set[int] = field(default_factory=set)  # those that carried a send
    _access_token: str = field(default_factory=lambda: "fake-" + secrets.token_urlsafe(16))
    _attempts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    base_url: str = ""
    _writers: set = field(default_factory=set)

    def script(self, token: str, answers: list[str]) -> None:
        self.scripts[token] = answers

    def revoke_access_token(self) -> None:
        """The access token issued so far stops working (401 UNAUTHENTICATED), as a revoked
        or expired one does; the token endpoint issues a new one."""
        self._access_token = "fake-" + secrets.token_urlsafe(16)

    def answer_for(self, token: str) -> str:
        with self._lock:
            attempt = self._attempts.get(token, 0)
            self._attempts[token] = attempt + 1
        answers = self.scripts.get(token) or ["ok"]
        return answers[min(attempt, len(answers) - 1)]

    def delivered(self) -> list[Received]:
        return [r for r in self.received if r.answer == "ok"]

    def service_account(self, directory: Path) -> Path:
        """A service-account file whose token_uri is this server, with a fresh RSA key (the
        SDK signs its JWT-bearer grant with it, as with a real account)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path = directory / "fake-service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": self.project_id,
                    "private_key_id": secrets.token_hex(20),
                    "private_key": pem,
                    "client_email": f"push@{self.project_id}.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"{self.base_url}/token",
                }
            )
        )
        return path


class _Connection:
    """One client connection, HTTP/1.1 with keep-alive: requests are read and answered one
    after the other (neither the SDK's `requests` nor aiohttp pipelines), each held `delay_s`
    by the event loop without holding other connections. asyncio rather than a thread per
    connection: a benchmark's 10,000 pushes cost the fake little CPU of the machine they share."""

    def __init__(self, fake: FakeFcm):
        self.fake = fake
        with fake._lock:
            fake.connections += 1
            self.number = fake.connections

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fake = self.fake
        with fake._lock:
            fake.open_connections += 1
            fake.max_open_connections = max(fake.max_open_connections, fake.open_connections)
        fake._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                status, answer, extra = await self._answer(method, path, headers, body)
                data = json.dumps(answer).encode()
                lines = [
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
                    "Content-Type: application/json; charset=UTF-8",
                    f"Content-Length: {len(data)}",
                    *(f"{name}: {value}" for name, value in extra.items()),
                ]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            fake._writers.discard(writer)
            with fake._lock:
                fake.open_connections -= 1
            writer.close()

    async def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict, dict[str, str]]:
        fake = self.fake
        if method != "POST":
            return 405, {"error": {"code": 405, "status": "METHOD_NOT_ALLOWED"}}, {}
        if path == "/token":
            grant = parse_qs(body.decode())
            if grant.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                return 400, {"error": "unsupported_grant_type"}, {}
            with fake._lock:
                fake.tokens_issued += 1
            token = {"access_token": fake._access_token, "expires_in": 3600, "token_type": "Bearer"}
            return 200, token, {}
        match = _SEND.match(path)
        if not match or match[1] != fake.project_id:
            return 404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}, {}
        if headers.get("authorization") != f"Bearer {fake._access_token}":
            with fake._lock:
                fake.unauthenticated += 1
            error = {"code": 401, "message": "Request had invalid credentials."}
            return 401, {"error": {**error, "status": "UNAUTHENTICATED"}}, {}
        if fake.delay_s:
            await asyncio.sleep(fake.delay_s)
        message = json.loads(body)["message"]
        token = message.get("token", "")
        answer = fake.answer_for(token)
        with fake._lock:
            fake.received.append(Received(token, message, time.monotonic(), answer))
            fake.send_connections.add(self.number)
        if answer == "ok":
            return 200, {"name": f"projects/{fake.project_id}/messages/{next(fake._ids)}"}, {}
        status, grpc_status, text = ERRORS[answer]
        extra = {}
        if status == 429 and fake.retry_after_s is not None:
            extra = {"Retry-After": str(fake.retry_after_s)}
        details = [{"@type": _FCM_ERROR, "errorCode": answer}]
        error = {"code": status, "message": text, "status": grpc_status, "details": details}
        return status, {"error": error}, extra


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    405: "Method Not Allowed",
}


@contextmanager
def running(delay_s: float = 0.0, project_id: str = "qunfang-test") -> Iterator[FakeFcm]:
    """A FakeFcm serving on a free loopback port until the block ends."""
    fake = FakeFcm(project_id=project_id, delay_s=delay_s)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        asyncio.start_server(
            lambda reader, writer: _Connection(fake).serve(reader, writer),
            "127.0.0.1",
            0,
            backlog=1024,
        )
    )
    fake.base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    thread = threading.Thread(target=loop.run_forever, name="fake-fcm", daemon=True)
    thread.start()
    try:
        yield fake
    finally:

        async def stop() -> None:
            server.close()
            for writer in list(fake._writers):
                writer.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
