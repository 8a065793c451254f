"""Media asks the rule of the object a photo is attached to (app/media/access.py), which the
owning package registers at app start: the rule decides, media knows no tips."""

from __future__ import annotations

import uuid

import pytest

from app.media import access
from tests.tips.conftest import gps_exif, jpeg, tip_body, upload


def _seen(client, photo, headers) -> int:
    return client.get(f"/api/v1/media/{photo}", headers=headers).status_code


def test_staff_see_a_tips_photo_only_as_the_tips_rule_allows(
    client, create_user, token_for, monkeypatch
):
    reporter = create_user()
    photo = upload(client, jpeg(exif=gps_exif()), headers=token_for(reporter)).json["id"]
    headers = {**token_for(reporter), "Idempotency-Key": str(uuid.uuid4())}
    tip = client.post("/api/v1/tips", json=tip_body(media_ids=[photo]), headers=headers)
    assert tip.status_code == 201, tip.json
    staff_here = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    assert _seen(client, photo, token_for(staff_here)) == 200

    asked = []
    monkeypatch.setitem(access._rules, "tip_id", lambda *args: asked.append(args) and False)
    assert _seen(client, photo, token_for(staff_here)) == 404
    assert asked  # the registered rule was asked, and said no
    assert _seen(client, photo, token_for(reporter)) == 200  # the uploader needs no rule


def test_a_rule_for_a_column_media_lacks_is_refused():
    with pytest.raises(ValueError, match="no column"):
        access.register_owner("station_id", lambda *args: True)
