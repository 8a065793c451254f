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
from types import SimpleNamespace

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


@pytest.fixture(scope="module")
def world(app, database_url, tmp_path_factory):
    """Every fake running and the app configured for them; a staff member and four on-duty
    volunteers who consented to SMS, one phone each, committed; all deleted afterwards."""
    tmp_path = tmp_path_factory.mktemp("urgent")
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


@pytest.fixture(scope="module")
def journey(world) -> SimpleNamespace:
    """The task's whole course, once for the module: created by the staff member, fanned out
    and pushed by a worker, three receipts reported through the API, SMS_FALLBACK_AFTER_S
    waited out for real and the fallback run by a second worker. What each step left behind is
    kept for the tests below."""
    app, fakes, engine, users, phones, tokens, bearer = world
    staff, *volunteers = users
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
    pushed = {
        "fcm": [r.token for r in fakes["fcm"].received],
        "apns": [r.token for r in fakes["apns"].received],
        "jpush": sorted(fakes["jpush"].delivered()),
    }
    sms_before_due = fakes["sms"].delivered()
    ios_pushes = fakes["apns"].delivered()

    # Three apps report the push received, as the phone would, through the API.
    receipts = []
    for user_id in volunteers[:-1]:
        feed = client.get("/api/v1/me/notifications", headers=bearer[user_id])
        assert feed.status_code == 200, feed.json
        (offer,) = [n for n in feed.json["items"] if n["subject_id"] == task_id]
        receipts.append(
            client.post(f"/api/v1/me/notifications/{offer['id']}/received", headers=bearer[user_id])
        )

    # SMS_FALLBACK_AFTER_S pass for real; then a new worker runs the due fallback job.
    with engine.connect() as conn:
        due_in = conn.execute(
            sa.text(
                "SELECT extract(epoch FROM scheduled_at - now()) FROM procrastinate_jobs "
                "WHERE task_name LIKE '%sms_fallback' AND status = 'todo'"
            )
        ).scalar_one()
    time.sleep(max(float(due_in), 0) + 0.5)
    jobs_module.run_worker(app, wait=False, install_signal_handlers=False)

    shown = client.get(f"/api/v1/tasks/{task_id}", headers=bearer[staff])
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
    return SimpleNamespace(
        fakes=fakes,
        task_id=task_id,
        volunteers=volunteers,
        silent=volunteers[-1],
        phones=phones,
        tokens=tokens,
        pushed=pushed,
        sms_before_due=sms_before_due,
        ios_pushes=ios_pushes,
        receipts=receipts,
        due_in=due_in,
        shown=shown,
        sms_to=sms_to,
    )


def test_each_phone_is_pushed_through_its_own_provider(journey):
    by_provider = {
        provider: sorted(
            journey.tokens[u]
            for u, (p, _) in zip(journey.volunteers, PHONES, strict=True)
            if p == provider
        )
        for provider in ("fcm", "apns", "jpush")
    }
    assert journey.pushed == by_provider


def test_the_ios_push_names_the_task(journey):
    (ios,) = journey.ios_pushes
    assert ios.payload["task_id"] == journey.task_id


def test_no_sms_goes_before_the_fallback_is_due(journey):
    assert journey.sms_before_due == []
    assert 0 < journey.due_in <= FALLBACK_AFTER_S


def test_apps_report_their_push_received_through_the_api(journey):
    assert len(journey.receipts) == len(journey.volunteers) - 1
    for receipt in journey.receipts:
        assert receipt.status_code == 200, receipt.json
        assert receipt.json["received_at"] is not None


def test_only_the_silent_volunteer_gets_one_sms(journey):
    assert journey.fakes["sms"].delivered() == [f"+86{journey.phones[journey.silent]}"]
    assert journey.sms_to == [journey.silent]


def test_the_fallback_worker_sends_no_push_twice(journey):
    assert len(journey.fakes["fcm"].received) == 1
    assert len(journey.fakes["apns"].received) == 1
    assert len(journey.fakes["jpush"].delivered()) == 2


def test_the_task_counts_its_deliveries_receipts_and_sms(journey):
    assert journey.shown.status_code == 200, journey.shown.json
    statistics = journey.shown.json["statistics"]
    volunteers = len(journey.volunteers)
    assert statistics["recipients"] == volunteers
    assert statistics["deliveries"] == {"sent": volunteers}
    assert statistics["received"] == volunteers - 1
    assert statistics["sms"] == {"sent": 1}
