"""Duty fixtures: volunteers of 南郎家园 on duty, put there over the API."""

from __future__ import annotations

import pytest

from tests.patrols.conftest import COMMUNITY, HOME, east


@pytest.fixture
def volunteer_at(create_user, client, token_for):
    """volunteer_at(metres_east): a volunteer of 南郎家园 with the location-sharing consent, on
    duty that far east of HOME."""

    def make(metres=0.0):
        user = create_user(roles=["volunteer"], home=COMMUNITY, location_sharing=True)
        body = {"on_duty": True, "location": {"lon": east(metres), "lat": HOME[1]}}
        response = client.put("/api/v1/me/duty", json=body, headers=token_for(user))
        assert response.status_code == 200
        return user

    return make
