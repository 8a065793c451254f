"""On committed data, with a real job worker and an application configured as an operator
would (FCM_*, APNS_*, JPUSH_* settings): a task reaches an Android phone through FCM, an iPhone
through APNs and a phone without Google services through JPush, each fake receiving its own."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from app.core import jobs as jobs_module
from tests import encrypted_rows
from tests.conftest import make_app
from tests.fakes import apns as fake_apns
from tests.fakes import fcm as fake_fcm
from tests.fakes import jpush as fake_jpush
from tests.patrols.conftest import COMMUNITY, HOME

PROVIDERS = ("fcm", "apns", "jpush")


@pytest.fixture
def committed(app, database_url, tmp_path):
    """An app configured with all three providers' fakes (the session's `app` built the
    database), a staff member and one on-duty volunteer per provider, committed; everything
    they made is deleted afterwards."""
    with fake_fcm.running() as fcm, fake_apns.running() as apns, fake_jpush.running() as jpush:
        configured = make_app(
            database_url,
            FCM_CREDENTIALS_FILE=str(fcm.service_account(tmp_path)),
            FCM_ENDPOINT=fcm.base_url,
            APNS_KEY_FILE=str(apns.key_file(tmp_path)),
            APNS_KEY_ID=apns.key_id,
            APNS_TEAM_ID=apns.team_id,
            APNS_TOPIC=apns.topic,
            APNS_ENDPOINT=apns.base_url,
            JPUSH_APP_KEY=jpush.app_key,
            JPUSH_MASTER_SECRET=jpush.master_secret,
            JPUSH_ENDPOINT=jpush.base_url,
        )
        engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        users = [uuid.uuid4() for _ in range(len(PROVIDERS) + 1)]
        devices = {
            "fcm": f"fcm-token-{uuid.uuid4()}",
            "apns": fake_apns.device_token(),
            "jpush": f"1a0018970a{uuid.uuid4().int % 10**9:09d}",
        }
        with engine.begin() as conn:
            community = conn.execute(
                sa.text("SELECT id FROM areas WHERE code = :c"), {"c": COMMUNITY}
            ).scalar_one()
            for n, user_id in enumerate(users):
                encrypted_rows.insert_user(
                    conn,
                    id=user_id,
                    phone=f"167{uuid.uuid4().int % 10**8:08d}",
                    name=f"推送{n}",
                    roles=["volunteer"] if n else ["grid_staff"],
                    status="active",
                    home_community_id=community,
                    location_sharing=True,
                )
                if not n:
                    conn.execute(
                        sa.text("INSERT INTO user_areas (user_id, area_id) VALUES (:u, :a)"),
                        {"u": user_id, "a": community},
                    )
                    continue
                provider = PROVIDERS[n - 1]
                conn.execute(
                    sa.text(
                        "INSERT INTO duty_status (user_id, geom, position_at) VALUES "
                        "(:u, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), now())"
                    ),
                    {"u": user_id, "lon": HOME[0] + n * 0.00005, "lat": HOME[1]},
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO devices (id, user_id, token, platform, provider) VALUES "
                        "(gen_random_uuid(), :u, :t, :platform, :provider)"
                    ),
                    {
                        "u": user_id,
                        "t": devices[provider],
                        "platform": "ios" if provider == "apns" else "android",
                        "provider": provider,
                    },
                )
            token = encrypted_rows.signed_in(conn, configured, users[0])
        try:
            yield configured, {"fcm": fcm, "apns": apns, "jpush": jpush}, devices, token
        finally:
            with engine.begin() as conn:
                encrypted_rows.forget_users(conn, users)
            engine.dispose()
            encrypted_rows.release(configured)


def test_the_worker_pushes_through_each_devices_provider(committed):
    app, fakes, devices, token = committed
    client = app.test_client()
    body = {
        "title": "三种推送",
        "kind": "urgent_assist",
        "location": {"lon": HOME[0], "lat": HOME[1]},
        "radius_m": 500,
        "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
        "needed": 1,
        "targeting": {"mode": "radius", "max_recipients": 10, "widen_after_s": 0},
    }
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post("/api/v1/tasks", json=body, headers=headers)
    assert created.status_code == 201, created.json

    jobs_module.run_worker(app, wait=False, install_signal_handlers=False)

    assert [r.token for r in fakes["fcm"].delivered()] == [devices["fcm"]]
    assert [r.token for r in fakes["apns"].delivered()] == [devices["apns"]]
    assert fakes["jpush"].delivered() == [devices["jpush"]]
    (ios,) = fakes["apns"].delivered()
    assert ios.payload["task_id"] == created.json["id"]
    with app.app_context():
        from app.extensions import db

        statuses = db.session.execute(
            sa.text(
                "SELECT d.provider, l.status, l.message_id IS NOT NULL FROM deliveries l "
                "JOIN devices d ON d.id = l.device_id WHERE l.task_id = :t"
            ),
            {"t": created.json["id"]},
        ).all()
        db.session.remove()
    assert sorted(statuses) == [(p, "sent", True) for p in sorted(PROVIDERS)]
