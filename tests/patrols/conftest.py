"""Patrol fixtures: volunteers of 南郎家园 (110105001024), patrols started over the API, and
check-in items with sensible defaults."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

# Inside 南郎家园社区 (110105001024), grid cell G005; WGS-84.
HOME = (116.457036, 39.910039)
COMMUNITY = "110105001024"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def zone_with_an_ambiguous_hour() -> tuple[str, dt.datetime]:
    """A POSIX time zone (UTC+8, UTC+9 in summer) whose summer time ended at 02:00 two days ago,
    so that 01:00-02:00 local came twice, and the first 01:30's UTC time (the one a round trip
    through a local timestamp turns into the second)."""
    day = dt.date.today() - dt.timedelta(days=2)
    if (day.month, day.day) in ((1, 1), (2, 29)):
        day -= dt.timedelta(days=1)
    leap = day.year % 4 == 0 and (day.year % 100 != 0 or day.year % 400 == 0)
    julian = day.timetuple().tm_yday - (1 if leap and day.month > 2 else 0)  # Jn skips Feb 29
    first = dt.datetime.combine(day, dt.time(1, 30), dt.timezone(dt.timedelta(hours=9)))
    return f"QFS-8QFD-9,J1/0,J{julian}/2", first.astimezone(dt.UTC)


def item(at: dt.datetime | None = None, lon: float = HOME[0], lat: float = HOME[1], **extra):
    """One check-in item as a phone sends it (`coord_system` and `accuracy_m` go into its
    location)."""
    body = {
        "client_id": str(uuid.uuid4()),
        "recorded_at": (at or now()).isoformat(),
        "location": {"lon": lon, "lat": lat, "accuracy_m": 8},
    }
    for key in ("coord_system", "accuracy_m"):
        if key in extra:
            body["location"][key] = extra.pop(key)
    body.update(extra)
    return body


def east(metres: float, lon: float = HOME[0]) -> float:
    """The longitude `metres` east of `lon` at Beijing's latitude."""
    return lon + metres / 85_390.0


@pytest.fixture
def volunteer(create_user):
    return create_user(roles=["volunteer"], home=COMMUNITY)


@pytest.fixture
def start_patrol(client, token_for):
    """start_patrol(user, **body) -> the patrol as the API answered (201)."""

    def start(user, **body):
        payload = {"kind": "walk_along", "started_at": (now() - dt.timedelta(hours=1)).isoformat()}
        payload.update(body)
        response = client.post("/api/v1/patrols", json=payload, headers=token_for(user))
        assert response.status_code == 201, response.json
        return response.json

    return start


@pytest.fixture
def send(client, token_for):
    """send(user, patrol_id, items) -> the response of POST .../checkins with `items`."""

    def post(user, patrol_id, items, headers=None):
        return client.post(
            f"/api/v1/patrols/{patrol_id}/checkins",
            json={"items": items},
            headers={**token_for(user), **(headers or {})},
        )

    return post
