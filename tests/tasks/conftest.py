"""Task fixtures: staff and on-duty volunteers of 南郎家园, tasks made over the API, and the
real firebase-admin SDK pointed at the local fake FCM server (tests/fakes/fcm.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from flask import current_app
from sqlalchemy import select

from app.tasks import service as tasks_service
from notifications import service as notifications
from notifications.models import Delivery
from notifications.push import FcmSender
from tests.fakes import fcm as fake_fcm
from tests.patrols.conftest import COMMUNITY, HOME, east

__all__ = ["COMMUNITY", "HOME", "east"]

DISTRICT = "110105000000"
SUBDISTRICT = "110105001000"  # 建外, 南郎家园's sub-district


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def staff(create_user):
    return create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY])


@pytest.fixture
def dispatcher(create_user):
    """Staff of the whole district: radius tasks of theirs reach past 南郎家园's edge (about
    80 m east of HOME; 300 m east is another sub-district)."""
    return create_user(roles=["grid_staff"], jurisdiction=[DISTRICT])


@pytest.fixture
def volunteer_at(create_user, client, token_for):
    """volunteer_at(metres_east, consent=True, on_duty=True, skills=(), device=True): a
    volunteer of 南郎家园 on duty that far east of HOME, with a registered phone."""

    def make(metres=0.0, *, consent=True, on_duty=True, skills=(), device=True):
        user = create_user(
            roles=["volunteer"], home=COMMUNITY, location_sharing=consent, skills=list(skills)
        )
        headers = token_for(user)
        if on_duty:
            body = {"on_duty": True}
            if consent:
                body["location"] = {"lon": east(metres), "lat": HOME[1]}
            assert client.put("/api/v1/me/duty", json=body, headers=headers).status_code == 200
        if device:
            device_body = {"token": f"token-{user.id}", "platform": "android", "app_version": "2.1"}
            assert (
                client.post("/api/v1/devices", json=device_body, headers=headers).status_code == 201
            )
        return user

    return make


@pytest.fixture
def create_task(client, token_for, staff):
    def make(user=None, **body):
        payload = {
            "title": "南郎家园东门人员聚集, 请协助疏导",
            "kind": "event_support",
            "location": {"lon": HOME[0], "lat": HOME[1]},
            "radius_m": 500,
            "ends_at": (now() + dt.timedelta(hours=2)).isoformat(),
            "needed": 3,
            "targeting": {"mode": "radius"},
        }
        payload.update(body)
        response = client.post("/api/v1/tasks", json=payload, headers=token_for(user or staff))
        assert response.status_code == 201, response.json
        return response.json

    return make


@pytest.fixture
def fan_out(session):
    """fan_out(task, phase=0): the fan-out job's work, then the send jobs' (run in the test's
    transaction, as a worker would run them on committed rows)."""

    def run(task, phase=0):
        task_id = uuid.UUID(task["id"])
        settings = tasks_service.TaskSettings.from_config(current_app.config)
        chosen = tasks_service.fan_out(session, task_id, phase, now(), settings)
        pending = session.scalars(
            select(Delivery.id).where(Delivery.task_id == task_id, Delivery.status == "pending")
        ).all()
        notifications.send(session, pending)
        session.flush()
        return chosen

    return run


@pytest.fixture
def fcm(app, tmp_path):
    """The application sends through FcmSender (firebase-admin's credentials and messages) to
    a fake FCM server for this test; `.slept` holds its back-offs."""
    with fake_fcm.running() as fake:
        slept: list[float] = []

        async def sleep(seconds: float) -> None:  # back-offs recorded, not waited
            slept.append(seconds)

        sender = FcmSender(
            credentials_file=str(fake.service_account(tmp_path)),
            endpoint=fake.base_url,
            sleep=sleep,
        )
        fake.slept = slept
        previous = app.extensions.get("qunfang.push_sender")
        app.extensions["qunfang.push_sender"] = sender
        try:
            yield fake
        finally:
            app.extensions["qunfang.push_sender"] = previous
            sender.close()
