"""Notification fixtures: the tasks' volunteers and fan-out (tests/tasks/conftest.py); the real
APNs and JPush senders pointed at local fakes (tests/fakes/apns.py, tests/fakes/jpush.py); for
the SMS fallback, volunteers who gave the SMS consent over the API, the fallback job's work run
at a chosen time, and the real Tencent Cloud SMS SDK pointed at its fake
(tests/fakes/tencent_sms.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from app.tasks import fallback
from notifications.apns import ApnsSender
from notifications.jpush import JPushSender
from notifications.models import Delivery
from notifications.sms import TencentSmsSender
from tests.fakes import apns as fake_apns
from tests.fakes import jpush as fake_jpush
from tests.fakes import tencent_sms as fake_tencent_sms
from tests.tasks.conftest import create_task, fan_out, fcm, staff, volunteer_at

__all__ = ["create_task", "fan_out", "fcm", "staff", "volunteer_at"]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def sms_volunteer(volunteer_at, client, token_for):
    """sms_volunteer(metres_east=0, consent=True): an on-duty volunteer with a phone who gave
    (or did not give) the SMS consent through PATCH /me."""

    def make(metres=0.0, *, consent=True, **options):
        user = volunteer_at(metres, **options)
        if consent:
            response = client.patch(
                "/api/v1/me", json={"sms_consent": True}, headers=token_for(user)
            )
            assert response.status_code == 200, response.json
        return user

    return make


@pytest.fixture
def urgent_task(create_task):
    return lambda **body: create_task(kind="urgent_assist", **body)


@pytest.fixture
def claim(app, session):
    """claim(task, at=None): the fallback job's first half, at `at` (default: just past
    SMS_FALLBACK_AFTER_S from now); returns how many SMS it claimed."""

    def run(task, at=None):
        settings = fallback.Settings.of(app.config)
        at = at or now() + dt.timedelta(seconds=settings.after_s + 1)
        claimed = fallback.claim(session, uuid.UUID(task["id"]), at, settings)
        session.flush()
        return claimed

    return run


@pytest.fixture
def send(app, session):
    """send(task, at=None): the fallback job's second half; returns the outcome counts."""

    def run(task, at=None):
        settings = fallback.Settings.of(app.config)
        at = at or now() + dt.timedelta(seconds=settings.after_s + 1)
        counts = fallback.send_pending(
            session, uuid.UUID(task["id"]), fallback.sms_sender(), at, settings.timezone
        )
        session.flush()
        return counts

    return run


@pytest.fixture
def run_fallback(claim, send):
    """run_fallback(task, at=None): the whole fallback job's work at `at`."""

    def run(task, at=None):
        claim(task, at)
        return send(task, at)

    return run


@pytest.fixture
def sms_rows(session):
    """The task's SMS deliveries."""

    def rows(task):
        session.expire_all()
        return session.scalars(
            select(Delivery).where(
                Delivery.task_id == uuid.UUID(task["id"]), Delivery.channel == "sms"
            )
        ).all()

    return rows


def make_sender(fake, **overrides) -> TencentSmsSender:
    values = {
        "secret_id": fake.secret_id,
        "secret_key": fake.secret_key,
        "sdk_app_id": fake.sdk_app_id,
        "sign_name": "群防",
        "template_id": "2000001",
        "endpoint": fake.endpoint,
        "sleep": fake.slept.append,
        **overrides,
    }
    return TencentSmsSender(**values)


@pytest.fixture
def tencent(app):
    """The application sends SMS through the real SDK to a fake Tencent Cloud for this test.
    `tencent.use(**sender_options)` swaps in a sender made otherwise (a wrong key)."""
    with fake_tencent_sms.running() as fake:
        fake.slept = []
        previous = app.extensions.get("qunfang.sms_sender")

        def use(**overrides):
            app.extensions["qunfang.sms_sender"] = make_sender(fake, **overrides)

        fake.use = use
        use()
        try:
            yield fake
        finally:
            app.extensions["qunfang.sms_sender"] = previous


@pytest.fixture
def apns_fake():
    with fake_apns.running() as fake:
        yield fake


@pytest.fixture
def apns_sender(apns_fake, tmp_path):
    """The real APNs sender, with a fresh .p8 key, against the fake; its back-offs are recorded
    in `.slept`, not waited."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    sender = ApnsSender(
        key_file=str(apns_fake.key_file(tmp_path)),
        key_id=apns_fake.key_id,
        team_id=apns_fake.team_id,
        topic=apns_fake.topic,
        endpoint=apns_fake.base_url,
        sleep=sleep,
    )
    sender.slept = slept
    try:
        yield sender
    finally:
        sender.close()


@pytest.fixture
def jpush_fake():
    with fake_jpush.running() as fake:
        yield fake


@pytest.fixture
def jpush_sender(jpush_fake):
    """The real JPush sender (the official SDK) against the fake; back-offs in `.slept`."""
    slept: list[float] = []
    sender = JPushSender(
        app_key=jpush_fake.app_key,
        master_secret=jpush_fake.master_secret,
        endpoint=jpush_fake.base_url,
        sleep=slept.append,
    )
    sender.slept = slept
    return sender


def _installed(app, provider, sender):
    name = f"qunfang.push_sender.{provider}"
    previous = app.extensions.get(name)
    app.extensions[name] = sender
    return name, previous


@pytest.fixture
def apns(app, apns_fake, apns_sender):
    """The application sends APNs devices' pushes to the fake APNs for this test."""
    name, previous = _installed(app, "apns", apns_sender)
    try:
        yield apns_fake
    finally:
        app.extensions[name] = previous


@pytest.fixture
def jpush(app, jpush_fake, jpush_sender):
    """The application sends JPush devices' pushes to the fake JPush for this test."""
    name, previous = _installed(app, "jpush", jpush_sender)
    try:
        yield jpush_fake
    finally:
        app.extensions[name] = previous
