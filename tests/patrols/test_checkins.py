"""Check-in batches: per-item outcomes, replays, flags, area paths, ownership."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import h3
from sqlalchemy import text

from geo.cells import to_bigint
from geo.crs import from_wgs84
from tests.patrols.conftest import COMMUNITY, HOME, east, item, now


def stored(connection, patrol_id):
    return connection.execute(
        text(
            "SELECT client_id::text, flags, community_id, grid_cell_id, h3_r9, "
            "ST_X(geom) AS lon, ST_Y(geom) AS lat FROM checkins WHERE patrol_id = :p "
            "ORDER BY recorded_at"
        ),
        {"p": patrol_id},
    ).all()


def test_a_mixed_batch_gets_one_outcome_per_item_in_request_order(
    volunteer, start_patrol, send, connection
):
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=30)
    good = item(t0)
    replay_in_batch = dict(good)
    future = item(now() + dt.timedelta(hours=1))
    spoof = item(t0 + dt.timedelta(seconds=10), lon=east(5_000))  # 5 km in 10 s
    back = item(t0 + dt.timedelta(seconds=60), lon=east(40))
    out_of_range = item(t0 + dt.timedelta(seconds=90), lat=95)
    before_start = item(now() - dt.timedelta(hours=3))
    response = send(
        volunteer,
        patrol["id"],
        [good, replay_in_batch, future, spoof, back, out_of_range, before_start],
    )
    assert response.status_code == 200, response.json
    answers = response.json["items"]
    assert [(a["client_id"], a["outcome"], a["reason"]) for a in answers] == [
        (good["client_id"], "accepted", None),
        (good["client_id"], "duplicate", None),
        (future["client_id"], "rejected", "in_future"),
        (spoof["client_id"], "accepted", None),
        (back["client_id"], "accepted", None),
        (out_of_range["client_id"], "rejected", "coordinates_out_of_range"),
        (before_start["client_id"], "rejected", "before_patrol_start"),
    ]
    assert answers[3]["flags"] == ["implausible_speed"]
    assert answers[4]["flags"] == []  # measured from the last plausible fix, not the jump
    rows = {r.client_id: r for r in stored(connection, patrol["id"])}
    assert set(rows) == {good["client_id"], spoof["client_id"], back["client_id"]}
    assert rows[spoof["client_id"]].flags == 2
    assert rows[good["client_id"]].flags == 0


def test_replaying_a_whole_batch_changes_nothing(
    volunteer, start_patrol, send, connection, client, token_for
):
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=20)
    batch = [item(t0 + dt.timedelta(seconds=30 * n), lon=east(10 * n)) for n in range(5)]
    first = send(volunteer, patrol["id"], batch)
    assert [a["outcome"] for a in first.json["items"]] == ["accepted"] * 5
    before = stored(connection, patrol["id"])
    counts = client.get(f"/api/v1/patrols/{patrol['id']}", headers=token_for(volunteer)).json
    again = send(volunteer, patrol["id"], batch)
    assert again.status_code == 200
    assert [a["outcome"] for a in again.json["items"]] == ["duplicate"] * 5
    assert stored(connection, patrol["id"]) == before
    after = client.get(f"/api/v1/patrols/{patrol['id']}", headers=token_for(volunteer)).json
    assert after["checkin_count"] == counts["checkin_count"] == 5


def test_a_volunteer_cannot_add_checkins_to_another_volunteers_patrol(
    volunteer, create_user, start_patrol, send, connection
):
    patrol = start_patrol(volunteer)
    other = create_user(roles=["volunteer"], home=COMMUNITY)
    response = send(other, patrol["id"], [item()])
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert stored(connection, patrol["id"]) == []


def test_poor_accuracy_is_flagged_and_kept(volunteer, start_patrol, send, connection):
    patrol = start_patrol(volunteer)
    response = send(volunteer, patrol["id"], [item(accuracy_m=250)])
    assert response.json["items"][0]["outcome"] == "accepted"
    assert response.json["items"][0]["flags"] == ["poor_accuracy"]
    assert stored(connection, patrol["id"])[0].flags == 1


def test_each_stored_checkin_carries_its_area_path_and_cells(
    volunteer, start_patrol, send, connection, area
):
    patrol = start_patrol(volunteer)
    send(volunteer, patrol["id"], [item()])
    (row,) = stored(connection, patrol["id"])
    assert row.community_id == area(COMMUNITY).id
    assert row.grid_cell_id == area(f"{COMMUNITY}-G005").id
    assert row.h3_r9 == to_bigint(h3.latlng_to_cell(HOME[1], HOME[0], 9))


def test_gcj02_positions_are_stored_in_wgs84(volunteer, start_patrol, send, connection):
    patrol = start_patrol(volunteer)
    lon, lat = from_wgs84(*HOME, "gcj02")
    send(volunteer, patrol["id"], [item(lon=lon, lat=lat, coord_system="gcj02")])
    (row,) = stored(connection, patrol["id"])
    assert abs(row.lon - HOME[0]) < 1e-7 and abs(row.lat - HOME[1]) < 1e-7


def test_a_malformed_item_is_rejected_alone(volunteer, start_patrol, send, connection):
    patrol = start_patrol(volunteer)
    good = item()
    broken = {
        "client_id": str(uuid.uuid4()),
        "recorded_at": "yesterday",
        "location": {"lon": 116.4},
    }
    response = send(volunteer, patrol["id"], [broken, good])
    first, second = response.json["items"]
    assert (first["outcome"], first["reason"]) == ("rejected", "invalid")
    assert first["client_id"] == broken["client_id"]
    # Each refused field by its path, with what is wrong with it.
    assert sorted(first["detail"].split("; ")) == [
        "location.lat: Missing data for required field.",
        "recorded_at: Not a valid datetime.",
    ]
    assert second["outcome"] == "accepted"
    assert [r.client_id for r in stored(connection, patrol["id"])] == [good["client_id"]]


def test_items_older_than_retention_are_rejected(app, volunteer, start_patrol, send):
    patrol = start_patrol(volunteer)
    old = item(now() - dt.timedelta(days=app.config["CHECKIN_RETENTION_DAYS"] + 1))
    answer = send(volunteer, patrol["id"], [old]).json["items"][0]
    assert (answer["outcome"], answer["reason"]) == ("rejected", "past_retention")


def test_a_single_checkin_may_be_sent_without_items(volunteer, start_patrol, client, token_for):
    patrol = start_patrol(volunteer)
    one = item()
    response = client.post(
        f"/api/v1/patrols/{patrol['id']}/checkins", json=one, headers=token_for(volunteer)
    )
    assert response.status_code == 200
    assert response.json["items"] == [
        {
            "client_id": one["client_id"],
            "outcome": "accepted",
            "reason": None,
            "detail": None,
            "flags": [],
            "visits": [],
        }
    ]


def test_a_batch_over_500_items_is_refused_whole(volunteer, start_patrol, send, connection):
    patrol = start_patrol(volunteer)
    response = send(volunteer, patrol["id"], [item() for _ in range(501)])
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert stored(connection, patrol["id"]) == []


def test_an_empty_or_misshapen_body_is_a_422(volunteer, start_patrol, client, token_for):
    patrol = start_patrol(volunteer)
    url = f"/api/v1/patrols/{patrol['id']}/checkins"
    for body in ({"items": []}, {"items": "x"}, [1, 2]):
        response = client.post(url, json=body, headers=token_for(volunteer))
        assert response.status_code == 422, body
        assert response.mimetype == "application/problem+json"


def test_late_items_reaching_back_are_checked_against_stored_neighbours(
    volunteer, start_patrol, send
):
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=50)
    send(volunteer, patrol["id"], [item(t0), item(t0 + dt.timedelta(minutes=30))])
    # Synced late: a fix between the two, 3 km away 60 s after the first.
    late = item(t0 + dt.timedelta(seconds=60), lon=east(3_000))
    answer = send(volunteer, patrol["id"], [late]).json["items"][0]
    assert answer["flags"] == ["implausible_speed"]


def test_fixes_after_the_end_are_rejected_and_earlier_late_ones_resummarise(
    volunteer, start_patrol, send, client, token_for
):
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=40)
    send(volunteer, patrol["id"], [item(t0), item(t0 + dt.timedelta(minutes=5), lon=east(100))])
    ended = client.post(
        f"/api/v1/patrols/{patrol['id']}/end",
        json={"ended_at": (t0 + dt.timedelta(minutes=15)).isoformat()},
        headers=token_for(volunteer),
    ).json
    assert ended["service_hours"] == round(300 / 3600, 2)
    late = item(t0 + dt.timedelta(minutes=10), lon=east(100), lat=HOME[1] + 0.001)  # 111 m N
    after_end = item(t0 + dt.timedelta(minutes=25))
    answers = send(volunteer, patrol["id"], [late, after_end]).json["items"]
    assert answers[0]["outcome"] == "accepted"
    assert (answers[1]["outcome"], answers[1]["reason"]) == ("rejected", "after_patrol_end")
    detail = client.get(f"/api/v1/patrols/{patrol['id']}", headers=token_for(volunteer)).json
    assert detail["checkin_count"] == 3
    assert detail["service_hours"] == round(600 / 3600, 2)
    assert len(detail["track"]["coordinates"]) == 3


def test_absurd_numbers_and_times_are_rejected_alone_and_the_rest_is_stored(
    volunteer, start_patrol, client, token_for, connection
):
    """Issue 14: lon 10**400 as a JSON integer, or recorded_at 9999-12-31T23:59:59-14:00,
    made the whole batch a 500. Such items are rejected with a reason, by the fast path and
    by the schema alike (a checkpoint scan takes the schema); the others are stored."""
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=20)
    scan = {"checkpoint": {"id": str(uuid.uuid4()), "method": "gps"}}
    good = [item(t0 + dt.timedelta(seconds=30 * n), lon=east(10 * n)) for n in range(4)]
    absurd = [
        item(t0, lon="HUGE"),
        item(t0, lat="HUGE", **scan),
        item(t0, lon="DIGITS"),  # more digits than Python converts to an int
        item(t0, lat=float("inf")),  # 1e400 in the body
        {**item(), "recorded_at": "9999-12-31T23:59:59-14:00"},
        {**item(), "recorded_at": "0001-01-01T00:00:00+14:00"},
        {**item(), "recorded_at": "9999-12-31T23:59:59-14:00", **scan},
        {**item(), "recorded_at": "0001-01-01T00:00:00Z", **scan},
        {**item(), "recorded_at": now().replace(tzinfo=None).isoformat()},
    ]
    body = json.dumps({"items": [good[0], *absurd[:5], good[1], *absurd[5:], *good[2:]]})
    body = (
        body.replace('"HUGE"', "1" + "0" * 400)
        .replace('"DIGITS"', "9" * 5000)
        .replace("Infinity", "1e400")
    )
    response = client.post(
        f"/api/v1/patrols/{patrol['id']}/checkins",
        data=body,
        content_type="application/json",
        headers=token_for(volunteer),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    answers = {a["client_id"]: a for a in response.json["items"]}
    for sent in absurd:
        answer = answers[sent["client_id"]]
        assert (answer["outcome"], answer["reason"]) == ("rejected", "invalid"), answer
        assert answer["detail"]
    assert all(answers[g["client_id"]]["outcome"] == "accepted" for g in good)
    assert sorted(r.client_id for r in stored(connection, patrol["id"])) == sorted(
        g["client_id"] for g in good
    )


def test_a_client_id_is_any_printable_string_up_to_64_characters(
    volunteer, start_patrol, send, connection
):
    patrol = start_patrol(volunteer)
    t0 = now() - dt.timedelta(minutes=20)
    ids = ["巡逻-1", "a" * 64, "1700000000123", str(uuid.uuid4()).upper()]
    batch = [item(t0 + dt.timedelta(seconds=30 * n), client_id=c) for n, c in enumerate(ids)]
    # One more through the schema's path (an accuracy given as a string is not the fast shape).
    batch.append(item(t0 + dt.timedelta(seconds=150), client_id="第五个", accuracy_m="8"))
    first = send(volunteer, patrol["id"], batch).json["items"]
    assert [(a["client_id"], a["outcome"]) for a in first] == [
        (c, "accepted") for c in [*ids, "第五个"]
    ]
    assert len(stored(connection, patrol["id"])) == 5
    # The same ids again, in any case a UUID is written in, are the same fixes.
    replay = [
        {**b, "client_id": b["client_id"].lower()} if n == 3 else b for n, b in enumerate(batch)
    ]
    again = send(volunteer, patrol["id"], replay).json["items"]
    assert [a["outcome"] for a in again] == ["duplicate"] * 5
    bad = ["", "a" * 65, "tab\there", "bell\x07", 12, None]
    refused = send(
        volunteer,
        patrol["id"],
        [item(t0 + dt.timedelta(seconds=200 + n), client_id=c) for n, c in enumerate(bad)],
    ).json["items"]
    assert [(a["outcome"], a["reason"]) for a in refused] == [("rejected", "invalid")] * len(bad)
    assert len(stored(connection, patrol["id"])) == 5
