"""On committed data, with separate connections and real job workers: the fallback job outlives
the worker that scheduled it, and a receipt racing the claim for its lock stops the SMS."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import sqlalchemy as sa

from app.core import jobs as jobs_module
from app.extensions import db
from app.tasks import fallback
from tests import encrypted_rows
from tests.conftest import make_app
from tests.fakes import tencent_sms as fake_tencent_sms
from tests.patrols.conftest import COMMUNITY, HOME


@pytest.fixture
def committed(app, database_url):
    """An app sending SMS to a fake Tencent Cloud; a staff member and two on-duty volunteers
    who consented to SMS, committed; an urgent task of theirs fanned out by a worker that then
    stopped. Everything is deleted afterwards."""
    with fake_tencent_sms.running() as fake:
        # The session's `app` built the database; this one sends SMS to the fake.
        app = make_app(
            database_url,
            TENCENT_SMS_SECRET_ID=fake.secret_id,
            TENCENT_SMS_SECRET_KEY=fake.secret_key,
            TENCENT_SMS_SDK_APP_ID=fake.sdk_app_id,
            TENCENT_SMS_SIGN_NAME="群防",
            TENCENT_SMS_TEMPLATE_ID="2000001",
            TENCENT_SMS_ENDPOINT=fake.endpoint,
        )
        engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
        users = [uuid.uuid4() for _ in range(3)]
        phones = {u: f"137{uuid.uuid4().int % 10**8:08d}" for u in users}
        tokens = {}
        with engine.begin() as conn:
            community = conn.execute(
                sa.text("SELECT id FROM areas WHERE code = :c"), {"c": COMMUNITY}
            ).scalar_one()
            for n, user_id in enumerate(users):
                encrypted_rows.insert_user(
                    conn,
                    id=user_id,
                    phone=phones[user_id],
                    name=f"短信{n}",
                    roles=["grid_staff"] if n == 0 else ["volunteer"],
                    status="active",
                    home_community_id=community,
                    location_sharing=True,
                    sms_consent=True,
                )
                token = encrypted_rows.signed_in(conn, app, user_id)
                if n == 0:
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
                tokens[user_id] = token
        try:
            client = app.test_client()
            body = {
                "title": "短信兜底测试",
                "kind": "urgent_assist",
                "location": {"lon": HOME[0], "lat": HOME[1]},
                "radius_m": 500,
                "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat(),
                "needed": 1,
                "targeting": {"mode": "radius", "widen_after_s": 0},
            }
            headers = {"Authorization": f"Bearer {tokens[users[0]]}"}
            created = client.post("/api/v1/tasks", json=body, headers=headers)
            assert created.status_code == 201, created.json
            # The fan-out runs; the fallback job waits its SMS_FALLBACK_AFTER_S, and the worker
            # (wait=False) stops with it still scheduled.
            jobs_module.run_worker(app, wait=False, install_signal_handlers=False)
            yield app, fake, engine, created.json["id"], users, phones, tokens
        finally:
            with engine.begin() as conn:
                encrypted_rows.forget_users(conn, users)
            engine.dispose()
            encrypted_rows.release(app)


def _offers_older_by(conn, task_id, seconds):
    conn.execute(
        sa.text(
            "UPDATE notifications SET created_at = created_at - make_interval(secs => :s) "
            "WHERE subject_id = :t"
        ),
        {"s": seconds, "t": task_id},
    )


def test_the_fallback_job_outlives_its_worker_and_skips_the_received(committed):
    app, fake, engine, task_id, users, phones, tokens = committed
    _, received, silent = users
    with engine.connect() as conn:
        job = conn.execute(
            sa.text(
                "SELECT status, scheduled_at > now() FROM procrastinate_jobs "
                "WHERE task_name LIKE '%sms_fallback'"
            )
        ).one()
        notification = conn.execute(
            sa.text("SELECT id FROM notifications WHERE user_id = :u AND subject_id = :t"),
            {"u": received, "t": task_id},
        ).scalar_one()
    assert tuple(job) == ("todo", True)  # kept in the database while no worker runs

    answer = app.test_client().post(
        f"/api/v1/me/notifications/{notification}/received",
        headers={"Authorization": f"Bearer {tokens[received]}"},
    )
    assert answer.status_code == 200
    # SMS_FALLBACK_AFTER_S have passed (the offers and the job's time moved back instead).
    with engine.begin() as conn:
        _offers_older_by(conn, task_id, 61)
        conn.execute(
            sa.text(
                "UPDATE procrastinate_jobs SET scheduled_at = now() - interval '1 second' "
                "WHERE task_name LIKE '%sms_fallback'"
            )
        )

    jobs_module.run_worker(app, wait=False, install_signal_handlers=False)  # a new worker

    assert fake.delivered() == [f"+86{phones[silent]}"]
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("SELECT status FROM procrastinate_jobs WHERE task_name LIKE '%sms_fallback'")
        ).scalar_one()
        rows = conn.execute(
            sa.text(
                "SELECT n.user_id, d.status FROM deliveries d JOIN notifications n "
                "ON n.id = d.notification_id WHERE d.channel = 'sms' AND d.task_id = :t"
            ),
            {"t": task_id},
        ).all()
    assert status == "succeeded"
    assert [tuple(r) for r in rows] == [(silent, "sent")]


def test_a_receipt_holding_the_lock_when_the_claim_comes_stops_that_sms(committed):
    """The receipt's transaction has changed the notification and not yet committed when the
    claim reaches it: the claim waits, then sees it received."""
    app, _fake, engine, task_id, users, _phones, _tokens = committed
    _, receiving, silent = users
    with engine.begin() as conn:
        _offers_older_by(conn, task_id, 61)
    results: list[int] = []

    def claim():
        with app.app_context():
            settings = fallback.Settings.of(app.config)
            at = dt.datetime.now(dt.UTC)
            results.append(fallback.claim(db.session, uuid.UUID(task_id), at, settings))
            db.session.commit()
            db.session.remove()

    with engine.connect() as receipt:
        receipt.execute(
            sa.text(
                "UPDATE notifications SET received_at = now() WHERE user_id = :u "
                "AND subject_id = :t"
            ),
            {"u": receiving, "t": task_id},
        )
        thread = threading.Thread(target=claim)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # waiting for the receipt's lock
        receipt.commit()
    thread.join(timeout=30)
    assert results == [1]
    with engine.connect() as conn:
        claimed = (
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
    assert claimed == [silent]
