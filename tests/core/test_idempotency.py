"""Idempotency-Key: replays return the first result, mismatches 422, concurrent duplicates 409."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from app.core.idempotency import IdempotencyRecord, prune_expired

KEY = "0f3c2b1a-6d7e-4f80-9a1b-2c3d4e5f6a7b"


def post(probe_client, headers, name="first", key=KEY):
    return probe_client.post(
        "/api/v1/probe/writes", json={"name": name}, headers={**headers, "Idempotency-Key": key}
    )


def test_a_replay_returns_the_first_response_and_does_nothing_again(
    probe_client, token_for, probe_rows, create_user
):
    headers = token_for(create_user())
    first = post(probe_client, headers)
    replay = post(probe_client, headers)
    assert first.status_code == replay.status_code == 201
    assert replay.get_json() == first.get_json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert probe_rows() == ["first"]


def test_the_same_key_with_another_body_is_a_422(probe_client, token_for, probe_rows, create_user):
    alice = create_user()
    headers = token_for(alice)
    post(probe_client, headers)
    response = post(probe_client, headers, name="second")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert probe_rows() == ["first"]


def test_keys_are_scoped_per_caller(probe_client, token_for, probe_rows, create_user):
    alice, bob = create_user(), create_user()
    post(probe_client, token_for(alice))
    other = post(probe_client, token_for(bob))
    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other.headers
    assert probe_rows() == ["first", "first"]


def test_a_concurrent_duplicate_is_a_409(probe_client, token_for, probe_rows, app, create_user):
    alice = create_user()
    # Another transaction holds the key's lock, as a first request still running would.
    with app.app_context():
        engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.pool.NullPool)
    with engine.connect() as other:
        other.execute(
            sa.select(
                sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"user:{alice.id} {KEY}", 0))
            )
        )
        response = post(probe_client, token_for(alice))
        other.rollback()
    engine.dispose()
    assert response.status_code == 409
    assert probe_rows() == []


def test_a_failed_request_is_not_recorded(probe_client, token_for, probe_rows, create_user):
    alice = create_user()
    headers = token_for(alice)
    assert post(probe_client, headers, name="conflict").status_code == 409
    retry = post(probe_client, headers, name="conflict")
    assert retry.status_code == 409
    assert "Idempotent-Replayed" not in retry.headers


def test_a_malformed_key_is_a_422(probe_client, token_for, probe_rows):
    response = post(probe_client, token_for("volunteer"), key="short")
    assert response.status_code == 422
    assert probe_rows() == []


def test_prune_deletes_only_expired_records(session):
    now = dt.datetime.now(dt.UTC)
    for key, expires in (
        ("old-key-1", now - dt.timedelta(seconds=1)),
        ("new-key-1", now + dt.timedelta(days=1)),
        ("edge-key-1", now),  # expires at `now`, not before it: stays
    ):
        session.add(
            IdempotencyRecord(
                scope="anonymous",
                key=key,
                fingerprint=b"\0" * 32,
                status_code=201,
                headers={},
                body=b"{}",
                expires_at=expires,
            )
        )
    session.flush()
    # Records other tests committed for real (the end-to-end tests' own database writes) are
    # not expired: only this test's old record goes.
    assert prune_expired(session, now) == 1
    mine = sa.select(IdempotencyRecord.key).where(IdempotencyRecord.key.like("%-key-1"))
    assert sorted(session.scalars(mine).all()) == ["edge-key-1", "new-key-1"]


def test_the_spec_documents_the_header(probe_app):
    spec = probe_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    params = spec["paths"]["/api/v1/probe/writes"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params)


def test_unique_keys_do_not_collide(probe_client, token_for, probe_rows, create_user):
    alice = create_user()
    headers = token_for(alice)
    for _ in range(3):
        assert post(probe_client, headers, key=str(uuid.uuid4())).status_code == 201
    assert probe_rows() == ["first"] * 3


def test_the_same_key_on_another_query_string_is_a_422(probe_client, token_for, create_user):
    headers = {**token_for(create_user()), "Idempotency-Key": KEY}
    assert (
        probe_client.post("/api/v1/probe/writes", json={"name": "a"}, headers=headers).status_code
        == 201
    )
    response = probe_client.post(
        "/api/v1/probe/writes?crs=gcj02", json={"name": "a"}, headers=headers
    )
    assert response.status_code == 422


def test_without_a_token_the_key_must_be_a_random_uuid(probe_client, probe_rows):
    guessable = probe_client.post(
        "/api/v1/probe/public-writes", json={"name": "a"}, headers={"Idempotency-Key": "order-0001"}
    )
    assert guessable.status_code == 422
    assert probe_rows() == []
    first = probe_client.post(
        "/api/v1/probe/public-writes", json={"name": "a"}, headers={"Idempotency-Key": KEY}
    )
    replay = probe_client.post(
        "/api/v1/probe/public-writes", json={"name": "a"}, headers={"Idempotency-Key": KEY}
    )
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert probe_rows() == ["a"]


def test_concurrent_duplicates_on_real_transactions(database_url, owner_database_url):
    """Committed data, separate connections: while the first request runs, a duplicate is a
    409; once it has committed, the lock is gone and a retry replays the first answer."""
    import threading
    import time

    from app.auth.models import AuthSession, User
    from app.extensions import db
    from tests.conftest import make_app
    from tests.core import probe

    app = make_app(database_url)
    app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(probe.blp)
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    # The probe's table is made by the owner: the application's role makes no tables.
    owner = sa.create_engine(owner_database_url, poolclass=sa.pool.NullPool)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    with owner.begin() as conn:
        conn.execute(sa.text("CREATE TABLE probe_writes (id serial PRIMARY KEY, name text)"))
    try:
        with app.app_context():
            db.session.add(
                User(
                    id=user_id,
                    phone="13999999999",
                    password_hash="x",
                    real_name="并发",
                    roles=["volunteer"],
                    volunteer_types=[],
                    skills=[],
                    status="active",
                )
            )
            db.session.flush()  # the user first: no ORM relationship orders the two inserts
            db.session.add(AuthSession(id=session_id, user_id=user_id))
            db.session.commit()
            from flask_jwt_extended import create_access_token

            token = create_access_token(str(user_id), additional_claims={"sid": str(session_id)})
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": KEY}
        statuses: dict[str, int] = {}

        def call(label):
            response = app.test_client().post(
                "/api/v1/probe/writes", json={"name": "slow"}, headers=headers
            )
            statuses[label] = response.status_code

        first = threading.Thread(target=call, args=("first",))
        first.start()
        time.sleep(0.2)  # the first request is inside its transaction now
        call("duplicate")
        first.join()
        retry = app.test_client().post(
            "/api/v1/probe/writes", json={"name": "slow"}, headers=headers
        )
        # Normally the first wins; on a very slow machine the duplicate may get there first.
        assert sorted(statuses.values()) == [201, 409]
        assert retry.status_code == 201
        assert retry.headers["Idempotent-Replayed"] == "true"
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM probe_writes")).scalar_one() == 1
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text("DROP TABLE IF EXISTS probe_writes"))
            conn.execute(sa.text("DELETE FROM idempotency_records WHERE key = :k"), {"k": KEY})
            conn.execute(sa.text("DELETE FROM users WHERE id = :u"), {"u": user_id})
        engine.dispose()
        owner.dispose()
        with app.app_context():
            db.engine.dispose()


def test_an_answered_error_is_not_recorded_either(probe_client, token_for, probe_rows, create_user):
    """A view that answers a 4xx itself (media answers a refused image with a problem) is not
    a result to replay: the same key then runs the corrected request."""
    headers = token_for(create_user())
    assert post(probe_client, headers, name="answer-400").status_code == 400
    corrected = post(probe_client, headers, name="first")
    assert corrected.status_code == 201, corrected.get_json()
    assert "Idempotent-Replayed" not in corrected.headers


def test_the_content_type_is_part_of_the_request(probe_client, token_for, probe_rows, create_user):
    """The same bytes under another media type are another request: 422, not a replay."""
    headers = {**token_for(create_user()), "Idempotency-Key": KEY}
    body = b'{"name": "first"}'
    first = probe_client.post(
        "/api/v1/probe/writes", data=body, content_type="application/json", headers=headers
    )
    assert first.status_code == 201
    other = probe_client.post(
        "/api/v1/probe/writes",
        data=body,
        content_type="application/merge-patch+json",
        headers=headers,
    )
    assert other.status_code == 422 and other.mimetype == "application/problem+json"
    assert probe_rows() == ["first"]


def test_a_record_is_not_replayed_from_the_moment_it_expires(
    probe_client, token_for, probe_rows, create_user, session, monkeypatch
):
    from app.core import idempotency

    headers = token_for(create_user())
    assert post(probe_client, headers).status_code == 201
    record = session.scalars(sa.select(IdempotencyRecord).where(IdempotencyRecord.key == KEY)).one()
    monkeypatch.setattr(idempotency, "_now", lambda: record.expires_at)
    again = post(probe_client, headers)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert probe_rows() == ["first", "first"]


def test_the_spec_says_the_header_is_optional_on_every_idempotent_operation(probe_app):
    spec = probe_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    operation = spec["paths"]["/api/v1/probe/writes"]["post"]
    (header,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert header["in"] == "header" and header["required"] is False
    # The view's own docstring is still the operation's (the wrapper keeps its name and doc),
    # and so are its body and answer (the wrapper adds the header to what the view declared).
    assert operation["summary"] == "Insert one row into the test's temporary table."
    assert "application/json" in operation["requestBody"]["content"]
    assert "schema" in operation["responses"]["201"]["content"]["application/json"]
    tips = spec["paths"]["/api/v1/tips"]["post"]["parameters"]
    assert [p["required"] for p in tips if p["name"] == "Idempotency-Key"] == [False]


def test_expired_records_are_pruned_every_hour():
    from app.core import jobs

    periodic = {p.periodic_id: p for p in jobs.jobs.periodic_registry.periodic_tasks.values()}
    assert "prune_idempotency_records" in periodic
