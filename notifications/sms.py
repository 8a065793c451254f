"""SMS delivery: Tencent Cloud SMS through its SDK (`tencentcloud-sdk-python-sms`, API
2021-01-11 `SendSms`), or a logging sender when no credentials are configured.

`TencentSmsSender.send` sends the messages that share template parameters together (at most
200 numbers a request, Tencent's limit) and sorts every answer into an outcome:
- `sent`: Tencent accepted the number (`Code` "Ok"; its `SerialNo` is the message id);
- `invalid`: the number was refused as malformed (`InvalidParameterValue.IncorrectPhoneNumber`);
- `failed`: anything else, with Tencent's code as the error: the number is on the blacklist
  (the person unsubscribed: `FailedOperation.PhoneNumberInBlacklist`), it reached its daily
  limit (`LimitExceeded.PhoneNumberDailyLimit`), the credentials were refused (`AuthFailure.*`).
A request Tencent answered `InternalError` or `RequestLimitExceeded` sent nothing and is
retried with exponential backoff. A request whose answer was lost (timeout, broken connection,
non-JSON answer: `ClientNetworkError`, `ServerNetworkError`) is **not** retried: the SMS may
have gone out, and a second urgent SMS in the night is worse than none; it counts `failed`.

No Flask here: the settings come in as arguments. Phone numbers never reach a log.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

BATCH = 200  # numbers per SendSms request
MAX_ATTEMPTS = 3
BACKOFF_S = 0.5
MAX_BACKOFF_S = 4.0
TIMEOUT_S = 10
# The SDK logs whole requests and answers (the numbers among them) at DEBUG.
SDK_LOGGER = "tencentcloud_sdk_common"
_RETRIED = frozenset({"InternalError", "RequestLimitExceeded"})
_INVALID = frozenset({"InvalidParameterValue.IncorrectPhoneNumber"})


@dataclass(frozen=True)
class Sms:
    """One SMS from the configured template: `params` fill its {1}, {2}, ..."""

    key: Any  # the caller's id for it (a delivery id)
    phone: str  # E.164, "+8613800138000"
    params: tuple[str, ...]


@dataclass
class SmsOutcome:
    key: Any
    status: str  # sent, logged, invalid, failed
    message_id: str | None = None
    error: str | None = None
    attempts: int = 1


class SmsSender(Protocol):
    name: str

    def send(self, messages: Sequence[Sms]) -> list[SmsOutcome]: ...


def e164(phone: str) -> str:
    """A mainland mobile number as Tencent wants it: 13800138000 -> +8613800138000."""
    digits = phone.strip()
    return digits if digits.startswith("+") else f"+86{digits}"


class LoggingSmsSender:
    """Without credentials: every SMS is logged (how many, never the number or the text) and
    counted as `logged`, not `sent`."""

    name = "logging"

    def send(self, messages: Sequence[Sms]) -> list[SmsOutcome]:
        if messages:
            logger.info("sms (logging sender)", extra={"count": len(messages)})
        return [SmsOutcome(m.key, "logged", message_id=f"logged:{m.key}") for m in messages]


@dataclass
class TencentSmsSender:
    """Tencent Cloud SMS. `endpoint` (tests only) is a host:port spoken to over plain HTTP
    instead of sms.tencentcloudapi.com."""

    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_name: str
    template_id: str
    region: str = "ap-guangzhou"
    endpoint: str | None = None
    timeout_s: int = TIMEOUT_S
    sleep: Callable[[float], None] = time.sleep
    name: str = "tencent_sms"
    _client: Any = field(default=None, repr=False)

    def client(self):
        if self._client is None:
            from tencentcloud.common import credential
            from tencentcloud.common.profile.client_profile import ClientProfile
            from tencentcloud.common.profile.http_profile import HttpProfile
            from tencentcloud.sms.v20210111 import sms_client

            # Numbers must not reach a log, even with LOG_LEVEL=DEBUG.
            logging.getLogger(SDK_LOGGER).setLevel(logging.WARNING)
            http = HttpProfile(reqTimeout=self.timeout_s)
            if self.endpoint:
                http.endpoint = self.endpoint
                http.scheme = "http"
            self._client = sms_client.SmsClient(
                credential.Credential(self.secret_id, self.secret_key),
                self.region,
                ClientProfile(signMethod="TC3-HMAC-SHA256", httpProfile=http),
            )
        return self._client

    def send(self, messages: Sequence[Sms]) -> list[SmsOutcome]:
        outcomes: dict[Any, SmsOutcome] = {}
        for batch in _batches(messages):
            self._send_batch(batch, outcomes)
        return [outcomes[m.key] for m in messages]

    def _send_batch(self, batch: list[Sms], outcomes: dict[Any, SmsOutcome]) -> None:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.sms.v20210111 import models

        request = models.SendSmsRequest()
        request.PhoneNumberSet = [m.phone for m in batch]
        request.SmsSdkAppId = self.sdk_app_id
        request.SignName = self.sign_name
        request.TemplateId = self.template_id
        request.TemplateParamSet = list(batch[0].params)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                answer = self.client().SendSms(request)
            except TencentCloudSDKException as exc:
                code = exc.get_code() or "Unknown"
                if _retried(code) and attempt < MAX_ATTEMPTS:
                    delay = min(MAX_BACKOFF_S, BACKOFF_S * 2 ** (attempt - 1))
                    self.sleep(delay * (1 + random.random() / 4))  # noqa: S311 - jitter
                    continue
                logger.warning("sms refused", extra={"error": code, "count": len(batch)})
                for m in batch:
                    outcomes[m.key] = SmsOutcome(m.key, "failed", error=code[:80], attempts=attempt)
                return
            by_phone = {s.PhoneNumber: s for s in answer.SendStatusSet or []}
            for m in batch:
                status = by_phone.get(m.phone)
                outcomes[m.key] = _outcome(m, status, attempt)
            return


def _retried(code: str) -> bool:
    return code in _RETRIED or code.startswith("RequestLimitExceeded.")


def _outcome(message: Sms, status: Any, attempt: int) -> SmsOutcome:
    if status is None:
        return SmsOutcome(message.key, "failed", error="NoStatus", attempts=attempt)
    if status.Code == "Ok":
        return SmsOutcome(message.key, "sent", message_id=status.SerialNo, attempts=attempt)
    kind = "invalid" if status.Code in _INVALID else "failed"
    return SmsOutcome(message.key, kind, error=(status.Code or "Unknown")[:80], attempts=attempt)


def _batches(messages: Sequence[Sms]) -> list[list[Sms]]:
    """Requests to make: one template's parameters each, a number at most once, <= BATCH."""
    batches: list[list[Sms]] = []
    open_: dict[tuple[str, ...], list[list[Sms]]] = {}
    for message in messages:
        candidates = open_.setdefault(message.params, [])
        for batch in candidates:
            if len(batch) < BATCH and all(m.phone != message.phone for m in batch):
                batch.append(message)
                break
        else:
            batch = [message]
            candidates.append(batch)
            batches.append(batch)
    return batches


def make_sms_sender(config: dict[str, Any]) -> SmsSender:
    """Tencent Cloud SMS when its credentials are configured (all five: app/config.py checks
    that), else the logging sender."""
    if config.get("TENCENT_SMS_SECRET_ID"):
        return TencentSmsSender(
            secret_id=config["TENCENT_SMS_SECRET_ID"],
            secret_key=config["TENCENT_SMS_SECRET_KEY"],
            sdk_app_id=config["TENCENT_SMS_SDK_APP_ID"],
            sign_name=config["TENCENT_SMS_SIGN_NAME"],
            template_id=config["TENCENT_SMS_TEMPLATE_ID"],
            region=config.get("TENCENT_SMS_REGION") or "ap-guangzhou",
            endpoint=config.get("TENCENT_SMS_ENDPOINT") or None,
        )
    return LoggingSmsSender()
