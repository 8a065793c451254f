"""A local APNs-compatible server on 127.0.0.1, for the real APNs sender (notifications/apns.py).

It speaks only HTTP/2 (the `h2` library over plain TCP, prior knowledge, as the sender speaks to
an `http://` endpoint): an HTTP/1.1 client gets nothing from it, so every request it records
came over HTTP/2, and it counts connections and the streams in flight on them, so a test can
see that concurrent pushes shared one multiplexed connection.

It checks what APNs checks: the provider token (an ES256 JWT verified against the public half
of the test's .p8 key, with `kid` = the key id and `iss` = the team id, younger than an hour),
the topic, push type, priority and the device token's form, and answers as APNs does: 200 with
an `apns-id`, or a status and a JSON reason (`{"reason": "BadDeviceToken"}`, 410 with a
`timestamp`, 429 TooManyRequests, 500 InternalServerError, 503 ServiceUnavailable, 403
InvalidProviderToken / ExpiredProviderToken). What a device token gets is scripted per token
(`script(token, ["TooManyRequests", "ok"])`: one answer per attempt, the last one repeating);
`fail_next(n, reason)` fails the next n requests whatever their token; `delay_s` holds every
answer that long (without holding the other streams).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes

_PATH = re.compile(r"^/3/device/([^/]+)$")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
STATUS = {
    "BadDeviceToken": 400,
    "DeviceTokenNotForTopic": 400,
    "BadExpirationDate": 400,
    "BadPriority": 400,
    "MissingTopic": 400,
    "InvalidPushType": 400,
    "PayloadTooLarge": 413,
    "InvalidProviderToken": 403,
    "ExpiredProviderToken": 403,
    "MissingProviderToken": 403,
    "Unregistered": 410,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
}


def device_token() -> str:
    """A device token of APNs' form (32 bytes, hex)."""
    return secrets.token_hex(32)


@dataclass
class Received:
    token: str
    headers: dict[str, str]
    payload: dict
    provider_token: str
    connection: int
    at: float  # time.monotonic() when the request had arrived whole
    answer: str  # "ok" or an APNs reason
    apns_id: str = ""  # the apns-id answered


