"""Every response says `X-Content-Type-Options: nosniff`; every answer that may carry personal
data says `Cache-Control: no-store`. Walked over every route of the URL map, on data that holds
recognisable personal values (a reporter's name, phone and words): a route that opts out of
no-store must be reviewed below, must be public if it claims public data, and must not show any
of those values."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.core.caching import PERSONAL, PUBLIC_DATA, STAFF_AGGREGATE, data_class_of
from app.stations.models import Station
from tests.exports import test_batches
from tests.tips.conftest import jpeg, tip_body, upload

run_jobs = test_batches.run_jobs  # the fixture of those tests

IGNORED_METHODS = {"HEAD", "OPTIONS"}
NAME, PHONE = "缓存金丝雀居民", "13612345678"
WORDS, ADDRESS = "金丝雀描述：我家302门口堆满杂物", "金丝雀小区7号楼"
CANARIES = (NAME, PHONE, WORDS, ADDRESS)

# The routes whose answers name nobody, reviewed one by one. Adding one here is a privacy
# decision: say why in its view's docstring.
REVIEWED = {
    ("GET", "/api/docs"): PUBLIC_DATA,
    ("GET", "/api/docs/assets/<path:filename>"): PUBLIC_DATA,
    ("GET", "/api/v1/openapi.json"): PUBLIC_DATA,
    ("GET", "/api/v1/areas"): PUBLIC_DATA,
    ("GET", "/api/v1/areas/<uuid:area_id>"): PUBLIC_DATA,
    ("GET", "/api/v1/areas/locate"): PUBLIC_DATA,
    ("GET", "/api/v1/clue-batches/signing-key"): PUBLIC_DATA,
    ("GET", "/api/v1/public/heatmap"): PUBLIC_DATA,
    ("GET", "/api/v1/stations"): PUBLIC_DATA,
    ("GET", "/api/v1/stations/<uuid:station_id>"): PUBLIC_DATA,
    ("GET", "/api/v1/stations/nearby"): PUBLIC_DATA,
    ("GET", "/api/v1/tip-categories"): PUBLIC_DATA,
    ("GET", "/api/v1/terms"): PUBLIC_DATA,
    ("GET", "/open311/v2/discovery.<any(json, xml):fmt>"): PUBLIC_DATA,
    ("GET", "/open311/v2/services.<any(json, xml):fmt>"): PUBLIC_DATA,
    ("GET", "/open311/v2/services/<string:service_code>.<any(json, xml):fmt>"): PUBLIC_DATA,
    ("GET", "/open311/v2/requests.<any(json, xml):fmt>"): PUBLIC_DATA,
    ("GET", "/open311/v2/requests/<string:request_id>.<any(json, xml):fmt>"): PUBLIC_DATA,
    ("GET", "/open311/v2/tokens/<string:token_id>.<any(json, xml):fmt>"): PUBLIC_DATA,
    ("GET", "/api/v1/grid/tips"): STAFF_AGGREGATE,
    ("GET", "/api/v1/grid/tips/<string:cell>/series"): STAFF_AGGREGATE,
    ("GET", "/api/v1/grid/hotspots"): STAFF_AGGREGATE,
    ("GET", "/api/v1/grid/risk-coverage"): STAFF_AGGREGATE,
}
# Answers the issue names as personal: the sweep must see each of them succeed (200).
MUST_SUCCEED = {
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/<uuid:user_id>"),
    ("GET", "/api/v1/tips/<uuid:tip_id>"),
    ("GET", "/api/v1/tips/<uuid:tip_id>/reporter"),
    ("GET", "/api/v1/tips/follow/<string:code>"),
    ("GET", "/api/v1/clue-batches/<uuid:batch_id>/files/<string:name>"),
    ("GET", "/api/v1/media/<uuid:media_id>"),
}


def declared(app) -> dict[tuple[str, str], str]:
    classes = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - IGNORED_METHODS):
            classes[(method, rule.rule)] = data_class_of(rule.endpoint, view, method)
    return classes


def test_only_reviewed_routes_opt_out_of_no_store(app):
    opted_out = {key: kind for key, kind in declared(app).items() if kind != PERSONAL}
    assert opted_out == REVIEWED


@pytest.fixture
def world(app, client, session, create_user, token_for, area, run_jobs):
    """A named tip with a photo by a recognisable resident, an anonymous tip, a built clue
    batch, and a caller who may read everything (admin, liaison and volunteer at once)."""
    resident = create_user(real_name=NAME, phone=PHONE, home="110105001024")
    own = token_for(resident)
    photo = upload(client, jpeg(), headers=own).json["id"]
    named = client.post(
        "/api/v1/tips",
        json=tip_body(
            category="environment_sanitation",
            description=WORDS,
            address_text=ADDRESS,
            police_contact_consent=True,
            media_ids=[photo],
        ),
        headers={**own, "Idempotency-Key": str(uuid.uuid4())},
    ).json
    anonymous = client.post(
        "/api/v1/tips",
        json=tip_body(description=WORDS),
        headers={"Idempotency-Key": str(uuid.uuid4())},
    ).json
    everyone = create_user(roles=["admin", "police_liaison", "volunteer"])
    batch = client.post(
        "/api/v1/clue-batches",
        json={"tip_ids": [named["id"]], "purpose": "缓存头测试核查", "case_reference": "C-1"},
        headers={**token_for(everyone), "Idempotency-Key": str(uuid.uuid4())},
    ).json
    assert run_jobs(batch["id"]) == 1
    station = session.scalar(select(Station.id).limit(1))
    values = {
        "tip_id": named["id"],
        "request_id": named["id"],
        "token_id": named["id"],
        "user_id": str(resident.id),
        "media_id": photo,
        "batch_id": batch["id"],
        "name": "tips.csv",
        "area_id": str(area("110105001024").id),
        "station_id": str(station),
        "service_code": "environment_sanitation",
        "fmt": "json",
        "filename": "swagger-ui.css",
        "cell": "x",
        "path": "x",
        "token": "x",
    }
    return {
        "values": values,
        "follow": (anonymous["follow_code"], anonymous["follow_secret"]),
        "caller": lambda: token_for(everyone),
    }


def _path(rule, values, follow_code) -> str:
    arguments = {name: values.get(name, str(uuid.UUID(int=1))) for name in rule.arguments}
    if "code" in rule.arguments:
        arguments["code"] = follow_code if "follow" in rule.rule else "traffic"
    return rule.build(arguments, append_unknown=False)[1]


def test_every_route_says_nosniff_and_no_store_unless_it_names_nobody(app, client, world):
    code, secret = world["follow"]
    classes = declared(app)
    succeeded = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        path = _path(rule, world["values"], code)
        for method in sorted(rule.methods - IGNORED_METHODS):
            headers = {**world["caller"](), "X-Follow-Secret": secret}
            body = {} if method != "GET" else None
            query = {"purpose": "核查缓存头"} if rule.rule.endswith("/reporter") else None
            response = client.open(
                path, method=method, json=body, headers=headers, query_string=query
            )
            where = f"{method} {rule.rule} -> {response.status_code}"
            assert response.headers.get("X-Content-Type-Options") == "nosniff", where
            kind = classes[(method, rule.rule)]
            cache_control = response.headers.get("Cache-Control")
            if kind == PERSONAL:
                assert cache_control == "no-store", where
            else:
                if kind == STAFF_AGGREGATE:
                    assert cache_control == "private, no-cache", where
                text = response.get_data(as_text=True)
                assert [c for c in CANARIES if c in text] == [], where
            if response.status_code == 200:
                succeeded.add((method, rule.rule))
    assert MUST_SUCCEED - succeeded == set()


def test_errors_and_unknown_paths_say_nosniff_and_no_store(client):
    for response in (
        client.get("/no/such/path"),
        client.delete("/api/v1/me"),  # 405
        client.get("/api/v1/me"),  # 401
        client.post("/api/v1/auth/login", data="{", content_type="application/json"),
        client.get("/open311/v2/nothing.json"),
    ):
        assert response.status_code >= 400
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


def test_docs_and_public_data_say_nosniff_and_may_be_cached(client):
    for path in ("/api/docs", "/api/v1/openapi.json", "/api/v1/areas", "/api/v1/tip-categories"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" not in response.headers.get("Cache-Control", "")
