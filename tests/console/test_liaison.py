"""The police liaison's pages through the Flask client: who may open them, batches made from
the form with the API's rules, the build's progress, downloads through the console with the
API's checks and audit, acknowledgement, outcomes, CSRF."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from app.core import jobs as jobs_module
from app.core.audit import AuditEvent
from app.exports import jobs as exports_jobs
from app.exports.models import ClueBatch, ClueBatchItem
from app.tips.models import Tip
from tests.console.conftest import csrf_of, sign_in
from tests.console.test_triage import submit_tip

LIAISON_AREA = "110105001000"  # the sub-district of communities 110105001024 and 025
ELSEWHERE = "110105002000"  # another sub-district


@pytest.fixture
def liaison_console(console, create_user):
    user = create_user(roles=["police_liaison"], jurisdiction=[LIAISON_AREA])
    assert sign_in(console, user).status_code == 303
    return console, user


@pytest.fixture
def build(app, monkeypatch):
    """The batch build job, run as tests/exports run it (the job function itself)."""
    monkeypatch.setattr(jobs_module, "_worker_app", app)
    return lambda batch_id: exports_jobs.generate_batch(batch_id=str(batch_id))


def token(console) -> str:
    return csrf_of(console.get("/console/login"))


def make_batch(console, **form) -> str:
    """A batch made through the console's form; its id."""
    data = {
        "purpose": "核查辖区盗窃线索",
        "case_reference": "京公朝刑2026-0042",
        "categories": ["theft"],
        "csrf_token": token(console),
        **form,
    }
    answer = console.post("/console/liaison/batches", data=data)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    return answer.headers["Location"].rsplit("/", 1)[1]


def test_a_liaison_lands_on_the_clue_batches_after_signing_in(console, create_user):
    user = create_user(roles=["police_liaison"], jurisdiction=[LIAISON_AREA])
    answer = sign_in(console, user)
    assert answer.headers["Location"].endswith("/console/liaison")
    assert console.get("/console/").headers["Location"].endswith("/console/liaison")


def test_the_liaison_page_lists_the_batches_and_the_form(liaison_console):
    console, _user = liaison_console
    submit_tip(console)
    batch_id = make_batch(console)
    page = console.get("/console/liaison")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-batch-id="{batch_id}"' in html
    assert 'id="batch-form"' in html and 'name="csrf_token"' in html


def test_grid_staff_cannot_open_the_liaison_page_or_a_batch(liaison_console, create_user):
    console, _user = liaison_console
    submit_tip(console)
    batch_id = make_batch(console)
    for roles in (["grid_staff"], ["community_admin"]):
        staff = create_user(roles=roles, jurisdiction=[LIAISON_AREA])
        sign_in(console, staff)
        for path in ("", f"/batches/{batch_id}", f"/batches/{batch_id}/files/tips.csv"):
            answer = console.get(f"/console/liaison{path}")
            assert answer.status_code == 403, f"{roles} {path}"
            assert answer.mimetype == "text/html"


def test_a_liaison_of_another_jurisdiction_cannot_see_the_batch(
    liaison_console, create_user, session
):
    console, _user = liaison_console
    submit_tip(console)
    batch_id = make_batch(console)
    other = create_user(roles=["police_liaison"], jurisdiction=[ELSEWHERE])
    sign_in(console, other)
    assert batch_id not in console.get("/console/liaison").get_data(as_text=True)
    for path in ("", "/progress.json", "/files/tips.csv"):
        answer = console.get(f"/console/liaison/batches/{batch_id}{path}")
        assert answer.status_code == 404, path
    answer = console.post(
        f"/console/liaison/batches/{batch_id}/acknowledge", data={"csrf_token": token(console)}
    )
    assert answer.status_code == 404
    session.expire_all()
    assert session.get(ClueBatch, uuid.UUID(batch_id)).acknowledged_at is None


def test_a_batch_is_made_from_areas_and_refers_its_tips(liaison_console, session, area):
    console, _user = liaison_console
    tip_id = submit_tip(console)
    community = area("110105001024")
    batch_id = make_batch(console, area_ids=[str(community.id)])
    session.expire_all()
    batch = session.get(ClueBatch, uuid.UUID(batch_id))
    assert batch.status == "pending" and batch.filters["area_ids"] == [str(community.id)]
    assert batch.creator_role == "police_liaison"
    items = session.scalars(
        sa.select(ClueBatchItem.tip_id).where(ClueBatchItem.batch_id == batch.id)
    )
    assert uuid.UUID(tip_id) in set(items)
    assert session.get(Tip, uuid.UUID(tip_id)).status == "referred_to_police"
    created = session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "clue_batch.created", AuditEvent.object_ids.contains([batch_id])
        )
    )
    assert created.purpose == "核查辖区盗窃线索"


