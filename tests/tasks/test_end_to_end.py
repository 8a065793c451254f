"""On committed data, with separate connections and a real job worker: a created task reaches
phones through the worker and firebase-admin; simultaneous accepts respect the places."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from app.core import jobs as jobs_module
from tests import encrypted_rows
from tests.conftest import make_app
from tests.fakes import fcm as fake_fcm
from tests.patrols.conftest import COMMUNITY, HOME

VOLUNTEERS = 20
PLACES = 3


@pytest.fixture
def committed(app, database_url, tmp_path):
    """An app sending to a fake FCM server, a staff member and 20 on-duty volunteers with
    phones, all committed; everything they made is deleted afterwards."""
    with fake_fcm.running() as fake:
        # The session's `app` built the database; this one sends to the fake FCM server.
        app = make_app(
            database_url,
            FCM_CREDENTIALS_FILE=str(fake.service_account(tmp_path)),
            FCM_ENDPOINT=fake.base_url,
        )
        engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        users = [uuid.uuid4() for _ in range(VOLUNTEERS + 1)]
        tokens = {}
        with engine.begin() as conn:
            community = conn.execute(
                sa.text("SELECT id FROM areas WHERE code = :c"), {"c": COMMUNITY}
            ).scalar_one()
            for n, user_id in enumerate(users):
                staff = n == 0
                encrypted_rows.insert_user(
                    conn,
                    id=user_id,
                    phone=f"166{uuid.uuid4().int % 10**8:08d}",
                    name=f"端到端{n}",
                    roles=["grid_staff"] if staff else ["volunteer"],
                    status="active",
                    home_community_id=community,
                    location_sharing=True,
                )
                token = encrypted_rows.signed_in(conn, app, user_id)
                if staff:
                    conn.execute(
                        sa.text("INSERT INTO user_areas (user_id, area_id) VALUES (:u, :a)"),
                        {"u": user_id, "a": community},
                    )
                else:
                    conn.execute(
                        sa.text(
                            "INSERT INTO duty_status (user_id, geom, position_at) VALUES "
                            "(:u, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), now())"
                        ),
                        {"u": user_id, "lon": HOME[0] + n * 0.00005, "lat": HOME[1]},
                    )
                    conn.execute(
                        sa.text(
                            "INSERT INTO devices (id, user_id, token, platform) "
                            "VALUES (gen_random_uuid(), :u, :t, 'android')"
                        ),
                        {"u": user_id, "t": f"e2e-token-{user_id}"},
                    )
                tokens[user_id] = token
        try:
            yield app, fake, users, tokens
        finally:
            with engine.begin() as conn:
                encrypted_rows.forget_users(conn, users)
            engine.dispose()
            encrypted_rows.release(app)


def bearer(tokens, user_id):
    return {"Authorization": f"Bearer {tokens[user_id]}"}


def test_a_created_task_reaches_the_phones_and_accepts_respect_the_places(committed):
    app, fake, users, tokens = committed
    staff, volunteers = users[0], users[1:]
    client = app.test_client()
    body = {
        "title": "端到端测试任务",
        "kind": "urgent_assist",
        "location": {"lon": HOME[0], "lat": HOME[1]},
        "radius_m": 500,
        "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
        "needed": PLACES,
        "targeting": {"mode": "radius", "max_recipients": VOLUNTEERS, "widen_after_s": 0},
    }
    created = client.post("/api/v1/tasks", json=body, headers=bearer(tokens, staff))
    assert created.status_code == 201, created.json
    task_id = created.json["id"]

    jobs_module.run_worker(app, wait=False, install_signal_handlers=False)

    delivered = {r.token for r in fake.delivered()}
    assert delivered == {f"e2e-token-{v}" for v in volunteers}

    barrier = threading.Barrier(VOLUNTEERS)
    codes: dict[uuid.UUID, int] = {}

    def accept(user_id):
        own = app.test_client()
        barrier.wait()
        response = own.post(
            f"/api/v1/tasks/{task_id}/responses",
            json={"action": "accept"},
            headers=bearer(tokens, user_id),
        )
        codes[user_id] = response.status_code

    threads = [threading.Thread(target=accept, args=(v,)) for v in volunteers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes.values()) == [200] * PLACES + [409] * (VOLUNTEERS - PLACES)
    detail = client.get(f"/api/v1/tasks/{task_id}", headers=bearer(tokens, staff)).json
    assert detail["accepted"] == PLACES
    assert detail["statistics"]["responses"]["accepted"] == PLACES
    assert detail["statistics"]["deliveries"] == {"sent": VOLUNTEERS}