@dataclass
class FakeApns:
    topic: str = "cn.qunfang.app"
    key_id: str = field(default_factory=lambda: _id10())
    team_id: str = field(default_factory=lambda: _id10())
    delay_s: float = 0.0
    token_max_age_s: int = 3600  # older provider tokens are ExpiredProviderToken
    received: list[Received] = field(default_factory=list)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    connections: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    base_url: str = ""
    _public_key: ec.EllipticCurvePublicKey | None = None
    _fail: list[str] = field(default_factory=list)
    _attempts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _transports: list = field(default_factory=list)
    _verified_tokens: dict[str, tuple[dict, dict]] = field(default_factory=dict)

    def key_file(self, directory: Path) -> Path:
        """A fresh .p8 signing key (EC P-256, PKCS#8 PEM, as Apple hands it out), whose public
        half this server verifies provider tokens with."""
        key = ec.generate_private_key(ec.SECP256R1())
        self._public_key = key.public_key()
        self._verified_tokens.clear()  # signed by the key before, if any
        path = directory / f"AuthKey_{self.key_id}.p8"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def script(self, token: str, answers: list[str]) -> None:
        self.scripts[token] = answers

    def fail_next(self, count: int, reason: str = "ServiceUnavailable") -> None:
        with self._lock:
            self._fail.extend([reason] * count)

    def delivered(self) -> list[Received]:
        return [r for r in self.received if r.answer == "ok"]

    def provider_tokens(self) -> set[str]:
        return {r.provider_token for r in self.received}

    def _scripted(self, token: str) -> str:
        with self._lock:
            if self._fail:
                return self._fail.pop(0)
            attempt = self._attempts.get(token, 0)
            self._attempts[token] = attempt + 1
        answers = self.scripts.get(token) or ["ok"]
        return answers[min(attempt, len(answers) - 1)]

    def _verified(self, provider_token: str) -> tuple[dict, dict]:
        """The header and claims of a provider token whose signature is good. A sender reuses
        one token for every request (for up to an hour), so its signature is checked once, as
        APNs does; its age is still judged on every request (`_check`)."""
        known = self._verified_tokens.get(provider_token)
        if known is None:
            claims = jwt.decode(
                provider_token,
                self._public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
            known = (jwt.get_unverified_header(provider_token), claims)
            self._verified_tokens[provider_token] = known
        return known

    def _check(self, headers: dict[str, str], body: bytes) -> tuple[str, str | None]:
        """(answer, the device token) for one request, before any script."""
        match = _PATH.match(headers.get(":path", ""))
        if headers.get(":method") != "POST" or not match:
            return "BadPath", None
        token = match[1]
        authorization = headers.get("authorization", "")
        if not authorization.lower().startswith("bearer "):
            return "MissingProviderToken", token
        provider_token = authorization[7:]
        try:
            header, claims = self._verified(provider_token)
        except jwt.PyJWTError:
            return "InvalidProviderToken", token
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return "InvalidProviderToken", token
        if time.time() - claims["iat"] > self.token_max_age_s:
            return "ExpiredProviderToken", token
        if not headers.get("apns-topic"):
            return "MissingTopic", token
        if headers["apns-topic"] != self.topic:
            return "DeviceTokenNotForTopic", token
        if headers.get("apns-push-type", "alert") not in {"alert", "background"}:
            return "InvalidPushType", token
        if headers.get("apns-priority", "10") not in {"1", "5", "10"}:
            return "BadPriority", token
        if not headers.get("apns-expiration", "0").isdigit():
            return "BadExpirationDate", token
        if not _HEX.match(token):
            return "BadDeviceToken", token
        if len(body) > 4096:
            return "PayloadTooLarge", token
        return "ok", token


class _Protocol(asyncio.Protocol):
    """One client connection: h2 frames in, responses out, each stream answered by a task of
    its own (so a slow answer does not hold the others)."""

    def __init__(self, fake: FakeApns):
        self.fake = fake
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.transport: asyncio.Transport | None = None
        self.answering: set[asyncio.Future] = set()
        with fake._lock:
            fake.connections += 1
            self.number = fake.connections

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.h2.initiate_connection()
        self.h2.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: 1000})  # as APNs
        self.fake._transports.append(transport)
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:  # not HTTP/2 (an HTTP/1.1 request, say): hang up
            self.transport.write(self.h2.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                self.streams[event.stream_id] = (dict(event.headers), bytearray())
            elif isinstance(event, DataReceived):
                self.streams[event.stream_id][1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                headers, body = self.streams.pop(event.stream_id)
                answering = asyncio.ensure_future(
                    self._answer(event.stream_id, headers, bytes(body))
                )
                self.answering.add(answering)  # a task nobody holds may be collected
                answering.add_done_callback(self.answering.discard)
            elif isinstance(event, StreamReset):
                self.streams.pop(event.stream_id, None)
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
        self.transport.write(self.h2.data_to_send())

    async def _answer(self, stream_id: int, headers: dict[str, str], body: bytes) -> None:
        fake = self.fake
        arrived = time.monotonic()
        with fake._lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            if fake.delay_s:
                await asyncio.sleep(fake.delay_s)
            answer, token = fake._check(headers, body)
            if answer == "ok":
                answer = fake._scripted(token)
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                payload = {}
            authorization = headers.get("authorization", "")
            record = Received(
                token or "",
                {k: v for k, v in headers.items() if not k.startswith(":")},
                payload,
                authorization[7:],
                self.number,
                arrived,
                answer,
            )
            with fake._lock:
                fake.received.append(record)
            record.apns_id = self._respond(stream_id, headers, answer)
        finally:
            with fake._lock:
                fake.in_flight -= 1

    def _respond(self, stream_id: int, headers: dict[str, str], answer: str) -> str:
        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        if answer == "ok":
            status, data = 200, b""
        else:
            status = STATUS.get(answer, 404)
            reason: dict = {"reason": answer}
            if status == 410:
                reason["timestamp"] = int(time.time() * 1000)
            data = json.dumps(reason).encode()
        response = [(":status", str(status)), ("apns-id", apns_id)]
        if data:
            response += [("content-type", "application/json"), ("content-length", str(len(data)))]
        try:
            self.h2.send_headers(stream_id, response, end_stream=not data)
            if data:
                self.h2.send_data(stream_id, data, end_stream=True)
        except (StreamClosedError, ProtocolError):
            return apns_id
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.h2.data_to_send())
        return apns_id


def _id10() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(10))


@contextmanager
def running(delay_s: float = 0.0, topic: str = "cn.qunfang.app") -> Iterator[FakeApns]:
    """A FakeApns serving HTTP/2 on a free loopback port until the block ends."""
    fake = FakeApns(topic=topic, delay_s=delay_s)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: _Protocol(fake), "127.0.0.1", 0, backlog=1024)
    )
    fake.base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    thread = threading.Thread(target=loop.run_forever, name="fake-apns", daemon=True)
    thread.start()
    try:
        yield fake
    finally:

        async def stop() -> None:
            server.close()
            for transport in fake._transports:
                transport.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
