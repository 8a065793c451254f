"""Service hours: only time backed by fixes counts, capped per day, by month and by kind."""

from __future__ import annotations

import datetime as dt
import uuid

from app.service_record.service import replace_entries
from tests.patrols.conftest import COMMUNITY, east, item, now


def test_patrol_time_backed_by_fixes_is_credited_by_kind(
    volunteer, start_patrol, send, client, token_for
):
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=40)
    send(
        volunteer,
        patrol["id"],
        [item(t0 + dt.timedelta(minutes=5 * n), lon=east(30 * n)) for n in range(5)],
    )
    client.post(f"/api/v1/patrols/{patrol['id']}/end", json={}, headers=token_for(volunteer))
    record = client.get("/api/v1/me/service-record", headers=token_for(volunteer)).json
    assert record["total_hours"] == round(20 / 60, 2)
    assert record["by_kind"] == {"walk_along": round(20 / 60, 2)}
    assert sum(m["hours"] for m in record["by_month"]) == record["total_hours"]


def test_the_daily_cap_applies_across_sources(app, volunteer, session, client, token_for):
    day = dt.date(2026, 11, 3)
    for kind, hours in (("walk_along", 6), ("team_patrol", 6)):
        replace_entries(
            session,
            volunteer_id=volunteer.id,
            source_type="patrol",
            source_id=uuid.uuid4(),
            kind=kind,
            seconds_by_day={day: hours * 3600},
        )
    session.commit()
    record = client.get(
        "/api/v1/me/service-record",
        query_string={"from": "2026-11-01", "to": "2026-11-30"},
        headers=token_for(volunteer),
    ).json
    cap = app.config["SERVICE_DAILY_CAP_HOURS"]
    assert record["total_hours"] == cap
    assert record["uncapped_hours"] == 12
    assert record["by_kind"] == {"team_patrol": cap / 2, "walk_along": cap / 2}
    assert record["by_month"] == [
        {
            "month": "2026-11",
            "hours": cap,
            "by_kind": {"team_patrol": cap / 2, "walk_along": cap / 2},
        }
    ]


def test_staff_see_their_volunteers_records_only(
    volunteer, session, client, token_for, create_user
):
    staff = create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY])
    elsewhere = create_user(roles=["grid_staff"], jurisdiction=["110105002000"])
    period = {"from": "2026-11-01", "to": "2026-11-30"}
    replace_entries(
        session,
        volunteer_id=volunteer.id,
        source_type="patrol",
        source_id=uuid.uuid4(),
        kind="walk_along",
        seconds_by_day={dt.date(2026, 11, 3): 2 * 3600},
    )
    session.commit()
    url = f"/api/v1/users/{volunteer.id}/service-record"
    seen = client.get(url, query_string=period, headers=token_for(staff))
    assert seen.status_code == 200
    own = client.get("/api/v1/me/service-record", query_string=period, headers=token_for(volunteer))
    assert seen.json["volunteer_id"] == str(volunteer.id)
    assert seen.json["total_hours"] == 2
    assert seen.json == own.json  # the volunteer's own record, as they see it
    for headers, status in ((token_for(elsewhere), 404), (token_for(create_user()), 403)):
        refused = client.get(url, query_string=period, headers=headers)
        assert refused.status_code == status
        assert refused.mimetype == "application/problem+json"
        assert "total_hours" not in refused.json


def test_a_backwards_period_is_a_422(volunteer, client, token_for):
    response = client.get(
        "/api/v1/me/service-record",
        query_string={"from": "2026-11-05", "to": "2026-11-01"},
        headers=token_for(volunteer),
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