def test_an_area_outside_the_jurisdiction_is_a_message_and_no_batch(liaison_console, session, area):
    console, _user = liaison_console
    submit_tip(console)
    before = session.scalar(sa.select(sa.func.count()).select_from(ClueBatch))
    answer = console.post(
        "/console/liaison/batches",
        data={
            "purpose": "核查辖区盗窃线索",
            "case_reference": "X-1",
            "area_ids": [str(area(ELSEWHERE).id)],
            "csrf_token": token(console),
        },
    )
    assert answer.status_code == 422
    assert 'id="batch-errors"' in answer.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(ClueBatch)) == before


def test_a_form_without_a_purpose_is_a_message_and_no_batch(liaison_console, session):
    console, _user = liaison_console
    submit_tip(console)
    before = session.scalar(sa.select(sa.func.count()).select_from(ClueBatch))
    answer = console.post(
        "/console/liaison/batches",
        data={"purpose": "短", "case_reference": "X-1", "csrf_token": token(console)},
    )
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "用途" in html  # the field is named in the message
    assert session.scalar(sa.select(sa.func.count()).select_from(ClueBatch)) == before


def test_making_a_batch_without_the_csrf_token_changes_nothing(liaison_console, session):
    console, _user = liaison_console
    tip_id = submit_tip(console)
    before = session.scalar(sa.select(sa.func.count()).select_from(ClueBatch))
    answer = console.post(
        "/console/liaison/batches", data={"purpose": "核查辖区盗窃线索", "case_reference": "X"}
    )
    assert answer.status_code == 400
    assert session.scalar(sa.select(sa.func.count()).select_from(ClueBatch)) == before
    assert session.get(Tip, uuid.UUID(tip_id)).status == "submitted"


def test_progress_then_files_with_their_hashes_and_a_verified_signature(
    liaison_console, build, session
):
    console, _user = liaison_console
    submit_tip(console)
    batch_id = make_batch(console)
    progress = console.get(f"/console/liaison/batches/{batch_id}/progress.json").get_json()
    assert progress["status"] == "pending" and progress["percent"] == 0
    page = console.get(f"/console/liaison/batches/{batch_id}").get_data(as_text=True)
    assert 'id="batch-bar"' in page and "data-progress-url" in page
    build(batch_id)
    progress = console.get(f"/console/liaison/batches/{batch_id}/progress.json").get_json()
    assert (progress["status"], progress["percent"], progress["error"]) == ("ready", 100, None)
    html = console.get(f"/console/liaison/batches/{batch_id}").get_data(as_text=True)
    assert 'data-verified="true"' in html
    session.expire_all()
    batch = session.get(ClueBatch, uuid.UUID(batch_id))
    for entry in batch.files:
        assert f'data-sha256="{entry["sha256"]}"' in html
    download = console.get(f"/console/liaison/batches/{batch_id}/files/batch.zip")
    assert download.status_code == 200
    assert download.headers["Cache-Control"] == "no-store"
    assert "attachment" in download.headers["Content-Disposition"]
    zip_entry = next(e for e in batch.files if e["name"] == "batch.zip")
    assert hashlib.sha256(download.data).hexdigest() == zip_entry["sha256"]
    downloads = session.scalars(
        sa.select(AuditEvent.details).where(
            AuditEvent.action == "clue_batch.downloaded", AuditEvent.object_ids.contains([batch_id])
        )
    )
    assert {"file": "batch.zip"} in list(downloads)


def test_a_file_of_a_batch_not_yet_built_is_a_message(liaison_console):
    console, _user = liaison_console
    submit_tip(console)
    batch_id = make_batch(console)
    answer = console.get(f"/console/liaison/batches/{batch_id}/files/tips.csv")
    assert answer.status_code == 409
    assert 'id="batch-message"' in answer.get_data(as_text=True)
    assert console.get(f"/console/liaison/batches/{batch_id}/files/other.txt").status_code == 404


def test_a_signature_that_does_not_verify_is_shown(liaison_console, build, session):
    console, _user = liaison_console
    submit_tip(console)
    batch_id = make_batch(console)
    build(batch_id)
    session.expire_all()
    batch = session.get(ClueBatch, uuid.UUID(batch_id))
    batch.files = [{**e, "sha256": "0" * 64} if e["name"] == "tips.csv" else e for e in batch.files]
    session.commit()
    html = console.get(f"/console/liaison/batches/{batch_id}").get_data(as_text=True)
    assert 'data-verified="false"' in html


