"""JPush (极光推送, issue #16): Android phones sold in mainland China, which have no Google
services and so no FCM, through JPush's official Python SDK (`jpush` on PyPI, REST API v3).

A send groups the pushes by content (title, body, data, urgency, TTL: the pushes of one task's
fan-out are alike) and sends each group as pushes to at most 1000 registration ids, the API's
limit for an audience. Groups go concurrently, a few at a time (JPush counts requests per
minute against the app's quota, not recipients).

JPush answers a batch as a whole: one `msg_id` for the batch, no word per registration id. So
every device of an accepted batch is `sent` with that msg_id (a registration id JPush does not
know inside an accepted batch is silently skipped by JPush and cannot be told apart), and an
error is the outcome of every device of the batch:

- 1011 (no push target: none of the registration ids is known to JPush, or all were inactive
  for over 255 days) -> `unregistered`: the caller deletes those devices;
- 1002, 1003, 1005, 1009 and other 400s (a parameter JPush refuses) -> `invalid`;
- 2002 / HTTP 429 (request rate), 2008 (push rate), 1000 and 1030 (JPush's own errors) and any
  5xx or broken connection -> retried with exponential backoff (honouring the rate limit's
  `X-Rate-Limit-Reset`, at most MAX_BACKOFF_S), then `failed`;
- 401 / 1004 (app key and master secret refused), 1008 (no such app key) and other refusals
  (2003, 2004: no permission) -> `failed`, logged as an error.

The SDK has no endpoint option (its hosts are a table of zones in `jpush.common`): the sender
adds a zone of its own for `endpoint`, by default JPush's `https://api.jpush.cn`; tests point
it at a local fake (tests/fakes/jpush.py). No Flask here: the settings come in as arguments.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from notifications.push import BACKOFF_S, MAX_ATTEMPTS, MAX_BACKOFF_S, Outcome, Push

logger = logging.getLogger(__name__)

ENDPOINT = "https://api.jpush.cn"
BATCH = 1000  # registration ids in one push's audience
CONCURRENCY = 4  # batches in flight
TIMEOUT_S = 10.0
MAX_TTL_S = 10 * 24 * 3600  # JPush keeps an offline message at most 10 days

UNREGISTERED = frozenset({1011})
RETRY = frozenset({1000, 1030, 2002, 2008})
REFUSED = frozenset({1004, 1008, 2003, 2004})
_zones = itertools.count(1)


@dataclass
class _Answer:
    status: str
    error: str | None = None
    message_id: str | None = None
    wait_s: float = 0.0


def classify(http_status: int | None, code: int | None) -> str:
    """The outcome of a batch's answer: sent, unregistered, invalid, failed, or `retry`."""
    if http_status is not None and 200 <= http_status < 300:
        return "sent"
    if code in UNREGISTERED:
        return "unregistered"
    if code in RETRY or http_status == 429 or http_status is None or http_status >= 500:
        return "retry"
    if http_status == 401 or code in REFUSED:
        return "failed"
    if http_status == 400:
        return "invalid"
    return "failed"


