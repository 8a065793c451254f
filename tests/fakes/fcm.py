"""A local FCM-compatible server on 127.0.0.1, for the real firebase-admin SDK.

It speaks what the SDK speaks: the OAuth 2.0 token endpoint a service account's `token_uri`
names (a JWT-bearer grant answered with an access token), and the FCM HTTP v1 API
(`POST /v1/projects/{project}/messages:send`), answering as FCM does: a message name on
success, or FCM's error bodies (`UNREGISTERED` 404, `INVALID_ARGUMENT` 400, `QUOTA_EXCEEDED` 429
with Retry-After, `UNAVAILABLE` 503, `INTERNAL` 500). What a token gets is scripted per token
(`script(token, ["QUOTA_EXCEEDED", "ok"])`: one answer per attempt, the last one repeating);
unscripted tokens succeed. Requests without the access token it issued are refused (401).
`delay_s` adds latency to every send, as the real service's round trip would.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    _access_token: str = field(default_factory=lambda: "fake-" + secrets.token_urlsafe(16))
    _attempts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    base_url: str = ""

    def script(self, token: str, answers: list[str]) -> None:
        self.scripts[token] = answers

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


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:  # quiet
        return

    def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/token":
            grant = parse_qs(body.decode())
            if grant.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                self._answer(400, {"error": "unsupported_grant_type"})
                return
            with fake._lock:
                fake.tokens_issued += 1
            self._answer(
                200,
                {"access_token": fake._access_token, "expires_in": 3600, "token_type": "Bearer"},
            )
            return
        match = _SEND.match(self.path)
        if not match or match[1] != fake.project_id:
            self._answer(
                404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}
            )
            return
        if self.headers.get("Authorization") != f"Bearer {fake._access_token}":
            self._answer(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
            return
        if fake.delay_s:
            time.sleep(fake.delay_s)
        message = json.loads(body)["message"]
        token = message.get("token", "")
        answer = fake.answer_for(token)
        with fake._lock:
            fake.received.append(Received(token, message, time.monotonic(), answer))
        if answer == "ok":
            name = f"projects/{fake.project_id}/messages/{next(fake._ids)}"
            self._answer(200, {"name": name})
            return
        status, grpc_status, text = ERRORS[answer]
        headers = None
        if status == 429 and fake.retry_after_s is not None:
            headers = {"Retry-After": str(fake.retry_after_s)}
        self._answer(
            status,
            {
                "error": {
                    "code": status,
                    "message": text,
                    "status": grpc_status,
                    "details": [{"@type": _FCM_ERROR, "errorCode": answer}],
                }
            },
            headers,
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, fake: FakeFcm):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def running(delay_s: float = 0.0, project_id: str = "qunfang-test") -> Iterator[FakeFcm]:
    """A FakeFcm serving on a free loopback port until the block ends."""
    fake = FakeFcm(project_id=project_id, delay_s=delay_s)
    server = _Server(fake)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
