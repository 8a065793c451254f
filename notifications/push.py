"""Push delivery: messages to devices through FCM (firebase-admin's credentials and messages,
FCM's HTTP v1 API), APNs (notifications/apns.py) or JPush (notifications/jpush.py), each device
through its own provider, or a logging sender for a provider without credentials (so `make run`
works offline).

Every sender answers each push with an outcome: `sent`, `unregistered` (the token is dead: the
caller deletes the device), `invalid` (the payload or token was refused: reported, never
retried) or `failed`; quota and server errors are retried with exponential backoff first,
honouring Retry-After. No Flask here: the settings come in as arguments.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import json
import logging
import random
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Protocol, TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")

# firebase-admin 7.7 deprecates `Message.token` (FCM registration tokens) for `Message.fid`
# (Firebase installation IDs). Our apps register registration tokens, which FCM's HTTP v1 API
# takes as before; moving devices to installation IDs is a change of the apps and of
# POST /devices (docs/tasks.md, Delivery). Until then the warning, raised once a message, says
# nothing new.
warnings.filterwarnings(
    "ignore", message="Message.token is deprecated", category=DeprecationWarning
)

CHUNK = 500  # pushes a send puts in flight at once (the job's chunk; send_each's limit too)
# FCM requests in flight per sender (so per worker process), every send job of the process
# together, each on a kept-alive connection: 100 at 20 ms a request is 5,000 pushes a second.
FCM_CONCURRENCY = 100
_INIT_LOCK = threading.Lock()
MAX_PAYLOAD_BYTES = 4096  # FCM's limit for a message's data + notification
MAX_ATTEMPTS = 4
BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0


@dataclass(frozen=True)
class Push:
    """One message to one device."""

    key: Any  # the caller's id for it (a delivery id)
    token: str
    title: str
    body: str
    data: dict[str, str]
    urgent: bool = False
    ttl_s: int = 3600


@dataclass
class Outcome:
    key: Any
    status: str  # sent, logged, unregistered, invalid, failed
    message_id: str | None = None
    error: str | None = None
    attempts: int = 1


# (status, error code, message id, Retry-After seconds) of one request to a provider; status is
# an outcome, or `retry` (quota, server error, dropped connection) or `refresh` (refused
# credentials that a new token may cure).
Answer = tuple[str, str | None, str | None, float]


async def retried(
    key: Any,
    post: Callable[[], Awaitable[Answer]],
    refresh: Callable[[], Awaitable[bool]],
    sleep: Callable[[float], Awaitable[Any]],
) -> Outcome:
    """The retry rule of the async senders (FCM, APNs): at most MAX_ATTEMPTS requests, backing
    off exponentially (BACKOFF_S doubling up to MAX_BACKOFF_S, at least the service's
    Retry-After, a quarter of jitter) after `retry`; after `refresh`, once, `refresh()` gets new
    credentials (True when there are some to try), which is not counted as an attempt."""
    status, error, message_id, retry_after = "failed", None, None, 0.0
    refreshed = False
    attempt = 0
    while attempt < MAX_ATTEMPTS:
        attempt += 1
        status, error, message_id, retry_after = await post()
        if status == "refresh" and not refreshed and await refresh():
            refreshed = True
            attempt -= 1
            continue
        if status == "refresh":
            status = "failed"
        if status != "retry":
            break
        if attempt < MAX_ATTEMPTS:
            delay = min(MAX_BACKOFF_S, max(retry_after, BACKOFF_S * 2 ** (attempt - 1)))
            await sleep(delay * (1 + random.random() / 4))  # noqa: S311 - jitter, not a secret
    if status == "retry":
        status = "failed"
    return Outcome(key, status, message_id, error, attempt)


class Sender(Protocol):
    name: str

    def send(self, pushes: Sequence[Push]) -> list[Outcome]: ...


def payload_size(push: Push) -> int:
    """Bytes of the data and notification payload, as FCM counts them (JSON of both)."""
    return len(
        json.dumps(
            {"data": push.data, "notification": {"title": push.title, "body": push.body}},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
    )


def fit(title: str, body: str, data: dict[str, str]) -> tuple[str, str]:
    """Title and body shortened (never the data) until the payload is under 4 KB."""
    probe = Push(None, "", title, body, data)
    while payload_size(probe) > MAX_PAYLOAD_BYTES - 64 and (probe.body or len(probe.title) > 20):
        if probe.body:
            body = body[: max(0, len(body) - max(16, len(body) // 4))]
        else:
            title = title[: max(20, len(title) - max(8, len(title) // 4))]
        probe = Push(None, "", title, body.rstrip() + ("…" if body else ""), data)
    return probe.title, probe.body


class LoggingSender:
    """Without a provider's credentials: every push is logged (kind and counts, never a token) and
    counted as `logged`, not `sent`: staff must not read a log line as a phone reached."""

    name = "logging"

    def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        for push in pushes:
            logger.info(
                "push (logging sender)",
                extra={"kind": push.data.get("kind"), "urgent": push.urgent},
            )
        return [Outcome(p.key, "logged", message_id=f"logged:{p.key}") for p in pushes]


class BackgroundLoop:
    """An asyncio event loop in a daemon thread of its own, started on first use. A sender's
    HTTP client lives on it and is used only there; `run` is called from the job worker's
    threads (several send jobs at once share the loop and the client's connections).
    `aclose` (the client's close) runs on the loop when it is closed, by `close` or at exit
    (so a worker that stops closes its connections instead of logging them unclosed)."""

    def __init__(self, name: str, aclose: Callable[[], Coroutine[Any, Any, Any]] | None = None):
        self.name, self.aclose = name, aclose
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name=self.name, daemon=True
                )
                self._thread.start()
                atexit.register(self.close)
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def close(self) -> None:
        """Run `aclose` on the loop, then stop it (tests, exit)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        atexit.unregister(self.close)
        if self.aclose is not None:
            asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


FCM = "https://fcm.googleapis.com"
# What firebase-admin's own clients send as X-FIREBASE-CLIENT.
_FIREBASE_CLIENT = f"fire-admin-python/{metadata.version('firebase_admin')}"
FCM_TIMEOUT_S = 10.0
TOKEN_MARGIN_S = 300  # an access token this close to its expiry is fetched anew


@dataclass
class FcmSender:
    """FCM's HTTP v1 API (`POST /v1/projects/{project}/messages:send`, one message a request)
    with firebase-admin's service-account credentials (the OAuth 2.0 JWT-bearer grant, the
    access token kept until five minutes before it expires) and its message model
    (`messaging.Message`, validated and encoded to FCM's JSON by the SDK's own encoder), sent
    by aiohttp on an event loop of the sender's own, at most `concurrency` requests at once on
    as many kept-alive connections. `endpoint` (tests and benchmarks only) sends to a local
    FCM-compatible server instead of fcm.googleapis.com; the proxy comes from HTTPS_PROXY and
    NO_PROXY, as with the SDK.

    Why not the SDK's `send_each` / `send_each_async` (issue #16 item 7, docs/tasks.md,
    Delivery): a fan-out of 10,000 must be received within 10 s on two cores that also run the
    API, the database and (in the benchmark) the fake services, so the CPU a push costs decides.
    Measured against tests/fakes/fcm.py at 20 ms a request, 3,000 pushes, client process only:
    `send_each` (requests, a thread a message; 1.27 ms of CPU a push on our own thread pool),
    `send_each_async` (httpx; 1.17 ms a request over HTTP/2, and over HTTP/1.1 its connection
    pool stalls past 100 connections; 0.92 ms with an aiohttp transport under httpx), aiohttp
    alone 0.29 ms. The SDK's clients spend it on their request models, header handling and
    per-request auth flow, not on the message: the message is still the SDK's.

    Outcomes as the SDK's error classes would give them: 200 `sent` (the message name as id);
    errorCode UNREGISTERED `unregistered` (the caller deletes the device); INVALID_ARGUMENT
    `invalid` (never retried); QUOTA_EXCEEDED (429), UNAVAILABLE (503), INTERNAL (500) and a
    dropped or refused connection retried with exponential backoff, honouring Retry-After,
    then `failed`; 401 fetches a new access token once and tries again; a time-out `failed`
    as DEADLINE_EXCEEDED (the message may have gone: not sent twice); anything else `failed`
    with FCM's code (SENDER_ID_MISMATCH, THIRD_PARTY_AUTH_ERROR, PERMISSION_DENIED...).
    """

    credentials_file: str
    project_id: str | None = None
    endpoint: str | None = None
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    name: str = "fcm"
    concurrency: int = FCM_CONCURRENCY
    timeout_s: float = FCM_TIMEOUT_S
    _credential: Any = field(default=None, repr=False)
    _token: str | None = field(default=None, repr=False)
    _token_expires: float = field(default=0.0, repr=False)
    _token_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: Any = field(default=None, repr=False)
    _in_flight: asyncio.Semaphore | None = field(default=None, repr=False)
    _via: str | None = field(default=None, repr=False)
    _loop: BackgroundLoop = field(default_factory=lambda: BackgroundLoop("fcm"), repr=False)

    def _setup(self) -> None:
        with _INIT_LOCK:  # a worker runs several send jobs at once
            if self._credential is None:
                from firebase_admin import credentials

                credential = credentials.Certificate(self.credentials_file)
                self.project_id = self.project_id or credential.project_id
                self._url = f"{self.endpoint or FCM}/v1/projects/{self.project_id}/messages:send"
                self._credential = credential

    def _access_token(self, stale: str | None = None) -> str:
        """The access token, fetched from the account's token_uri when there is none, it is
        about to expire, or FCM refused `stale` (401) and no other send fetched one since."""
        with self._token_lock:
            expiring = time.time() > self._token_expires - TOKEN_MARGIN_S
            if self._token is None or expiring or (stale is not None and stale == self._token):
                info = self._credential.get_access_token()  # blocking: the JWT-bearer grant
                expiry = info.expiry.replace(tzinfo=dt.UTC) if info.expiry else None
                self._token = info.access_token
                self._token_expires = expiry.timestamp() if expiry else time.time() + 3600
            return self._token

    def _message(self, push: Push):
        from firebase_admin import messaging

        return messaging.Message(
            token=push.token,
            data=push.data,
            notification=messaging.Notification(title=push.title, body=push.body),
            android=messaging.AndroidConfig(
                priority="high" if push.urgent else "normal", ttl=push.ttl_s
            ),
            apns=messaging.APNSConfig(
                headers={
                    "apns-priority": "10" if push.urgent else "5",
                    "apns-push-type": "alert",
                    "apns-expiration": str(int(time.time()) + push.ttl_s),
                },
                payload=messaging.APNSPayload(
                    aps=messaging.Aps(
                        sound="default" if push.urgent else None,
                        content_available=not push.urgent or None,
                    )
                ),
            ),
        )

    def _body(self, push: Push) -> bytes:
        """The request body: the SDK's encoding of the message (it validates as it encodes).
        `_MessagingService.encode_message` is what `send`, `send_each` and `send_each_async`
        call; firebase-admin is pinned, and tests/notifications/test_fcm.py reads what FCM
        receives."""
        from firebase_admin import messaging

        message = messaging._MessagingService.encode_message(self._message(push))
        return json.dumps({"message": message}, separators=(",", ":")).encode()

    def __post_init__(self) -> None:
        self._loop.aclose = self._aclose

    def close(self) -> None:
        """Close the connections and stop the sender's loop (tests)."""
        self._loop.close()

    async def _aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._in_flight = None

    def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        if not pushes:
            return []
        self._setup()
        bodies = [self._body(p) for p in pushes]
        outcomes: list[Outcome] = []
        for start in range(0, len(pushes), CHUNK):  # bounds what a send holds in flight
            chunk = slice(start, start + CHUNK)
            token = self._access_token()
            outcomes += self._loop.run(self._send_all(pushes[chunk], bodies[chunk], token))
        failed = [o.error for o in outcomes if o.status == "failed"]
        if failed:  # one line a send, not one a push
            logger.warning(
                "FCM: %d of %d pushes failed after retries (%s)",
                len(failed),
                len(outcomes),
                ", ".join(sorted(set(map(str, failed)))),
                extra={"provider": "fcm"},
            )
        return outcomes

    def _http(self):
        if self._session is None:  # made on the loop, used only there
            import aiohttp

            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=max(1, self.concurrency)),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                # Not trust_env: it looks up ~/.netrc in a thread on every request (two thread
                # hand-offs a push); the proxy is read once instead (`_proxy`).
                trust_env=False,
            )
            self._via = _proxy(self._url)
        return self._session

    async def _send_all(
        self, pushes: Sequence[Push], bodies: Sequence[bytes], token: str
    ) -> list[Outcome]:
        tokens = [token]  # the current access token, shared by the chunk's requests
        sends = [self._send_one(p, b, tokens) for p, b in zip(pushes, bodies, strict=True)]
        return list(await asyncio.gather(*sends))

    def _gate(self) -> asyncio.Semaphore:
        """At most `concurrency` requests of the process in flight. The wait for a turn is not
        part of a request's time-out (aiohttp's would count its wait for a free connection:
        four send jobs of 500 at once timed out queueing, not at FCM)."""
        if self._in_flight is None:  # made on the loop, used only there
            self._in_flight = asyncio.Semaphore(max(1, self.concurrency))
        return self._in_flight

    async def _send_one(self, push: Push, body: bytes, tokens: list[str]) -> Outcome:
        used: list[str] = []

        async def post() -> Answer:
            used[:] = [tokens[0]]
            async with self._gate():
                return await self._post(body, used[0])

        async def refresh() -> bool:  # one new token for every push refused with the old one
            loop = asyncio.get_running_loop()
            tokens[0] = await loop.run_in_executor(None, self._access_token, used[0])
            return True

        return await retried(push.key, post, refresh, self.sleep)

    async def _post(self, body: bytes, token: str) -> Answer:
        import aiohttp

        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=UTF-8",
            "X-GOOG-API-FORMAT-VERSION": "2",
            "X-FIREBASE-CLIENT": _FIREBASE_CLIENT,
        }
        try:
            request = self._http().post(self._url, data=body, headers=headers, proxy=self._via)
            async with request as response:
                answer = await response.read()
                retry_after = _retry_after(response.headers.get("Retry-After"))
                status = response.status
        except TimeoutError:
            return "failed", "DEADLINE_EXCEEDED", None, 0.0
        except aiohttp.ClientError:  # refused, dropped: FCM's UNAVAILABLE
            return "retry", "UNAVAILABLE", None, 0.0
        except Exception as exc:  # one push's surprise must not lose the others' outcomes
            logger.exception("FCM request failed unexpectedly")
            return "failed", type(exc).__name__[:40], None, 0.0
        if status == 200:
            try:
                return "sent", None, json.loads(answer)["name"], 0.0
            except (ValueError, KeyError, TypeError):
                return "failed", "BAD_ANSWER", None, 0.0
        code = _fcm_error(answer, status)
        return classify(status, code), code, None, retry_after


