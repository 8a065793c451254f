"""What no request may carry (app/core/untrusted.py): deep nesting, text PostgreSQL or UTF-8
cannot hold, numbers too long to convert; also where requests bypass the schema parser
(rate-limit keys reading the body, Open311's forms, uploads, headers, raw query strings)."""

from __future__ import annotations

import io
import json
import uuid

import pytest

from app.core.errors import handle_unexpected, problem
from tests.core.test_errors import assert_problem
from tests.tips.conftest import tip_body

DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"phone": ' * 33 + '"13800138000"' + "}" * 33
BAD_TEXTS = ("a\ud800b", "a\x00b", "\udfff")
_DETAIL = "Must not contain NUL characters or lone surrogates."


def post_json(client, path, text, headers=None):
    return client.post(path, data=text, content_type="application/json", headers=headers or {})


def test_deep_json_is_a_400_before_a_token_is_needed(client, token_for, ledger):
    """Issue 14: RecursionError (a 500) on POST /tips and POST /auth/login, without a token:
    the rate-limit keys read the body before the view does."""
    volunteer = token_for("volunteer")
    ledger.mark()
    for body in (DEEP_ARRAY, DEEP_OBJECT):
        for path, headers in (
            ("/api/v1/auth/login", {}),
            ("/api/v1/tips", {}),
            ("/api/v1/tips", volunteer),  # the anonymity check reads the body
        ):
            response = post_json(client, path, body, headers)
            assert (
                assert_problem(response, 400)["detail"] == "The request body is nested too deeply."
            )
    assert ledger.changes() == []


def test_nesting_is_limited_to_32_levels(probe_client, token_for):
    def nested(levels: int) -> str:  # the body's object and `levels` - 1 arrays in it
        return '{"name": "x", "items": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"

    headers = token_for("volunteer")
    at_the_limit = post_json(probe_client, "/api/v1/probe/writes", nested(32), headers)
    assert assert_problem(at_the_limit, 422)["errors"][0]["pointer"].startswith("/items/0")
    beyond = post_json(probe_client, "/api/v1/probe/writes", nested(33), headers)
    assert assert_problem(beyond, 400)["detail"] == "The request body is nested too deeply."


def test_lone_surrogates_and_nul_are_a_422_naming_the_field(client, token_for, create_user, ledger):
    """Issue 14: a lone surrogate in a tip's description or address, a note, or `skills` was a
    UnicodeEncodeError (500). Any text, anywhere in a JSON body, keys too."""
    staff = token_for("grid_staff")
    volunteer = token_for(create_user())
    ledger.mark()
    cases = [
        (
            "/api/v1/tips",
            {"Idempotency-Key": str(uuid.uuid4())},
            {"description": "x"},
            "/description",
        ),
        ("/api/v1/tips", {}, {"address_text": "建外"}, "/address_text"),
        (
            "/api/v1/tips",
            volunteer,
            {"location": {"coord_system": "wgs84"}},
            "/location/coord_system",
        ),
        ("/api/v1/tips", {}, {"media_ids": ["x"]}, "/media_ids/0"),
    ]
    for n, (path, headers, template, pointer) in enumerate(cases):
        bad = BAD_TEXTS[n % len(BAD_TEXTS)]
        body = tip_body()
        for key, value in template.items():
            body[key] = _with_bad_text(value, bad)
        response = post_json(client, path, json.dumps(body), headers)
        problem_body = assert_problem(response, 422)
        assert problem_body["errors"] == [
            {"location": "json", "pointer": pointer, "detail": _DETAIL}
        ], problem_body
    for bad in BAD_TEXTS:
        note = {"note": f"看过了{bad}", "public": False}
        tip_id = uuid.uuid4()
        response = post_json(client, f"/api/v1/tips/{tip_id}/notes", json.dumps(note), staff)
        assert assert_problem(response, 422)["errors"][0]["pointer"] == "/note"
        me = {"skills": ["first_aid", bad]}
        response = client.patch(
            "/api/v1/me", data=json.dumps(me), content_type="application/json", headers=volunteer
        )
        assert assert_problem(response, 422)["errors"][0]["pointer"] == "/skills/1"
    key = post_json(client, "/api/v1/auth/login", '{"\\ud800": 1, "phone": "1"}')
    assert assert_problem(key, 422)["errors"][0]["pointer"] == "/\\ud800"
    assert ledger.changes() == []


def _with_bad_text(value, bad):
    if isinstance(value, dict):
        return {k: _with_bad_text(v, bad) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_bad_text(v, bad) for v in value]
    return value + bad


