"""Push delivery: messages to devices through FCM (the real firebase-admin SDK), APNs
(notifications/apns.py) or JPush (notifications/jpush.py), each device through its own
provider, or a logging sender for a provider without credentials (so `make run` works offline).

`FcmSender.send` sends in chunks of at most 500 (`send_each`'s requests, on the sender's own
threads), and sorts every answer into an outcome: `sent`, `unregistered` (the token is dead:
the caller deletes the device), `invalid` (the payload or token was refused: reported, never
retried) or `failed`.
`QUOTA_EXCEEDED` (429) and server errors (5xx) are retried with exponential backoff, honouring
FCM's Retry-After; the SDK itself already retries 500/503 a few times underneath.
`send_each_async` (firebase-admin's httpx client) was tried for issue #16 item 7 and is not used:
against tests/fakes/fcm.py (HTTP/1.1) it sent 5,000 pushes at 20 ms a request in 28 s where
`send_each` took 12 s, most of it in httpcore's connection pool scanning its 100 connections on
every event (docs/tasks.md, Delivery); it needs an HTTP/2 (h2c) fake to be measured fairly.
No Flask here: the settings come in as arguments.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

CHUNK = 500  # send_each's limit
# FCM requests in flight per sender (so per worker process), every send job of the process
# together: 100 at 20 ms a request is 5,000 pushes a second, more than a core can build.
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


@dataclass
class FcmSender:
    """FCM through firebase-admin. `endpoint` (tests and benchmarks only) sends to a local
    FCM-compatible server instead of fcm.googleapis.com."""

    credentials_file: str
    project_id: str | None = None
    endpoint: str | None = None
    sleep: Callable[[float], None] = time.sleep
    name: str = "fcm"
    concurrency: int = FCM_CONCURRENCY
    _app: Any = field(default=None, repr=False)
    _pool: ThreadPoolExecutor | None = field(default=None, repr=False)

    def _firebase_app(self):
        with _INIT_LOCK:  # a worker runs several send jobs at once
            return self._make_app()

    def _make_app(self):
        if self._app is None:
            import firebase_admin
            from firebase_admin import credentials

            options = {"projectId": self.project_id} if self.project_id else {}
            self._app = firebase_admin.initialize_app(
                credentials.Certificate(self.credentials_file),
                options,
                name=f"qunfang-{id(self)}",
            )
            if self.endpoint:
                self._redirect(self._app)
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="fcm")
        return self._app

    def _redirect(self, app) -> None:
        """Point the SDK's messaging service at `endpoint` (it has no public option for it)."""
        import requests
        from firebase_admin import _http_client, messaging

        service = messaging._get_messaging_service(app)
        project = service._project_id
        service._fcm_url = f"{self.endpoint}/v1/projects/{project}/messages:send"
        service._client.session.mount(
            self.endpoint,
            requests.adapters.HTTPAdapter(
                pool_connections=100,
                pool_maxsize=CHUNK,
                max_retries=_http_client.DEFAULT_RETRY_CONFIG,
            ),
        )

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

    def _send_each(self, messages: list, app):
        """`messaging.send_each(messages, app=app)` on the sender's own threads.

        The SDK's `send_each` starts a thread per message (500 a chunk) and stops them again,
        every call; with four send jobs to a worker that was 2,000 threads fighting over the
        GIL and urllib3's pool lock, and more CPU than the pushes themselves (issue #16 item 7,
        docs/tasks.md). This is the same request, error mapping and answer as the SDK's
        (firebase-admin 7.7.0, `_MessagingService.send_each`), through one long-lived pool of
        `concurrency` threads shared by the process's send jobs.
        """
        import requests
        from firebase_admin import messaging

        service = messaging._get_messaging_service(app)

        def send_data(data):
            try:
                answer = service._client.body(
                    "post", url=service._fcm_url, headers=dict(service._fcm_headers), json=data
                )
            except requests.exceptions.RequestException as exception:
                return messaging.SendResponse(None, service._handle_fcm_error(exception))
            return messaging.SendResponse(answer, None)

        data = [service._message_data(message, False) for message in messages]
        return messaging.BatchResponse(list(self._pool.map(send_data, data)))

    def close(self) -> None:
        """Delete the firebase app and stop the sender's threads (tests)."""
        if self._app is not None:
            import firebase_admin

            firebase_admin.delete_app(self._app)
            self._app = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        outcomes: dict[Any, Outcome] = {}
        for start in range(0, len(pushes), CHUNK):
            self._send_chunk(pushes[start : start + CHUNK], outcomes)
        return [outcomes[p.key] for p in pushes]

    def _send_chunk(self, pushes: Sequence[Push], outcomes: dict[Any, Outcome]) -> None:

        app = self._firebase_app()
        waiting = list(pushes)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            batch = self._send_each([self._message(p) for p in waiting], app)
            again, retry_after = [], 0.0
            for push, response in zip(waiting, batch.responses, strict=True):
                status, error = _classify(response)
                if status == "retry" and attempt < MAX_ATTEMPTS:
                    again.append(push)
                    retry_after = max(retry_after, _retry_after(response.exception))
                    continue
                if status == "retry":
                    status = "failed"
                outcomes[push.key] = Outcome(push.key, status, response.message_id, error, attempt)
            if not again:
                return
            delay = min(MAX_BACKOFF_S, max(retry_after, BACKOFF_S * 2 ** (attempt - 1)))
            self.sleep(delay * (1 + random.random() / 4))  # noqa: S311 - jitter, not a secret
            waiting = again


def _classify(response) -> tuple[str, str | None]:
    """(status, error code) of one send_each answer; status `retry` for quota and server
    errors."""
    from firebase_admin import exceptions, messaging

    error = response.exception
    if response.success:
        return "sent", None
    if isinstance(error, messaging.UnregisteredError):
        return "unregistered", "UNREGISTERED"
    if isinstance(error, messaging.QuotaExceededError):
        return "retry", "QUOTA_EXCEEDED"
    if isinstance(error, (exceptions.UnavailableError, exceptions.InternalError)):
        return "retry", error.code
    if isinstance(error, exceptions.InvalidArgumentError):
        return "invalid", "INVALID_ARGUMENT"
    return "failed", str(getattr(error, "code", None) or type(error).__name__)


def _retry_after(error) -> float:
    response = getattr(error, "http_response", None)
    value = response.headers.get("Retry-After") if response is not None else None
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
