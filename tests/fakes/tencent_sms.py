"""A local Tencent Cloud SMS server on 127.0.0.1, for the real `tencentcloud-sdk-python-sms`.

It checks every request as Tencent Cloud API 3.0 does, computed here on its own (not with the
SDK's code): the `Authorization` header's credential (SecretId, date, service `sms`,
`tc3_request`), the timestamp (within 5 minutes of now, and of the credential's date), and the
TC3-HMAC-SHA256 signature over the canonical request (method, URI, query, the signed headers
`content-type` and `host` as received, the SHA-256 of the body), with the signing key derived
from the SecretKey: HMAC("TC3" + key, date) -> HMAC(., "sms") -> HMAC(., "tc3_request").
A wrong key answers `AuthFailure.SignatureFailure`, an unknown SecretId
`AuthFailure.SecretIdNotFound`.

It answers `SendSms` (version 2021-01-11) as Tencent does, HTTP 200 with a JSON body:
a `SendStatusSet` with a status per number (`Ok`, or a number's own failure scripted with
`script_number(phone, code)`: `FailedOperation.PhoneNumberInBlacklist`,
`InvalidParameterValue.IncorrectPhoneNumber`, `LimitExceeded.PhoneNumberDailyLimit`), or a
whole-request `Error` scripted with `fail_next(["InternalError", ...])` (one per request, in
order). `delay_s` makes every answer slow.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "sms"
VERSION = "2021-01-11"
_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)
MESSAGES = {
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. "
    "Please check your signature is correct.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your "
    "SecretId is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. Timestamp and server time cannot "
    "differ by more than five minutes.",
    "AuthFailure.InvalidAuthorization": "Check the Authorization header.",
    "InternalError": "An internal error has occurred. Retry your request, but if the problem "
    "persists, contact us.",
    "RequestLimitExceeded": "Your current request count exceeds the limit.",
    "InvalidAction": "The action SendSms is not found.",
    "FailedOperation.PhoneNumberInBlacklist": "phone number in blacklist",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect phone number",
    "LimitExceeded.PhoneNumberDailyLimit": "the number of SMS messages sent to a single "
    "mobile number every day exceeds the upper limit",
}


@dataclass
class Received:
    phones: list[str]
    body: dict
    answer: str  # "Ok", or the whole request's error code


@dataclass
class FakeTencentSms:
    secret_id: str = field(default_factory=lambda: "AKID" + secrets.token_hex(16))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    sdk_app_id: str = "1400000001"
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    numbers: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _serials: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    endpoint: str = ""  # host:port, as the SDK's HttpProfile.endpoint takes it

    def script_number(self, phone: str, code: str) -> None:
        self.numbers[phone] = code

    def fail_next(self, codes: list[str]) -> None:
        self.failures.extend(codes)

    def delivered(self) -> list[str]:
        """Numbers an SMS was accepted for, in order."""
        return [
            phone
            for r in self.received
            if r.answer == "Ok"
            for phone in r.phones
            if self.numbers.get(phone, "Ok") == "Ok"
        ]

    def signature_error(self, method: str, path: str, headers, body: bytes) -> str | None:
        """None when the request is signed with our SecretKey, else Tencent's error code."""
        match = _AUTH.match(headers.get("Authorization") or "")
        if not match or match["service"] != SERVICE:
            return "AuthFailure.InvalidAuthorization"
        if match["id"] != self.secret_id:
            return "AuthFailure.SecretIdNotFound"
        timestamp = int(headers.get("X-TC-Timestamp") or 0)
        if abs(time.time() - timestamp) > 300:
            return "AuthFailure.SignatureExpire"
        date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
        if date != match["date"]:
            return "AuthFailure.SignatureFailure"
        signed = match["signed"].split(";")
        canonical_headers = "".join(
            f"{name}:{(headers.get(name) or '').strip().lower()}\n" for name in signed
        )
        uri, _, query = path.partition("?")
        canonical_request = "\n".join(
            [
                method,
                uri,
                query,
                canonical_headers,
                match["signed"],
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{date}/{SERVICE}/tc3_request"
        string_to_sign = "\n".join(
            [
                "TC3-HMAC-SHA256",
                str(timestamp),
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )

        def mac(key: bytes, message: str) -> bytes:
            return hmac.new(key, message.encode(), hashlib.sha256).digest()

        key = mac(mac(mac(("TC3" + self.secret_key).encode(), date), SERVICE), "tc3_request")
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match["signature"]):
            return "AuthFailure.SignatureFailure"
        return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args) -> None:  # quiet
        return

    def _answer(self, response: dict) -> None:
        if self.server.fake.delay_s:  # the request was taken (and recorded): the answer is late
            time.sleep(self.server.fake.delay_s)
        data = json.dumps({"Response": {**response, "RequestId": str(uuid.uuid4())}}).encode()
        self.send_response(200)  # API 3.0 answers errors with 200 too
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: str) -> None:
        self._answer({"Error": {"Code": code, "Message": MESSAGES.get(code, code)}})

    def do_POST(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        refused = fake.signature_error("POST", self.path, self.headers, body)
        if refused:
            with fake._lock:
                fake.received.append(Received([], {}, refused))
            self._error(refused)
            return
        if self.headers.get("X-TC-Action") != "SendSms" or (
            self.headers.get("X-TC-Version") != VERSION
        ):
            self._error("InvalidAction")
            return
        request = json.loads(body)
        phones = list(request.get("PhoneNumberSet") or [])
        with fake._lock:
            answer = fake.failures.pop(0) if fake.failures else "Ok"
            fake.received.append(Received(phones, request, answer))
        if answer != "Ok":
            self._error(answer)
            return
        if request.get("SmsSdkAppId") != fake.sdk_app_id:
            self._error("FailedOperation.SmsSdkAppIdVerifyFail")
            return
        statuses = []
        for phone in phones:
            code = fake.numbers.get(phone, "Ok")
            ok = code == "Ok"
            statuses.append(
                {
                    "SerialNo": f"2433:{next(fake._serials):020d}" if ok else "",
                    "PhoneNumber": phone,
                    "Fee": 1 if ok else 0,
                    "SessionContext": request.get("SessionContext") or "",
                    "Code": code,
                    "Message": "send success" if ok else MESSAGES.get(code, code),
                    "IsoCode": "CN",
                }
            )
        self._answer({"SendStatusSet": statuses})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeTencentSms):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def running(delay_s: float = 0.0) -> Iterator[FakeTencentSms]:
    """A FakeTencentSms serving on a free loopback port until the block ends."""
    fake = FakeTencentSms(delay_s=delay_s)
    server = _Server(fake)
    fake.endpoint = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
