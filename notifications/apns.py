"""APNs directly (issue #16): token-based auth and HTTP/2, for iPhones that FCM does not reach.

Apple's provider API: `POST /3/device/{token}` over HTTP/2, authorised by a JWT (ES256, signed
with the team's .p8 key, `kid` = the key id, `iss` = the team id). Apple refuses a token older
than an hour and one refreshed more often than every 20 minutes (TooManyProviderTokenUpdates),
so one token is signed and kept for 50 minutes, for every request of every send.

Why httpcore (httpx's transport, with h2) and not aioapns: both are HTTP/2 over asyncio, but
httpcore and h2 are already pinned (no new dependency), they let us choose the endpoint (a local
fake in tests) and the concurrency, and every outcome below is ours to decide; aioapns answers
with its own result objects and its own retry policy on top of a connection pool of its own.
The sender speaks to httpcore's connection pool directly, not through `httpx.AsyncClient`: the
client's request and response models, URL merging, auth, redirect and cookie steps cost more
CPU than the HTTP/2 stream itself (measured for issue #16 item 7: 2.1 ms of CPU a push through
the client, 1.3 ms through the pool, 3,000 pushes to the fake at 100 in flight), and a fan-out
sends thousands. (The client would also have read proxy settings from the environment; the
pool connects to APNs directly, which mainland China reaches.)

All pushes of a send go concurrently (at most `concurrency` in flight) over one multiplexed
HTTP/2 connection, which is kept open between sends, as Apple asks (a connection per
notification looks like a denial-of-service attack to APNs). The client lives on an event loop
of its own in a daemon thread; `send` is synchronous (the job worker calls it from its threads)
and waits for that loop.

Outcomes: 200 `sent` (the `apns-id` as message id); BadDeviceToken, DeviceTokenNotForTopic
(400) and Unregistered/ExpiredToken (410) `unregistered` (the caller deletes the device); other
400s and 413 `invalid`; 429 and 5xx (and a broken connection) are retried with exponential
backoff, then `failed`; 403 (refused credentials) `failed`, logged as an error, except
ExpiredProviderToken, which signs a new token (when the old one is at least 20 minutes old)
and tries again. No Flask here: the settings come in as arguments.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from app.core.p8 import load_key
from notifications.push import Answer, BackgroundLoop, Outcome, Push, retried

logger = logging.getLogger(__name__)

PRODUCTION = "https://api.push.apple.com"
SANDBOX = "https://api.sandbox.push.apple.com"
TOKEN_REFRESH_S = 50 * 60  # Apple refuses a token older than 60 minutes
TOKEN_MIN_AGE_S = 20 * 60  # ... and one refreshed more often than every 20 minutes
CONCURRENCY = 100  # streams in flight; APNs allows up to 1000 on a connection
TIMEOUT_S = 10.0
_TOKEN = re.compile(r"^[0-9A-Fa-f]{64,200}$")

UNREGISTERED = frozenset(
    {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"}
)

# 403s: APNs refuses who we are (key, key id, team, or the topic is not the team's app).
REFUSED = frozenset(
    {
        "InvalidProviderToken",
        "MissingProviderToken",
        "ExpiredProviderToken",
        "Forbidden",
        "BadCertificate",
        "BadCertificateEnvironment",
    }
)


class ProviderToken:
    """The JWT every request carries, signed once and reused for TOKEN_REFRESH_S."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        key_id: str,
        team_id: str,
        clock: Callable[[], float] = time.time,
    ):
        self._key, self._key_id, self._team_id, self._clock = key, key_id, team_id, clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._issued_at = 0
        self.signed = 0  # how many tokens were signed (tests, metrics)

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() - self._issued_at >= TOKEN_REFRESH_S:
                self._sign()
            return self._token

    def expired(self, token: str) -> bool:
        """APNs said `token` expired: sign a new one, unless another request already did or
        the current one is too young to replace (then our clock is wrong, and refreshing would
        only earn TooManyProviderTokenUpdates). True when there is a new token to try."""
        with self._lock:
            if token != self._token:
                return True
            if self._clock() - self._issued_at < TOKEN_MIN_AGE_S:
                return False
            self._sign()
            return True

    def _sign(self) -> None:
        issued_at = int(self._clock())
        self._token = jwt.encode(
            {"iss": self._team_id, "iat": issued_at},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id},
        )
        self._issued_at = issued_at
        self.signed += 1


def payload(push: Push) -> bytes:
    """The notification's JSON: the alert in `aps`, our data beside it (as FCM's data)."""
    aps: dict[str, Any] = {
        "alert": {"title": push.title, "body": push.body},
        # Shown at once, even in a Focus mode, only for urgent tasks.
        "interruption-level": "time-sensitive" if push.urgent else "active",
    }
    if push.urgent:
        aps["sound"] = "default"
    return json.dumps({**push.data, "aps": aps}, ensure_ascii=False, separators=(",", ":")).encode()


def classify(status: int, reason: str | None) -> str:
    """The outcome of one answer: sent, unregistered, invalid, failed; `retry` for 429, 5xx;
    `refresh` for an expired provider token."""
    if status == 200:
        return "sent"
    if reason in UNREGISTERED or status == 410:
        return "unregistered"
    if status == 403 and reason == "ExpiredProviderToken":
        return "refresh"
    if status == 429 or status >= 500:
        return "retry"
    if status in (400, 413):
        return "invalid"
    return "failed"  # 403 (credentials), 404 BadPath, 405