def _proxy(url: str) -> str | None:
    """The proxy for `url` from HTTPS_PROXY / HTTP_PROXY unless NO_PROXY names its host, as
    firebase-admin's requests session would choose it (mainland servers often reach FCM only
    through one)."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    if parts.hostname is None or proxy_bypass(parts.hostname):
        return None
    return getproxies().get(parts.scheme)


def _fcm_error(answer: bytes, status: int) -> str:
    """FCM's error code of an answer: the FcmError detail's `errorCode` (UNREGISTERED,
    QUOTA_EXCEEDED, SENDER_ID_MISMATCH...), else the canonical `status` (INVALID_ARGUMENT,
    UNAVAILABLE...), else the HTTP status, as firebase-admin reads it."""
    try:
        error = json.loads(answer)["error"]
        for detail in error.get("details") or []:
            fcm_error = str(detail.get("@type", "")).endswith("google.firebase.fcm.v1.FcmError")
            if fcm_error and detail.get("errorCode"):
                return str(detail["errorCode"])[:40]
        if error.get("status"):
            return str(error["status"])[:40]
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return f"HTTP {status}"


def classify(status: int, code: str) -> str:
    """The outcome of one FCM error answer: unregistered, invalid, failed; `retry` for quota
    and server errors; `refresh` for a refused access token."""
    if code == "UNREGISTERED":
        return "unregistered"
    if code == "QUOTA_EXCEEDED" or status == 429 or status >= 500:
        return "retry"
    if status == 401:
        return "refresh"
    if code == "INVALID_ARGUMENT":
        return "invalid"
    return "failed"


def _retry_after(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


PROVIDERS = ("fcm", "apns", "jpush")


def make_sender(config: dict[str, Any], provider: str = "fcm") -> Sender:
    """The sender of `provider` when its credentials are configured, else the logging sender:
    fcm (FCM_CREDENTIALS_FILE, FCM_PROJECT_ID), apns (notifications/apns.py: APNS_KEY_FILE,
    APNS_KEY_ID, APNS_TEAM_ID, APNS_TOPIC), jpush (notifications/jpush.py: JPUSH_APP_KEY,
    JPUSH_MASTER_SECRET)."""
    if provider == "apns":
        if not config.get("APNS_KEY_FILE"):
            return LoggingSender()
        from notifications.apns import PRODUCTION, SANDBOX, ApnsSender

        return ApnsSender(
            key_file=config["APNS_KEY_FILE"],
            key_id=config["APNS_KEY_ID"],
            team_id=config["APNS_TEAM_ID"],
            topic=config["APNS_TOPIC"],
            endpoint=config.get("APNS_ENDPOINT")
            or (SANDBOX if config.get("APNS_SANDBOX") else PRODUCTION),
        )
    if provider == "jpush":
        if not config.get("JPUSH_APP_KEY"):
            return LoggingSender()
        from notifications.jpush import ENDPOINT, JPushSender

        return JPushSender(
            app_key=config["JPUSH_APP_KEY"],
            master_secret=config["JPUSH_MASTER_SECRET"],
            endpoint=config.get("JPUSH_ENDPOINT") or ENDPOINT,
            apns_production=not config.get("APNS_SANDBOX"),
        )
    if provider != "fcm":
        raise ValueError(f"unknown push provider {provider!r}")
    if config.get("FCM_CREDENTIALS_FILE"):
        return FcmSender(
            credentials_file=config["FCM_CREDENTIALS_FILE"],
            project_id=config.get("FCM_PROJECT_ID") or None,
            endpoint=config.get("FCM_ENDPOINT") or None,
        )
    return LoggingSender()
