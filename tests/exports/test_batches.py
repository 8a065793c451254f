"""Clue batches end to end: freezing, the job's files, signatures, access, audit, outcomes."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import uuid
import zipfile

import pytest
import sqlalchemy as sa
from sqlalchemy import select, text

from app.core import jobs as jobs_module
from app.core.audit import AuditEvent
from app.exports import jobs as export_jobs
from app.exports import service, signing
from app.exports.files import COLUMN_NAMES
from app.exports.models import ClueBatch
from app.exports.service import csv_header
from app.privacy import retention
from app.storage import export_store
from app.tips.models import Tip, TipEvent
from tests.tips.conftest import NEIGHBOUR, jpeg, tip_body, upload

LIAISON_AREA = "110105001000"  # sub-district containing JIANWAI and NEIGHBOUR


@pytest.fixture
def liaison(create_user, token_for):
    user = create_user(roles=["police_liaison"], jurisdiction=[LIAISON_AREA])
    return user, token_for(user)


@pytest.fixture
def run_jobs(app, monkeypatch):
    monkeypatch.setattr(jobs_module, "_worker_app", app)
    return lambda batch_id: export_jobs.generate_batch(batch_id=str(batch_id))


def _post_tip(client, headers=None, **overrides):
    response = client.post(
        "/api/v1/tips",
        json=tip_body(**overrides),
        headers={**(headers or {}), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.json
    return response.json


def _create(client, headers, **body):
    body.setdefault("purpose", "核查辖区盗窃线索")
    body.setdefault("case_reference", "京公朝刑2026-0042")
    return client.post("/api/v1/clue-batches", json=body, headers=headers)


def _download(client, headers, batch_id, name):
    response = client.get(f"/api/v1/clue-batches/{batch_id}/files/{name}", headers=headers)
    assert response.status_code == 200, response.data[:300]
    return response.data


def test_batch_is_frozen_signed_and_protects_tipsters(
    client, session, liaison, create_user, token_for, run_jobs
):
    user, headers = liaison
    consenting = create_user(real_name="同意联系人", phone="13911112222")
    silent = create_user(real_name="不愿透露者", phone="13933334444")
    anonymous = _post_tip(client, description="匿名线索一")
    photo = upload(client, jpeg(), headers=token_for(consenting)).json["id"]
    named = _post_tip(client, token_for(consenting), police_contact_consent=True, media_ids=[photo])
    unconsented = _post_tip(client, token_for(silent), at=NEIGHBOUR)
    ids = [anonymous["id"], named["id"], unconsented["id"]]

    created = _create(client, headers, tip_ids=ids)
    assert created.status_code == 201, created.json
    batch = created.json
    assert batch["status"] == "pending" and batch["row_count"] == 3

    session.expire_all()
    for tip_id in ids:
        tip = session.get(Tip, uuid.UUID(tip_id))
        assert tip.status == "referred_to_police"
        kinds = session.scalars(
            select(TipEvent.kind).where(TipEvent.tip_id == tip.id).order_by(TipEvent.at)
        ).all()
        assert kinds == ["submitted", "batched", "transition"]

    assert run_jobs(batch["id"]) == 3
    shown = client.get(f"/api/v1/clue-batches/{batch['id']}", headers=headers).json
    assert shown["status"] == "ready" and shown["percent"] == 100
    assert {f["name"] for f in shown["files"]} == {
        "tips.csv",
        "tips.geojson",
        "manifest.json",
        "batch.zip",
    }

    csv_bytes = _download(client, headers, batch["id"], "tips.csv")
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    # The header row is for people (in the requester's language): read by column position.
    reader = csv.DictReader(io.StringIO(csv_bytes.decode("utf-8-sig")), fieldnames=COLUMN_NAMES)
    # run_jobs calls the job without the locale the request deferred it with: zh-CN.
    assert next(reader)["tip_id"] == csv_header("zh_CN")[0]
    rows = list(reader)
    # The frozen order: oldest first, then by id (one test transaction: equal times).
    assert [r["tip_id"] for r in rows] == sorted(ids)
    by_id = {r["tip_id"]: r for r in rows}
    assert by_id[named["id"]]["reporter_phone"] == "13911112222"
    assert by_id[named["id"]]["photo_count"] == "1"
    # Each row lists its own tip's photos (as named inside the ZIP), and only those.
    assert by_id[named["id"]]["photos"] == f"photos/{named['id']}/{photo}.jpg"
    assert by_id[anonymous["id"]]["photos"] == by_id[unconsented["id"]]["photos"] == ""
    assert by_id[unconsented["id"]]["reporter_name"] == ""
    assert by_id[anonymous["id"]]["reporter_name"] == by_id[anonymous["id"]]["reporter_phone"] == ""

    archive_bytes = _download(client, headers, batch["id"], "batch.zip")
    geojson = json.loads(_download(client, headers, batch["id"], "tips.geojson"))
    assert len(geojson["features"]) == 3
    everything = csv_bytes + archive_bytes + json.dumps(geojson, ensure_ascii=False).encode()
    for secret in ("不愿透露者", "13933334444", str(silent.id), str(consenting.id)):
        assert secret.encode() not in everything

    listed = {f["name"]: f for f in shown["files"]}
    for name, data in (("tips.csv", csv_bytes), ("batch.zip", archive_bytes)):
        assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert listed[name]["size"] == len(data)
    key = client.get("/api/v1/clue-batches/signing-key").json
    assert key["algorithm"] == "Ed25519"
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        names = archive.namelist()
        assert names[-1] == "manifest.json"
        assert f"photos/{named['id']}/{photo}.jpg" in names
        contents = {n: archive.read(n) for n in names if n != "manifest.json"}
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["digest"] == shown["digest"] and manifest["key_id"] == key["key_id"]
    signing.verify_manifest(manifest, key["public_key"], contents)

    tampered = dict(contents)
    tampered["tips.csv"] = bytes([contents["tips.csv"][0] ^ 1]) + contents["tips.csv"][1:]
    with pytest.raises(signing.ManifestError):
        signing.verify_manifest(manifest, key["public_key"], tampered)
    with pytest.raises(signing.ManifestError):
        signing.verify_manifest(
            {**manifest, "batch": {**manifest["batch"], "row_count": 2}},
            key["public_key"],
            contents,
        )

    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.object_ids.contains([batch["id"]]))
    ).all()
    actions = sorted(e.action for e in audited)
    assert actions.count("clue_batch.downloaded") == 3
    assert "clue_batch.created" in actions
    created_event = next(e for e in audited if e.action == "clue_batch.created")
    assert created_event.actor_id == user.id and created_event.actor_role == "police_liaison"
    assert created_event.purpose == "核查辖区盗窃线索"


def test_a_batch_over_the_cap_is_refused_before_anything_is_frozen(
    app, client, session, liaison, connection, monkeypatch
):
    _user, headers = liaison
    tips = [_post_tip(client, description=f"线索{n}") for n in range(3)]
    monkeypatch.setitem(app.config, "MAX_BATCH_TIPS", 2)
    refused = _create(client, headers, filters={"categories": ["theft"]})
    assert refused.status_code == 422
    assert refused.json["errors"][0]["pointer"] == "/filters"
    assert "at most 2" in refused.json["detail"]
    session.expire_all()
    assert {session.get(Tip, uuid.UUID(t["id"])).status for t in tips} == {"submitted"}
    assert session.scalar(text("SELECT count(*) FROM clue_batches")) == 0
    jobs = "SELECT count(*) FROM procrastinate_jobs WHERE task_name LIKE '%generate_batch'"
    assert connection.execute(text(jobs)).scalar_one() == 0
    monkeypatch.setitem(app.config, "MAX_BATCH_TIPS", 3)
    assert _create(client, headers, filters={"categories": ["theft"]}).status_code == 201


def test_another_areas_liaison_and_staff_get_404(client, liaison, create_user, token_for, session):
    _user, headers = liaison
    tip = _post_tip(client)
    other_tip = _post_tip(client)
    batch = _create(client, headers, tip_ids=[tip["id"]]).json
    elsewhere = token_for(create_user(roles=["police_liaison"], jurisdiction=["110105002000"]))
    for path in ("", "/files/tips.csv", "/acknowledge"):
        method = client.post if path == "/acknowledge" else client.get
        assert (
            method(f"/api/v1/clue-batches/{batch['id']}{path}", headers=elsewhere).status_code
            == 404
        )
    staff = token_for(create_user(roles=["community_admin"], jurisdiction=[LIAISON_AREA]))
    assert client.get(f"/api/v1/clue-batches/{batch['id']}", headers=staff).status_code == 404
    assert client.get("/api/v1/clue-batches", headers=elsewhere).json["total"] == 0
    assert client.get("/api/v1/clue-batches", headers=headers).json["total"] >= 1
    volunteer = token_for("volunteer")
    assert _create(client, volunteer, tip_ids=[tip["id"]]).status_code == 403
    # The refused acknowledgement left none.
    session.expire_all()
    stored = session.get(ClueBatch, uuid.UUID(batch["id"]))
    assert (stored.acknowledged_at, stored.acknowledged_by) == (None, None)
    # A tip outside the caller's areas cannot be put in a batch: nothing is frozen or referred.
    batches = session.scalar(select(sa.func.count()).select_from(ClueBatch))
    refused = _create(client, elsewhere, tip_ids=[other_tip["id"]])
    assert refused.status_code == 422
    assert refused.json["errors"][0]["pointer"] == "/tip_ids"
    session.expire_all()
    assert session.get(Tip, uuid.UUID(other_tip["id"])).status == "submitted"
    assert session.scalar(select(sa.func.count()).select_from(ClueBatch)) == batches


def test_files_are_409_until_ready_and_bad_requests_change_nothing(client, session, liaison):
    _user, headers = liaison
    tip = _post_tip(client)
    before = session.scalar(text("SELECT count(*) FROM clue_batches"))
    for body in (
        {"tip_ids": []},
        {"tip_ids": [tip["id"]], "purpose": "x"},
        {"tip_ids": [tip["id"]], "filters": {"categories": ["theft"]}},
        {"tip_ids": [str(uuid.uuid4())]},
        {"filters": {"categories": ["no_such_category_here"]}},
        {"tip_ids": [tip["id"]], "extra": 1},
    ):
        response = _create(client, headers, **body)
        assert response.status_code == 422, (body, response.json)
        assert response.headers["Content-Type"] == "application/problem+json"
    assert session.scalar(text("SELECT count(*) FROM clue_batches")) == before
    # The tip was neither referred nor given history by any of them.
    session.expire_all()
    assert session.get(Tip, uuid.UUID(tip["id"])).status == "submitted"
    kinds = session.scalars(select(TipEvent.kind).where(TipEvent.tip_id == uuid.UUID(tip["id"])))
    assert list(kinds) == ["submitted"]
    batch = _create(client, headers, filters={"categories": ["theft"]}).json
    early = client.get(f"/api/v1/clue-batches/{batch['id']}/files/tips.csv", headers=headers)
    assert early.status_code == 409
    unknown = client.get(f"/api/v1/clue-batches/{batch['id']}/files/secrets.txt", headers=headers)
    assert unknown.status_code == 404


def test_police_outcomes_reach_the_follow_view_without_police_detail(
    client, liaison, run_jobs, session
):
    _user, headers = liaison
    tip = _post_tip(client)
    batch = _create(client, headers, tip_ids=[tip["id"]]).json
    run_jobs(batch["id"])
    acknowledged = client.post(f"/api/v1/clue-batches/{batch['id']}/acknowledge", headers=headers)
    assert acknowledged.status_code == 200 and acknowledged.json["acknowledged_at"]
    outcome = client.post(
        f"/api/v1/clue-batches/{batch['id']}/outcomes",
        json={
            "items": [{"tip_id": tip["id"], "outcome": "case_opened", "note": "嫌疑人张某已到案"}]
        },
        headers=headers,
    )
    assert outcome.status_code == 200, outcome.json
    follow = client.get(
        f"/api/v1/tips/follow/{tip['follow_code']}",
        headers={"X-Follow-Secret": tip["follow_secret"]},
    )
    assert follow.status_code == 200
    text_shown = json.dumps(follow.json, ensure_ascii=False)
    assert "police_outcome" in text_shown and "立案" in text_shown
    assert "张某" not in text_shown
    kept = session.scalars(
        select(TipEvent).where(TipEvent.tip_id == uuid.UUID(tip["id"]), TipEvent.kind == "note")
    ).all()
    assert [(e.note, e.public) for e in kept] == [("嫌疑人张某已到案", False)]  # staff only
    assert follow.json["status"] == "referred_to_police"
    stranger = client.post(
        f"/api/v1/clue-batches/{batch['id']}/outcomes",
        json={"items": [{"tip_id": str(uuid.uuid4()), "outcome": "no_action"}]},
        headers=headers,
    )
    assert stranger.status_code == 422
    audited = session.scalars(
        select(AuditEvent.action).where(AuditEvent.object_ids.contains([tip["id"]]))
    ).all()
    assert "clue_batch.outcomes" in audited


def test_audit_rows_cannot_be_changed_or_deleted(connection, session):
    session.execute(sa.insert(AuditEvent).values(action="test.append_only"))
    for statement in (
        "UPDATE audit_events SET action = 'rewritten'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ):
        savepoint = connection.begin_nested()
        # The application's role lacks the privilege; any other role meets the triggers.
        with pytest.raises(sa.exc.DBAPIError, match=r"append-only|permission denied"):
            connection.exec_driver_sql(statement)
        savepoint.rollback()
    assert (
        session.scalar(select(sa.func.count()).where(AuditEvent.action == "test.append_only")) == 1
    )


def test_logins_role_changes_and_reporter_views_are_audited(
    client, session, create_user, token_for, area
):
    from tests.conftest import PASSWORD

    user = create_user(roles=["volunteer"], home="110105001024")
    assert (
        client.post(
            "/api/v1/auth/login", json={"phone": user.phone, "password": "wrong-1"}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/api/v1/auth/login", json={"phone": user.phone, "password": PASSWORD}
        ).status_code
        == 200
    )
    admin = token_for("admin")
    changed = client.patch(
        f"/api/v1/users/{user.id}",
        json={"roles": ["volunteer", "grid_staff"], "jurisdiction": [str(area("110105001024").id)]},
        headers=admin,
    )
    assert changed.status_code == 200, changed.json
    staff = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    tip = _post_tip(client, token_for(user))
    viewed = client.get(
        f"/api/v1/tips/{tip['id']}/reporter?purpose=回访核实情况", headers=token_for(staff)
    )
    assert viewed.status_code == 200
    assert (
        client.get(f"/api/v1/tips/{tip['id']}/reporter", headers=token_for(staff)).status_code
        == 422
    )

    listed = client.get(f"/api/v1/audit?object_id={user.id}&page_size=100", headers=admin)
    assert listed.status_code == 200
    events = {(e["action"], e["outcome"]) for e in listed.json["items"]}
    assert {
        ("auth.login", "failure"),
        ("auth.login", "success"),
        ("user.updated", "success"),
    } <= events
    update = next(e for e in listed.json["items"] if e["action"] == "user.updated")
    assert update["details"]["roles"]["to"] == ["grid_staff", "volunteer"]
    dumped = json.dumps(listed.json)
    assert user.phone not in dumped and PASSWORD not in dumped and "wrong-1" not in dumped
    reporter_view = client.get(
        f"/api/v1/audit?action=tip.reporter_viewed&object_id={tip['id']}", headers=admin
    ).json["items"]
    assert reporter_view[0]["purpose"] == "回访核实情况"
    assert reporter_view[0]["actor_id"] == str(staff.id)
    assert client.get("/api/v1/audit", headers=token_for("community_admin")).status_code == 403


def test_a_wider_jurisdiction_covers_a_narrower_batch(client, create_user, token_for):
    maker = token_for(create_user(roles=["grid_staff"], jurisdiction=["110105001024"]))
    tip = _post_tip(client)
    batch = _create(client, maker, tip_ids=[tip["id"]]).json
    wider = token_for(create_user(roles=["community_admin"], jurisdiction=[LIAISON_AREA]))
    assert client.get(f"/api/v1/clue-batches/{batch['id']}", headers=wider).status_code == 200
    narrower = token_for(create_user(roles=["grid_staff"], jurisdiction=["110105001025"]))
    assert client.get(f"/api/v1/clue-batches/{batch['id']}", headers=narrower).status_code == 404

    # The list follows the same rule as the batch itself.
    def listed(headers):
        page = client.get("/api/v1/clue-batches?page_size=100", headers=headers).json
        return {item["id"] for item in page["items"]}

    assert batch["id"] in listed(wider) and batch["id"] in listed(maker)
    assert batch["id"] not in listed(narrower)


def test_outcomes_are_final(client, liaison):
    _user, headers = liaison
    tip = _post_tip(client)
    batch = _create(client, headers, tip_ids=[tip["id"]]).json
    url = f"/api/v1/clue-batches/{batch['id']}/outcomes"

    def send(outcome):
        return client.post(
            url, json={"items": [{"tip_id": tip["id"], "outcome": outcome}]}, headers=headers
        )

    assert send("case_opened").status_code == 200
    assert send("case_opened").status_code == 200  # a retry: recorded once
    assert send("false_report").status_code == 409
    follow = client.get(
        f"/api/v1/tips/follow/{tip['follow_code']}",
        headers={"X-Follow-Secret": tip["follow_secret"]},
    ).json
    assert [h["kind"] for h in follow["history"]].count("police_outcome") == 1


@pytest.mark.parametrize(("language", "locale"), [(None, "zh_Hans_CN"), ("en", "en")])
def test_the_csv_header_is_in_the_language_the_batch_was_asked_in(
    app, client, liaison, connection, run_jobs, language, locale
):
    _user, headers = liaison
    tip = _post_tip(client)
    if language is None:
        del client.environ_base["HTTP_ACCEPT_LANGUAGE"]  # as a phone that sends none
    asked = {**headers, "Accept-Language": language} if language else headers
    batch = _create(client, asked, tip_ids=[tip["id"]]).json
    deferred = connection.execute(
        text("SELECT args FROM procrastinate_jobs WHERE args->>'batch_id' = :id"),
        {"id": batch["id"]},
    ).scalar_one()
    assert deferred["locale"] == locale
    export_jobs.generate_batch(**deferred)
    header = _download(client, headers, batch["id"], "tips.csv").decode("utf-8-sig")
    assert header.split("\r\n")[0] == ",".join(csv_header(locale))


def test_acknowledged_batch_files_are_deleted_after_their_period_and_the_record_stays(
    app, client, session, liaison, create_user, token_for, run_jobs
):
    _user, headers = liaison
    reporter = create_user(real_name="同意联系人", phone="13955556666")
    named = _post_tip(client, token_for(reporter), police_contact_consent=True)
    batch = _create(client, headers, tip_ids=[named["id"]]).json
    run_jobs(batch["id"])
    assert _download(client, headers, batch["id"], "tips.csv")
    acked = client.post(f"/api/v1/clue-batches/{batch['id']}/acknowledge", headers=headers)
    assert acked.status_code == 200, acked.json
    store = export_store()
    prefix = service.batch_prefix(uuid.UUID(batch["id"]))
    assert len(list(store.list(prefix))) == 4
    days = app.config["BATCH_FILE_DAYS_AFTER_ACK"]
    acknowledged = session.get(ClueBatch, uuid.UUID(batch["id"])).acknowledged_at

    inside = acknowledged + dt.timedelta(days=days)
    assert retention.delete_acknowledged_batch_files(session, inside, days, store) == 0
    assert _download(client, headers, batch["id"], "tips.csv")

    due = inside + dt.timedelta(seconds=1)
    assert retention.delete_acknowledged_batch_files(session, due, days, store) == 1
    session.commit()
    assert list(store.list(prefix)) == []
    shown = client.get(f"/api/v1/clue-batches/{batch['id']}", headers=headers).json
    assert shown["files_deleted_at"] is not None
    assert shown["digest"] and shown["signature"] and shown["row_count"] == 1
    gone = client.get(f"/api/v1/clue-batches/{batch['id']}/files/tips.csv", headers=headers)
    assert gone.status_code == 404
    assert gone.content_type == "application/problem+json"
    assert "retention" in gone.json["detail"]
