"""app/core/fastjson.py: the one way the hot lists answer without marshmallow."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from app.core import fastjson

WHEN = dt.datetime(2026, 11, 20, 1, 2, 3, 450000, tzinfo=dt.UTC)


def test_values_are_written_as_the_schemas_dump_them():
    ident = uuid.uuid4()
    body = fastjson.dumps({"id": ident, "at": WHEN, "whole": WHEN.replace(microsecond=0)})
    assert json.loads(body) == {
        "id": str(ident),
        "at": WHEN.isoformat(),
        "whole": WHEN.replace(microsecond=0).isoformat(),
    }


def test_json_text_from_the_database_goes_in_as_it_is():
    body = fastjson.dumps({"hours": fastjson.raw('{"mon": [["08:00", "20:00"]]}')})
    assert json.loads(body) == {"hours": {"mon": [["08:00", "20:00"]]}}


def test_datetimes_are_rfc_3339_lenient_or_not():
    """Issue 15: the grid wrote `str()` datetimes (a space for the `T`), which strict RFC 3339
    parsers (java.time.OffsetDateTime, Swift's ISO8601DateFormatter) refuse."""
    for lenient in (False, True):
        written = json.loads(fastjson.dumps({"at": WHEN}, lenient=lenient))["at"]
        assert written == WHEN.isoformat() and "T" in written and written[-6] in "+-"


def test_the_answer_is_utf8_with_chinese_as_it_is(app):
    with app.test_request_context():
        response = fastjson.answer({"name": "骑手驿站"}, mimetype="application/geo+json")
    assert response.mimetype == "application/geo+json"
    assert response.get_data() == '{"name":"骑手驿站"}'.encode()


def test_a_content_etag_makes_the_answer_conditional(app):
    with app.test_request_context():
        first = fastjson.answer({"n": 1}, content_etag=True)
    etag = first.headers["ETag"]
    with app.test_request_context(headers={"If-None-Match": etag}):
        again = fastjson.answer({"n": 1}, content_etag=True)
    assert again.status_code == 304  # werkzeug leaves the body out when it sends a 304
    with app.test_request_context(headers={"If-None-Match": etag}):
        changed = fastjson.answer({"n": 2}, content_etag=True)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