def test_acknowledging_and_an_outcome_go_on_the_batch_and_the_audit_trail(
    liaison_console, build, session
):
    console, user = liaison_console
    tip_id = submit_tip(console)
    batch_id = make_batch(console)
    build(batch_id)
    answer = console.post(
        f"/console/liaison/batches/{batch_id}/acknowledge", data={"csrf_token": token(console)}
    )
    assert answer.status_code == 303
    answer = console.post(
        f"/console/liaison/batches/{batch_id}/outcomes",
        data={
            "tip_id": tip_id,
            "outcome": "case_opened",
            "note": "嫌疑人已到案",
            "csrf_token": token(console),
        },
    )
    assert answer.status_code == 303
    session.expire_all()
    batch = session.get(ClueBatch, uuid.UUID(batch_id))
    assert batch.acknowledged_by == user.id
    item = session.get(ClueBatchItem, (batch.id, uuid.UUID(tip_id)))
    assert item.outcome == "case_opened"
    actions = set(
        session.scalars(sa.select(AuditEvent.action).where(AuditEvent.actor_id == user.id))
    )
    assert {"clue_batch.acknowledged", "clue_batch.outcomes"} <= actions
    html = console.get(f"/console/liaison/batches/{batch_id}").get_data(as_text=True)
    assert 'id="ack-form"' not in html and "嫌疑人已到案" not in html  # the note: staff only


def test_a_different_outcome_later_is_refused_and_changes_nothing(liaison_console, build, session):
    console, _user = liaison_console
    tip_id = submit_tip(console)
    batch_id = make_batch(console)
    url = f"/console/liaison/batches/{batch_id}/outcomes"
    form = {"tip_id": tip_id, "outcome": "no_action", "csrf_token": token(console)}
    assert console.post(url, data=form).status_code == 303
    answer = console.post(url, data={**form, "outcome": "case_opened"})
    assert answer.status_code == 409
    assert 'id="batch-message"' in answer.get_data(as_text=True)
    session.expire_all()
    assert session.get(ClueBatchItem, (uuid.UUID(batch_id), uuid.UUID(tip_id))).outcome == (
        "no_action"
    )
    bad = console.post(url, data={**form, "outcome": "nonsense"})
    assert bad.status_code == 422


def test_the_map_layer_holds_the_liaisons_areas_with_their_clue_counts(liaison_console):
    console, _user = liaison_console
    submit_tip(console)
    answer = console.get("/console/liaison/areas.geojson")
    assert answer.mimetype == "application/geo+json"
    features = answer.get_json()["features"]
    cells = [f for f in features if f["properties"]["level"] == "grid_cell"]
    assert cells and all("count" in f["properties"] for f in cells)
    assert sum(f["properties"]["count"] for f in cells) >= 1
    codes = {f["properties"]["code"] for f in features}
    assert "110105001024" in codes and ELSEWHERE not in codes


def test_days_of_the_form_are_local_calendar_days_the_last_one_included(liaison_console, session):
    console, _user = liaison_console
    tip_id = submit_tip(console)
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    batch_id = make_batch(console, **{"from": today.isoformat(), "to": today.isoformat()})
    session.expire_all()
    batch = session.get(ClueBatch, uuid.UUID(batch_id))
    tomorrow = today + dt.timedelta(days=1)
    zone = ZoneInfo("Asia/Shanghai")
    midnight = dt.datetime.combine(today, dt.time(), zone)
    assert dt.datetime.fromisoformat(batch.filters["from"]) == midnight
    assert dt.datetime.fromisoformat(batch.filters["to"]) == midnight + dt.timedelta(days=1)
    items = session.scalars(
        sa.select(ClueBatchItem.tip_id).where(ClueBatchItem.batch_id == batch.id)
    )
    assert uuid.UUID(tip_id) in set(items)
    html = console.get(f"/console/liaison/batches/{batch_id}").get_data(as_text=True)
    assert f"{today.isoformat()} 00:00 – {tomorrow.isoformat()} 00:00" in html


@pytest.mark.parametrize(
    "days",
    [
        {"from": "0001-01-01"},
        {"to": "9999-12-31"},
        {"from": "2026-13-45"},
        {"from": "2026-12-03", "to": "2026-12-01"},
    ],
)
def test_days_out_of_range_or_in_the_wrong_order_are_a_message_and_no_batch(
    liaison_console, session, days
):
    console, _user = liaison_console
    submit_tip(console)
    before = session.scalar(sa.select(sa.func.count()).select_from(ClueBatch))
    data = {"purpose": "核查辖区盗窃线索", "case_reference": "X-1", "csrf_token": token(console)}
    answer = console.post("/console/liaison/batches", data={**data, **days})
    assert answer.status_code in (303, 422)
    if answer.status_code == 422:
        assert 'id="batch-errors"' in answer.get_data(as_text=True)
        assert session.scalar(sa.select(sa.func.count()).select_from(ClueBatch)) == before


def test_the_liaison_page_reads_in_english_for_an_english_reader(liaison_console):
    console, _user = liaison_console
    console.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    html = console.get("/console/liaison").get_data(as_text=True)
    assert '<html lang="en">' in html and "<h1>Clue batches</h1>" in html
    console.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    assert "<h1>线索批次</h1>" in console.get("/console/liaison").get_data(as_text=True)