def test_numbers_too_long_to_convert_are_refused_by_their_field(client, token_for, ledger):
    ledger.mark()
    body = json.dumps(tip_body()).replace("116.45536", "1" * 5000)
    response = post_json(client, "/api/v1/tips", body, {"Idempotency-Key": str(uuid.uuid4())})
    assert assert_problem(response, 422)["errors"][0]["pointer"] == "/location/lon"
    response = post_json(client, "/api/v1/tips", json.dumps(tip_body()).replace("8}", "NaN}"))
    assert "NaN is not a JSON number" in assert_problem(response, 400)["detail"]
    assert ledger.changes() == []


def test_the_query_string_is_checked_before_any_view(client, token_for, ledger):
    staff, volunteer = token_for("admin"), token_for("volunteer")
    ledger.mark()
    response = client.get("/api/v1/tips", query_string={"q": "a\x00b"}, headers=staff)
    assert assert_problem(response, 422)["errors"] == [
        {"location": "query", "pointer": "/q", "detail": _DETAIL}
    ]
    # URL variables are their converters' and views' business: no 500 either way.
    response = client.delete("/api/v1/devices/abc%00def", headers=volunteer)
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/problem+json"
    # A raw (not percent-encoded) byte that is not UTF-8: idempotency used to decode it (500).
    raw = client.post(
        "/api/v1/tips",
        data=json.dumps(tip_body()),
        content_type="application/json",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        environ_overrides={"QUERY_STRING": "x=\xed\xa0\x80"},
    )
    assert "not UTF-8" in assert_problem(raw, 400)["detail"]
    assert ledger.changes() == []


def test_headers_the_schemas_never_see_are_refused_cleanly(client, ledger):
    for key in ("ключ-идемпотентности", "a" * 7, "x" * 300):
        response = client.post(
            "/api/v1/tips",
            json=tip_body(),
            headers={"Idempotency-Key": key.encode().decode("latin-1")},
        )
        assert assert_problem(response, 422)["detail"].startswith("Idempotency-Key")
    follow = client.get(
        "/api/v1/tips/follow/ABCDEFGH23",
        headers={"X-Follow-Secret": "秘密".encode().decode("latin-1")},
    )
    assert_problem(follow, 404)
    assert ledger.changes() == []


def test_open311_forms_with_refused_text_are_an_open311_400(client, ledger):
    """Open311 reads its form itself; the check before every view covers it too."""
    for bad in ("a\x00b", "%00"):
        response = client.post(
            "/open311/v2/requests.json",
            data=f"service_code=theft&description=x{bad}y&lat=39.9&long=116.4",
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 400, response.get_data(as_text=True)
        (error,) = response.get_json()
        assert error["description"].startswith("description (form): Must not contain NUL")
    assert ledger.changes() == []


def test_upload_file_names_with_nul_are_refused(client, token_for, ledger):
    admin = token_for("admin")
    ledger.mark()
    response = client.post(
        "/api/v1/stations/import",
        data={"file": (io.BytesIO(b"x"), "a\x00.csv")},
        content_type="multipart/form-data",
        headers=admin,
    )
    assert assert_problem(response, 422)["errors"][0]["location"] == "files"
    assert ledger.changes() == []


def test_a_station_import_refuses_rows_with_refused_text_alone(client, token_for, connection):
    hours = {"mon": [["09:00", "18:00"]]}

    def feature(ref, name, hours_value=hours):
        return {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [116.45536, 39.90968]},
            "properties": {
                "external_ref": ref,
                "name": name,
                "type": "rider_station",
                "opening_hours": hours_value,
            },
        }

    document = {
        "type": "FeatureCollection",
        "features": [
            feature("hostile-1", "驿站\ud800"),
            feature("hostile-2", "驿站\x00"),
            feature("hostile-3", "驿站", {"mon\ud800": [["09:00", "18:00"]]}),
            feature("hostile-4", "建外驿站"),
        ],
    }
    response = client.post(
        "/api/v1/stations/import",
        data={"file": (io.BytesIO(json.dumps(document).encode()), "stations.geojson")},
        content_type="multipart/form-data",
        headers=token_for("admin"),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert report["created"] == 1
    assert [e["row"] for e in report["errors"]] == [0, 1, 2]
    assert all(_DETAIL in e["detail"] for e in report["errors"])


def test_text_with_a_lone_surrogate_that_reaches_the_database_is_a_422(app):
    """The fallback when such text comes by a way the checks above do not guard."""
    with pytest.raises(UnicodeEncodeError) as raised:
        "\ud800".encode("utf-8")
    with app.test_request_context():
        answer = handle_unexpected(raised.value)
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"


def test_a_problem_echoing_a_lone_surrogate_is_still_an_answer(app):
    with app.test_request_context():
        answer = problem(422, detail="bad key \ud800")
    assert answer.status_code == 422
    assert json.loads(answer.get_data())["detail"] == "bad key ?"
