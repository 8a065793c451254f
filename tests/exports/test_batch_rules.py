"""Rules of making a clue batch that no test stated before (issue #22): the job that builds it is
deferred with the batch, a filter naming an area outside the jurisdiction is refused before
anything is frozen, and a filter's period is [from, to)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select, text

from app.exports.models import ClueBatch
from app.tips.models import Tip
from tests.exports.test_batches import LIAISON_AREA, _create, _post_tip
from tests.tips.conftest import NEIGHBOUR

PROBLEM = "application/problem+json"
JOBS = text(
    "SELECT queue_name, status, args FROM procrastinate_jobs "
    "WHERE task_name LIKE '%generate_batch' ORDER BY id"
)


@pytest.fixture
def liaison(create_user, token_for):
    return token_for(create_user(roles=["police_liaison"], jurisdiction=[LIAISON_AREA]))


def test_creating_a_batch_defers_exactly_one_build_of_it(client, connection, liaison):
    tip = _post_tip(client)
    assert connection.execute(JOBS).all() == []
    created = _create(client, liaison, tip_ids=[tip["id"]])
    assert created.status_code == 201, created.json
    jobs = connection.execute(JOBS).all()
    assert len(jobs) == 1
    queue, status, args = jobs[0]
    assert (queue, status, args["batch_id"]) == ("exports", "todo", created.json["id"])


def test_a_filter_naming_an_area_outside_the_jurisdiction_is_refused_and_freezes_nothing(
    client, session, connection, create_user, token_for, area
):
    staff = token_for(create_user(roles=["grid_staff"], jurisdiction=["110105001024"]))
    inside, outside = _post_tip(client), _post_tip(client, at=NEIGHBOUR)
    for area_ids, index in (
        (["110105001025"], 0),  # the neighbouring community
        (["110105001024", "110105001025"], 1),  # one inside, one outside
        (["110105001000"], 0),  # the sub-district above the grant
    ):
        ids = [str(area(code).id) for code in area_ids]
        refused = _create(client, staff, filters={"area_ids": ids})
        assert refused.status_code == 422 and refused.mimetype == PROBLEM, area_ids
        assert refused.json["errors"][0]["pointer"] == f"/filters/area_ids/{index}"
    ghost = _create(client, staff, filters={"area_ids": [str(uuid.uuid4())]})
    assert ghost.status_code == 422
    assert ghost.json["errors"][0]["pointer"] == "/filters/area_ids/0"
    session.expire_all()
    for tip in (inside, outside):
        assert session.get(Tip, uuid.UUID(tip["id"])).status == "submitted"
    assert session.scalar(select(func.count()).select_from(ClueBatch)) == 0
    assert connection.execute(JOBS).all() == []
    # The area inside is taken, and only its tip.
    taken = _create(client, staff, filters={"area_ids": [str(area("110105001024").id)]})
    assert taken.status_code == 201, taken.json
    assert taken.json["row_count"] == 1


def test_a_filters_period_includes_from_and_excludes_to(client, session, liaison):
    start = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
    made = {}
    for offset in (-1, 0, 1, 2):
        tip_id = _post_tip(client)["id"]
        made[offset] = tip_id
        session.execute(
            text("UPDATE tips SET created_at = :at WHERE id = :id"),
            {"at": start + dt.timedelta(hours=offset), "id": tip_id},
        )
    session.commit()
    end = start + dt.timedelta(hours=2)
    created = _create(client, liaison, filters={"from": start.isoformat(), "to": end.isoformat()})
    assert created.status_code == 201, created.json
    assert created.json["row_count"] == 2
    session.expire_all()
    referred = {
        str(t.id)
        for t in session.scalars(
            select(Tip).where(
                Tip.id.in_([uuid.UUID(i) for i in made.values()]),
                Tip.status == "referred_to_police",
            )
        )
    }
    assert referred == {made[0], made[1]}