@dataclass
class JPushSender:
    """JPush through the official SDK, with the app key and master secret of the JPush app."""

    app_key: str
    master_secret: str
    endpoint: str = ENDPOINT
    apns_production: bool = True  # iPhones reached through JPush: production or development APNs
    concurrency: int = CONCURRENCY
    timeout_s: float = TIMEOUT_S
    sleep: Callable[[float], None] = time.sleep
    name: str = "jpush"
    _client: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _jpush(self):
        with self._lock:  # a worker runs several send jobs at once
            return self._make_client()

    def _make_client(self):
        if self._client is None:
            import jpush
            from jpush import common

            zone = f"QUNFANG{next(_zones)}"
            base = self.endpoint.rstrip("/")
            common.ZONES[zone] = {**common.ZONES["DEFAULT"], "PUSH": f"{base}/v3/"}
            self._client = jpush.JPush(
                self.app_key, self.master_secret, timeout=self.timeout_s, zone=zone
            )
        return self._client

    def send(self, pushes: Sequence[Push]) -> list[Outcome]:
        if not pushes:
            return []
        groups: dict[str, list[Push]] = {}
        for p in pushes:
            groups.setdefault(_content_key(p), []).append(p)
        batches = [
            group[start : start + BATCH]
            for group in groups.values()
            for start in range(0, len(group), BATCH)
        ]
        client = self._jpush()
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(batches)))) as pool:
            results = list(pool.map(lambda batch: self._send_batch(client, batch), batches))
        outcomes = {o.key: o for result in results for o in result}
        return [outcomes[p.key] for p in pushes]

    def _send_batch(self, client, batch: Sequence[Push]) -> list[Outcome]:
        answer = _Answer("failed")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            answer = self._post(client, batch)
            if answer.status != "retry":
                break
            if attempt < MAX_ATTEMPTS:
                delay = min(MAX_BACKOFF_S, max(answer.wait_s, BACKOFF_S * 2 ** (attempt - 1)))
                self.sleep(delay * (1 + random.random() / 4))  # noqa: S311 - jitter
        status = "failed" if answer.status == "retry" else answer.status
        return [Outcome(p.key, status, answer.message_id, answer.error, attempt) for p in batch]

    def _post(self, client, batch: Sequence[Push]) -> _Answer:
        import jpush
        from jpush import common

        request = client.create_push()
        request.audience = jpush.audience(jpush.registration_id(*(p.token for p in batch)))
        request.platform = jpush.all_
        request.notification = _notification(batch[0])
        request.options = {
            "time_to_live": min(batch[0].ttl_s, MAX_TTL_S),
            "apns_production": self.apns_production,
        }
        try:
            response = request.send()
        except common.Unauthorized:
            _refused(1004)
            return _Answer("failed", "1004")
        except common.JPushFailure as failure:
            status = failure.response.status_code
            code = failure.error_code if isinstance(failure.error_code, int) else None
            if code in REFUSED:
                _refused(code)
            outcome = classify(status, code)
            if outcome not in ("unregistered", "retry"):
                logger.warning("JPush refused a push: %s %s", code, failure.details)
            # The delivery keeps JPush's code (its error column is short), the log its words.
            error = str(code) if code else f"HTTP {status}"
            return _Answer(outcome, error, wait_s=_reset_s(failure.response))
        except (common.APIConnectionException, common.APIRequestException) as exc:
            logger.warning("JPush request failed: %s", exc)
            return _Answer("retry", type(exc).__name__[:40])
        except (AttributeError, ValueError) as exc:  # the SDK choked on an answer not JSON
            logger.warning("JPush answered something unreadable: %s", type(exc).__name__)
            return _Answer("retry", "unreadable answer")
        msg_id = (response.payload or {}).get("msg_id")
        return _Answer("sent", message_id=str(msg_id) if msg_id is not None else None)


def _refused(code: int) -> None:
    logger.error(
        "JPush refused our credentials (error %s): check JPUSH_APP_KEY and JPUSH_MASTER_SECRET",
        code,
        extra={"provider": "jpush", "code": code},
    )


def _notification(push: Push) -> dict[str, Any]:
    import jpush

    return jpush.notification(
        alert=push.body or push.title,
        android=jpush.android(
            alert=push.body or push.title,
            title=push.title,
            extras=push.data,
            priority=2 if push.urgent else 0,  # 2: shown as a heads-up notification
        ),
        ios=jpush.ios(
            alert={"title": push.title, "body": push.body},
            badge=None,
            sound="default" if push.urgent else None,
            sound_disable=not push.urgent,
            extras=push.data,
            interruption_level="time-sensitive" if push.urgent else "active",
        ),
    )


def _content_key(push: Push) -> str:
    return json.dumps([push.title, push.body, push.data, push.urgent, push.ttl_s], sort_keys=True)


def _reset_s(response) -> float:
    """Seconds until JPush's rate-limit window resets (X-Rate-Limit-Reset), on a 429."""
    if response is None or response.status_code != 429:
        return 0.0
    try:
        return float(response.headers.get("X-Rate-Limit-Reset") or 0)
    except ValueError:
        return 0.0
