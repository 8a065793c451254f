"""Push providers' fixtures: the real APNs and JPush senders pointed at local fakes
(tests/fakes/apns.py, tests/fakes/jpush.py), and, for the tests through a task's fan-out, the
task fixtures of tests/tasks/conftest.py."""

from __future__ import annotations

import pytest

from notifications.apns import ApnsSender
from notifications.jpush import JPushSender
from tests.fakes import apns as fake_apns
from tests.fakes import jpush as fake_jpush
from tests.tasks.conftest import (  # noqa: F401 - fixtures
    create_task,
    fan_out,
    fcm,
    staff,
    volunteer_at,
)


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
