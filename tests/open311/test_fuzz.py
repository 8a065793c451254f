"""Property checks in the spirit of tests/test_schemathesis.py (which covers only our OpenAPI
document, where Open311 is not): whatever the query or form, no 5xx, the documented statuses,
the format of the suffix, Open311's error format, and schema-valid successes."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.open311.conftest import JIANWAI, parse_xml, schema_errors

BASE = "/open311/v2"
# Text a client could send: anything but lone surrogates, which no encoding can carry.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from([str(JIANWAI[0]), str(JIANWAI[1]), "", " ", "1e999", "-0"]),
)
DATES = st.one_of(
    TEXT,
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())).map(lambda d: d.isoformat()),
)
QUERY = st.fixed_dictionaries(
    {},
    optional={
        "service_request_id": TEXT,
        "service_code": st.one_of(TEXT, st.sampled_from(["traffic", "theft,traffic"])),
        "status": st.one_of(TEXT, st.sampled_from(["open", "closed", "open,closed"])),
        "start_date": DATES,
        "end_date": DATES,
        "jurisdiction_id": TEXT,
    },
)
FORM = st.fixed_dictionaries(
    {},
    optional={
        "service_code": st.one_of(TEXT, st.sampled_from(["traffic", "theft"])),
        "lat": NUMBERS,
        "long": NUMBERS,
        "address_string": TEXT,
        "description": TEXT,
        "media_url": TEXT,
        "email": TEXT,
        "attribute[WHAT]": TEXT,
    },
)
READS = st.sampled_from(
    [
        "requests",
        "services",
        "discovery",
        "services/traffic",
        "services/{text}",
        "requests/{text}",
        "tokens/{text}",
    ]
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def check(response, fmt: str, success_schema: str | None, statuses: set[int]) -> None:
    assert response.status_code in statuses, response.get_data(as_text=True)
    if fmt == "xml":
        assert response.mimetype == "text/xml"
        root = parse_xml(response.data)
        if response.status_code >= 400:
            assert root.tag == "errors"
            assert [e.findtext("code") for e in root] == [str(response.status_code)]
        return
    assert response.mimetype == "application/json"
    body = response.get_json()
    if response.status_code >= 400:
        assert body == [{"code": response.status_code, "description": body[0]["description"]}]
    elif success_schema:
        assert schema_errors(success_schema, body) == []


@FUZZ
@given(
    path=READS,
    fmt=st.sampled_from(["json", "xml"]),
    text=TEXT.filter(str.strip),
    query=QUERY,
)
def test_reads_answer_documented_statuses_in_the_asked_format(client, path, fmt, text, query):
    path = path.format(text=quote(text, safe=""))
    response = client.get(f"{BASE}/{path}.{fmt}", query_string=query)
    schemas = {"requests": "requests.json", "services": "services.json"}
    schema = schemas.get(path) or ("service-definition.json" if path.startswith("serv") else None)
    check(response, fmt, schema, {200, 400, 404})


@FUZZ
@given(fmt=st.sampled_from(["json", "xml"]), form=FORM, multipart=st.booleans())
def test_writes_answer_200_or_400_in_the_asked_format(
    client, api_key, monkeypatch, fmt, form, multipart
):
    # One key sends every example: its rate limit is not what this checks.
    monkeypatch.setitem(client.application.config, "OPEN311_RATE_LIMIT", "100000 per minute")
    response = client.post(
        f"{BASE}/requests.{fmt}",
        data={"api_key": api_key, **form},
        content_type="multipart/form-data" if multipart else None,
    )
    check(response, fmt, None, {200, 400})
