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