@dataclass
class ApnsSender:
    """APNs over HTTP/2 with a .p8 key. `endpoint` is Apple's production or sandbox host, or
    (tests, benchmarks) a local APNs-compatible server; an `http://` endpoint is spoken as
    HTTP/2 without TLS (prior knowledge), as APNs itself accepts nothing but HTTP/2."""

    key_file: str
    key_id: str
    team_id: str
    topic: str  # the app's bundle id
    endpoint: str = PRODUCTION
    concurrency: int = CONCURRENCY
    timeout_s: float = TIMEOUT_S
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    clock: Callable[[], float] = time.time
    name: str = "apns"
    _token: ProviderToken = field(init=False, repr=False)
    _client: httpcore.AsyncConnectionPool | None = field(default=None, init=False, repr=False)
    _loop: BackgroundLoop = field(
        default_factory=lambda: BackgroundLoop("apns"), init=False, repr=False
    )

    def __post_init__(self) -> None:
        self._loop.aclose = self._aclose
        self._token = ProviderToken(load_key(self.key_file), self.key_id, self.team_id, self.clock)
        # APNs' paths carry the device token, personal data that our logs never hold (as the
        # logging sender's): hpack logs every header it encodes at DEBUG, so it is held at
        # WARNING whatever LOG_LEVEL says. (httpcore's own trace names no path.)
        hpack_logger = logging.getLogger("hpack")
        hpack_logger.setLevel(max(logging.WARNING, hpack_logger.level))

    def close(self) -> None:
        """Close the connection and stop the loop (tests; at exit the loop does it)."""
        self._loop.close()

    async def _aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpcore.AsyncConnectionPool:
        if self._client is None:  # made on the loop, used only there
            self._client = httpcore.AsyncConnectionPool(
                http1=False, http2=True, max_connections=1, max_keepalive_connections=1
            )
        return self._client

    # -- sending ------------------------------------------------------------------------------

    def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        if not pushes:
            return []
        outcomes = self._loop.run(self._send_all(pushes))
        refused = {o.error for o in outcomes if o.status == "failed" and o.error in REFUSED}
        if refused:
            logger.error(
                "APNs refused our credentials (%s): check APNS_KEY_FILE, APNS_KEY_ID, "
                "APNS_TEAM_ID and APNS_TOPIC",
                ", ".join(sorted(refused)),
                extra={"provider": "apns", "failed": len(outcomes)},
            )
        failed = [o.error for o in outcomes if o.status == "failed" and o.error not in REFUSED]
        if failed:  # one line a send, not one a push
            logger.warning(
                "APNs: %d of %d pushes failed after retries (%s)",
                len(failed),
                len(outcomes),
                ", ".join(sorted(set(map(str, failed)))),
                extra={"provider": "apns"},
            )
        return outcomes

    async def _send_all(self, pushes: Sequence[Push]) -> list[Outcome]:
        gate = asyncio.Semaphore(max(1, self.concurrency))
        return list(await asyncio.gather(*(self._send_one(p, gate) for p in pushes)))

    async def _send_one(self, push: Push, gate: asyncio.Semaphore) -> Outcome:
        if not _TOKEN.match(push.token):
            # APNs would answer BadDeviceToken; a token that is not hex never reaches the path.
            return Outcome(push.key, "unregistered", error="BadDeviceToken", attempts=0)
        body = payload(push)
        used: list[str] = []

        async def post() -> Answer:
            used[:] = [self._token.get()]
            async with gate:
                return await self._post(push, body, used[0])

        async def refresh() -> bool:  # ExpiredProviderToken: sign anew, if not too young
            return self._token.expired(used[0])

        return await retried(push.key, post, refresh, self.sleep)

    async def _post(self, push: Push, body: bytes, token: str) -> Answer:
        headers = [
            (b"authorization", f"bearer {token}".encode()),
            (b"apns-topic", self.topic.encode()),
            (b"apns-push-type", b"alert"),
            (b"apns-priority", b"10" if push.urgent else b"5"),
            (b"apns-expiration", str(int(self.clock()) + push.ttl_s).encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        timeout = dict.fromkeys(("connect", "read", "write", "pool"), self.timeout_s)
        try:
            response = await self._http().request(
                b"POST",
                f"{self.endpoint}/3/device/{push.token}",
                headers=headers,
                content=body,
                extensions={"timeout": timeout},
            )
        except _TRANSPORT_ERRORS as exc:  # a dropped connection, a time-out: try again
            return "retry", type(exc).__name__[:40], None, 0.0
        except Exception as exc:  # one push's surprise must not lose the others' outcomes
            logger.exception("APNs request failed unexpectedly")
            return "failed", type(exc).__name__[:40], None, 0.0
        answer = {k.decode().lower(): v.decode("latin-1") for k, v in response.headers}
        reason = None
        if response.status != 200:
            try:
                reason = json.loads(response.content).get("reason")
            except (ValueError, AttributeError):
                reason = None
            reason = str(reason or f"HTTP {response.status}")[:40]
        status = classify(response.status, reason)
        message_id = answer.get("apns-id") if status == "sent" else None
        return status, reason, message_id, _retry_after(answer)


# What a broken connection, a refused one or a time-out raises (httpx's TransportError).
_TRANSPORT_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)


def _retry_after(headers: dict[str, str]) -> float:
    try:
        return float(headers.get("retry-after") or 0)
    except ValueError:
        return 0.0
