"""One ETag scheme for the objects staff edit (app/core/preconditions.py), and JSON answers in
UTF-8 with Chinese as it is (issue 15, item 3).

Tips, tasks, stations and checkpoints each had their own ETag (a hash of the tip's version;
flask-smorest hashes of `{id, version}` dicts; tasks reaching into its private
`_generate_etag`). Now each is the object's version, the same whichever way it is read, and
every edit of one answers 428 without If-Match and 412 with a stale one.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.core.preconditions import etag_of
from app.patrols.models import Checkpoint
from app.stations.models import Station
from app.tasks.models import Task
from app.tips.models import Tip

COMMUNITY = "110105001024"  # 南郎家园
HOME = (116.457036, 39.910039)
ALWAYS = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@pytest.fixture
def staff(create_user, token_for):
    return token_for(create_user(roles=["grid_staff"], jurisdiction=[COMMUNITY]))


def _made(client, staff, token_for, kind: str) -> tuple[str, dict]:
    """(url of the object, an edit of it that changes it) for a new object of `kind`."""
    location = {"lon": HOME[0], "lat": HOME[1]}
    if kind == "tip":
        made = client.post(
            "/api/v1/tips",
            json={"category": "theft", "description": "两个人在撬电动车的锁", "location": location},
            headers={**token_for("volunteer"), "Idempotency-Key": str(uuid.uuid4())},
        )
        return f"/api/v1/tips/{made.json['id']}", {"priority": "urgent"}
    if kind == "station":
        body = {"name": "骑手驿站", "type": "rider_station", "location": location}
        made = client.post(
            "/api/v1/stations", json={**body, "opening_hours": ALWAYS}, headers=staff
        )
        return f"/api/v1/stations/{made.json['id']}", {"name": "骑手驿站（东门）"}
    if kind == "checkpoint":
        made = client.post(
            "/api/v1/checkpoints", json={"name": "东门", "location": location}, headers=staff
        )
        return f"/api/v1/checkpoints/{made.json['id']}", {"name": "东门岗亭"}
    ends = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    body = {"title": "东门疏导", "kind": "event_support", "location": location, "radius_m": 500}
    made = client.post(
        "/api/v1/tasks",
        json={**body, "ends_at": ends, "needed": 1, "targeting": {"mode": "radius"}},
        headers=staff,
    )
    return f"/api/v1/tasks/{made.json['id']}", {"reason": "已有民警到场"}


MODELS = {"tip": Tip, "station": Station, "checkpoint": Checkpoint, "task": Task}


@pytest.mark.parametrize("kind", list(MODELS))
def test_an_etag_is_the_objects_version_and_guards_every_edit(
    kind, client, staff, token_for, session
):
    url, edit = _made(client, staff, token_for, kind)
    read = client.get(url, headers=staff)
    assert read.status_code == 200, read.json
    stored = session.get(MODELS[kind], uuid.UUID(url.rsplit("/", 1)[1]))
    assert read.headers["ETag"] == f'"{etag_of(kind, stored)}"'
    # The version, not the rendering: the same in another coordinate system or language.
    for other in ({"crs": "gcj02"}, {}):
        again = client.get(url, query_string=other, headers={**staff, "Accept-Language": "en"})
        if again.status_code == 200:  # tasks and tips take no crs on every read
            assert again.headers["ETag"] == read.headers["ETag"]
    unchanged = client.get(url, headers={**staff, "If-None-Match": read.headers["ETag"]})
    assert unchanged.status_code == 304 and unchanged.get_data() == b""

    method, target = ("post", f"{url}/cancel") if kind == "task" else ("patch", url)
    send = getattr(client, method)
    missing = send(target, json=edit, headers=staff)
    assert missing.status_code == 428 and missing.mimetype == "application/problem+json"
    stale = send(target, json=edit, headers={**staff, "If-Match": '"0123456789abcdef"'})
    assert stale.status_code == 412 and stale.mimetype == "application/problem+json"
    assert client.get(url, headers=staff).headers["ETag"] == read.headers["ETag"]  # unchanged

    done = send(target, json=edit, headers={**staff, "If-Match": read.headers["ETag"]})
    assert done.status_code == 200, done.json
    assert done.headers["ETag"] not in (None, read.headers["ETag"])
    assert client.get(url, headers=staff).headers["ETag"] == done.headers["ETag"]
    replay = send(target, json=edit, headers={**staff, "If-Match": read.headers["ETag"]})
    assert replay.status_code == 412


def test_precondition_problems_follow_the_language(client, staff, token_for):
    url, edit = _made(client, staff, token_for, "station")
    chinese = client.patch(url, json=edit, headers={**staff, "Accept-Language": "zh-CN"})
    assert chinese.json["detail"] == "请在 If-Match 中发送您读取驿站时得到的 ETag（不能用 *）。"
    english = client.patch(url, json=edit, headers={**staff, "Accept-Language": "en"})
    assert english.json["detail"] == "Send the ETag you read (of the station) as If-Match, not *."


def test_json_answers_carry_chinese_as_it_is(client, staff, token_for):
    """Flask wrote marshmallow-dumped answers with `\\uXXXX` escapes (6 bytes a character)."""
    url, _edit = _made(client, staff, token_for, "station")
    tip_url, _ = _made(client, staff, token_for, "tip")
    for path, headers in [
        (url, staff),
        (tip_url, staff),
        ("/api/v1/terms", {}),
        ("/api/v1/areas?level=community&page_size=5", staff),
        ("/api/v1/nowhere", {}),  # a problem
    ]:
        answer = client.get(path, headers={**headers, "Accept-Language": "zh-CN"})
        body = answer.get_data()
        assert b"\\u" not in body, path
        assert any("\u4e00" <= c <= "\u9fff" for c in body.decode("utf-8")), path
