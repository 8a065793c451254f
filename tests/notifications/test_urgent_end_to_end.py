"""Issue #16's "Done when", end to end on committed data with real job workers and an
application configured as an operator would (FCM_*, APNS_*, JPUSH_*, TENCENT_SMS_* settings,
SMS_FALLBACK_AFTER_S at its minimum): one urgent task reaches an Android phone through FCM, an
iPhone through APNs and two phones without Google services through JPush; three apps report
their push received, the fourth stays silent and its volunteer, and only they, gets one SMS
once SMS_FALLBACK_AFTER_S have really passed. Nothing is moved in time."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest
import sqlalchemy as sa

from app.core import jobs as jobs_module
from tests import encrypted_rows
from tests.conftest import make_app
from tests.fakes import apns as fake_apns
from tests.fakes import fcm as fake_fcm
from tests.fakes import jpush as fake_jpush
from tests.fakes import tencent_sms as fake_tencent_sms
from tests.patrols.conftest import COMMUNITY, HOME

FALLBACK_AFTER_S = 10  # the least app/config.py allows
# The volunteers' phones: (provider, platform); the last one's app never reports its push.
PHONES = (("fcm", "android"), ("apns", "ios"), ("jpush", "android"), ("jpush", "android"))


def _token(provider: str) -> str:
    if provider == "apns":
        return fake_apns.device_token()
    if provider == "jpush":
        return f"1a0018970a{uuid.uuid4().int % 10**9:09d}"
    return f"fcm-token-{uuid.uuid4()}"


@pytest.fixture
def world(app, database_url, tmp_path):
    """Every fake running and the app configured for them; a staff member and four on-duty
    volunteers who consented to SMS, one phone each, committed; all deleted afterwards."""
    with (
        fake_fcm.running() as fcm,
        fake_apns.running() as apns,
        fake_jpush.running() as jpush,
        fake_tencent_sms.running() as sms,
    ):
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
            TENCENT_SMS_SECRET_ID=sms.secret_id,
            TENCENT_SMS_SECRET_KEY=sms.secret_key,
            TENCENT_SMS_SDK_APP_ID=sms.sdk_app_id,
            TENCENT_SMS_SIGN_NAME="群防",
            TENCENT_SMS_TEMPLATE_ID="2000001",
            TENCENT_SMS_ENDPOINT=sms.endpoint,
            SMS_FALLBACK_AFTER_S=FALLBACK_AFTER_S,
            SMS_QUIET_HOURS="",
            TASK_MIN_COUNT_SHOWN=2,
        )
        engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        users = [uuid.uuid4() for _ in range(len(PHONES) + 1)]
        phones = {u: f"139{uuid.uuid4().int % 10**8:08d}" for u in users}
        tokens, bearer = {}, {}
        with engine.begin() as conn:
            community = conn.execute(
                sa.text("SELECT id FROM areas WHERE code = :c"), {"c": COMMUNITY}
            ).scalar_one()
            for n, user_id in enumerate(users):
                encrypted_rows.insert_user(
                    conn,
                    id=user_id,
                    phone=phones[user_id],
                    name=f"全程{n}",
                    roles=["volunteer"] if n else ["grid_staff"],
                    status="active",
                    home_community_id=community,
                    location_sharing=True,
                    sms_consent=True,
                )
                token = encrypted_rows.signed_in(conn, configured, user_id)
                bearer[user_id] = {"Authorization": f"Bearer {token}"}
                if not n:
                    conn.execute(
                        sa.text("INSERT INTO user_areas (user_id, area_id) VALUES (:u, :a)"),
                        {"u": user_id, "a": community},
                    )
                    continue
                provider, platform = PHONES[n - 1]
                tokens[user_id] = _token(provider)
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
                        "t": tokens[user_id],
                        "platform": platform,
                        "provider": provider,
                    },
                )
        fakes = {"fcm": fcm, "apns": apns, "jpush": jpush, "sms": sms}
        try:
            yield configured, fakes, engine, users, phones, tokens, bearer
        finally:
            with engine.begin() as conn:
                encrypted_rows.forget_users(conn, users)
            engine.dispose()
            encrypted_rows.release(configured)


def test_an_urgent_task_reaches_every_provider_and_the_silent_one_gets_one_sms(world):
    app, fakes, engine, users, phones, tokens, bearer = world
    staff, *volunteers = users
    silent = volunteers[-1]
    client = app.test_client()
    body = {
        "title": "全程测试: 请到东门协助",
        "kind": "urgent_assist",
        "location": {"lon": HOME[0], "lat": HOME[1]},
        "radius_m": 500,
        "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
        "needed": 2,
        "targeting": {"mode": "radius", "max_recipients": 10, "widen_after_s": 0},
    }
    created = client.post("/api/v1/tasks", json=body, headers=bearer[staff])
    assert created.status_code == 201, created.json
    task_id = created.json["id"]

    # A worker fans the task out and sends the pushes, then stops (the SMS job not yet due).
    jobs_module.run_worker(app, wait=False, install_signal_handlers=False)

    by_provider = {
        provider: sorted(
            tokens[u] for u, (p, _) in zip(volunteers, PHONES, strict=True) if p == provider
        )
        for provider in ("fcm", "apns", "jpush")
    }
    assert [r.token for r in fakes["fcm"].received] == by_provider["fcm"]
    assert [r.token for r in fakes["apns"].received] == by_provider["apns"]
    assert sorted(fakes["jpush"].delivered()) == by_provider["jpush"]
    assert fakes["sms"].delivered() == []
    (ios,) = fakes["apns"].delivered()
    assert ios.payload["task_id"] == task_id

    # Three apps report the push received, as the phone would, through the API.
    for user_id in volunteers[:-1]:
        feed = client.get("/api/v1/me/notifications", headers=bearer[user_id])
        assert feed.status_code == 200, feed.json
        (offer,) = [n for n in feed.json["items"] if n["subject_id"] == task_id]
        receipt = client.post(
            f"/api/v1/me/notifications/{offer['id']}/received", headers=bearer[user_id]
        )
        assert receipt.status_code == 200, receipt.json
        assert receipt.json["received_at"] is not None

    # SMS_FALLBACK_AFTER_S pass for real; then a new worker runs the due fallback job.
    with engine.connect() as conn:
        due_in = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM scheduled_at - now()) FROM procrastinate_jobs "
                "WHERE task_name LIKE '%sms_fallback' AND status = 'todo'"
            )
        ).scalar_one()
    assert 0 < due_in <= FALLBACK_AFTER_S
    time.sleep(float(due_in) + 0.5)
    jobs_module.run_worker(app, wait=False, install_signal_handlers=False)

    assert fakes["sms"].delivered() == [f"+86{phones[silent]}"]
    # No push was sent twice by the second worker.
    assert len(fakes["fcm"].received) == 1
    assert len(fakes["apns"].received) == 1
    assert len(fakes["jpush"].delivered()) == 2

    shown = client.get(f"/api/v1/tasks/{task_id}", headers=bearer[staff])
    assert shown.status_code == 200, shown.json
    statistics = shown.json["statistics"]
    assert statistics["recipients"] == len(volunteers)
    assert statistics["deliveries"] == {"sent": len(volunteers)}
    assert statistics["received"] == len(volunteers) - 1
    assert statistics["sms"] == {"sent": 1}
    with engine.connect() as conn:
        sms_to = (
            conn.execute(
                sa.text(
                    "SELECT n.user_id FROM deliveries d JOIN notifications n "
                    "ON n.id = d.notification_id WHERE d.channel = 'sms' AND d.task_id = :t"
                ),
                {"t": task_id},
            )
            .scalars()
            .all()
        )
    assert sms_to == [silent]
