"""A standing hostile-input suite: the classes of input that once answered 500 or stored what
could not be read back (issue 14), replayed against every operation of /api/v1/openapi.json.

Each value is put, one at a time, into a plausible request for the operation (tests/
openapi_cases.py), sent by a user holding every role (so that requests reach parsing and the
views), and must never answer 500; where the value is refused, the answer is a problem+json 4xx
naming the field, and the database is unchanged (tests/ledger.py). The classes: extreme and
naive date-times, lone surrogates and NUL in any text, huge numbers, deep nesting. On top of
that, schemathesis' own cases (fitting the document) with one value swapped for a hostile one
(`HOSTILE`): never a 5xx, and text no request may carry is a 422 wherever it is put.

New operations and fields are picked up from the document. Check-in batches (their items are
judged one by one), uploads and Open311 (not in the document) are covered in their packages'
tests and in tests/core/test_untrusted_input.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from app.core.auth import ROLES
from tests.openapi_cases import JSON, Operation, Spec, with_value

PROBLEM = "application/problem+json"
# Answers refusing the input itself: they must leave the database as it was.
REFUSALS = (400, 413, 415, 422)
POISON_DATE_TIMES = (
    "0001-01-01T00:00:00+14:00",  # 1 BC in UTC
    "9999-12-31T23:59:59-14:00",  # the year 10000 in UTC
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59+14:00",
)
POISON_DATES = ("0001-01-01", "9999-12-31")
BAD_TEXTS = ("a\ud800b", "a\x00b")
_SURROGATES = re.compile("[\ud800-\udfff]")
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
HUGE = 10**400
HOSTILE = st.one_of(
    st.sampled_from(POISON_DATE_TIMES + POISON_DATES + BAD_TEXTS),
    # Lone surrogates only: a high one followed by a low one is a pair, which JSON decodes to a
    # real character (U+10000 and up), so they are kept apart.
    st.lists(st.characters(categories=["Cs"]), min_size=1, max_size=3).map("x".join),
    st.sampled_from([HUGE, -HUGE, 2**63, -(2**63) - 1, 1e308, 5e-324]),
    st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)).map(dt.datetime.isoformat),
    st.integers(1, 40).map(lambda depth: json.loads("[" * depth + "]" * depth)),
)


@pytest.fixture(scope="module")
def spec(app) -> Spec:
    return Spec(app.test_client().get("/api/v1/openapi.json").get_json())


@pytest.fixture
def omnipotent(create_user):
    """An account holding every role (admin: every area)."""
    return create_user(roles=list(ROLES))


@pytest.fixture
def every_role(omnipotent, token_for):
    """Bearer headers of a session of `omnipotent`."""
    return token_for(omnipotent)


class Sender:
    """Sends requests as `every_role`, collecting what went wrong instead of stopping at it."""

    def __init__(self, client, headers, ledger):
        self.client, self.headers, self.ledger = client, headers, ledger
        self.failures: list[str] = []

    def send(self, operation: Operation, request: dict, *, raw: str | None = None, signed_in=True):
        self.ledger.mark()
        headers = {**(self.headers if signed_in else {}), **request["headers"]}
        kwargs = {"query_string": request["query"], "headers": headers}
        if raw is not None:
            kwargs.update(data=raw, content_type=JSON)
        elif request["body"] is not None:
            kwargs.update(data=json.dumps(request["body"]), content_type=JSON)
        return self.client.open(request["path"], method=operation.method.upper(), **kwargs)

    def refused(self, label: str, response, expected: tuple[int, ...], naming=None) -> None:
        """The answer is one of the `expected` problems (naming `(location, pointer)` among
        its errors, when given) and nothing was written."""
        body = response.get_json(silent=True) or {}
        if response.status_code not in expected or response.mimetype != PROBLEM:
            self.failures.append(f"{label}: {response.status_code} {body}")
        elif naming and not any(
            (e.get("location"), e.get("pointer")) == naming for e in body.get("errors", [])
        ):
            self.failures.append(f"{label}: {naming} not among {body.get('errors')}")
        self.unchanged(label, response)

    def survived(self, label: str, response) -> None:
        """No 5xx; a refusal is a problem that wrote nothing."""
        if response.status_code >= 500:
            self.failures.append(f"{label}: {response.status_code}")
        elif response.status_code >= 400:
            if response.mimetype != PROBLEM:
                self.failures.append(f"{label}: {response.status_code} {response.mimetype}")
            self.unchanged(label, response)

    def unchanged(self, label: str, response) -> None:
        if response.status_code not in REFUSALS:
            return  # a 401 for a failed login is audited, for one
        if changes := self.ledger.changes():
            self.failures.append(f"{label}: answered {response.status_code}, wrote {changes}")


@pytest.fixture
def sender(client, every_role, ledger):
    return Sender(client, every_role, ledger)


def _operations(spec: Spec) -> list[Operation]:
    return [op for op in spec.operations() if op.path.startswith("/api/")]


def _place(request: dict, leaf, value) -> dict:
    """`request` with `value` at the place of `leaf`."""
    if leaf.location == "json":
        return {**request, "body": with_value(request["body"], leaf.path, value)}
    if leaf.location == "query":
        return {**request, "query": {**request["query"], leaf.path[0]: value}}
    raise ValueError(leaf.location)


def _is(leaf, *kinds: str) -> bool:
    return leaf.location in ("json", "query") and (leaf.format in kinds or leaf.type in kinds)


def test_poison_dates_are_refused_everywhere(spec, sender):
    """Every date-time and date of the document, in bodies and queries: the year 1 and 9999,
    with offsets of ±14:00, and naive times, are a 422 naming the field, storing nothing."""
    naive = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0).isoformat()
    tried = 0
    for operation in _operations(spec):
        request = spec.request(operation)
        for leaf in operation.leaves:
            if _is(leaf, "date-time"):
                values = (*POISON_DATE_TIMES, naive)
            elif _is(leaf, "date"):
                values = POISON_DATES
            else:
                continue
            for value in values:
                response = sender.send(operation, _place(request, leaf, value))
                label = f"{operation.label} {leaf.location} {leaf.pointer} = {value}"
                sender.refused(label, response, (422,), naming=(leaf.location, leaf.pointer))
                tried += 1
    assert tried >= 150, tried  # the 34 fields and parameters of issue 14, and more since
    assert sender.failures == []


def test_nul_and_lone_surrogates_are_refused_in_every_text(spec, sender):
    """Every string of every JSON body and query: a 422 naming it, storing nothing. URL
    variables with a NUL: no 5xx."""
    tried = 0
    for operation in _operations(spec):
        request = spec.request(operation)
        for n, leaf in enumerate(operation.leaves):
            listed = leaf.location == "query" and leaf.type == "array"  # ?status=a&status=b
            if leaf.location not in ("json", "query", "path"):
                continue
            if not (leaf.type == "string" or listed):
                continue
            value = BAD_TEXTS[n % 2]
            if leaf.location == "path":
                if leaf.format != "uuid":  # uuid: the URL converter answers 404 first
                    hostile = spec.request(operation, path_values={leaf.path[0]: "a\x00b"})
                    label = f"{operation.label} path {leaf.pointer} with NUL"
                    sender.survived(label, sender.send(operation, hostile))
                continue
            if leaf.location == "query":
                value = "a\x00b"  # a URL cannot carry a lone surrogate
            hostile = _place(request, leaf, value)
            response = sender.send(operation, hostile)
            label = f"{operation.label} {leaf.location} {leaf.pointer} = {value!r}"
            sender.refused(label, response, (422,), naming=(leaf.location, leaf.pointer))
            tried += 1
        if operation.body_type == JSON and isinstance(request["body"], dict):
            hostile = {**request, "body": {**request["body"], "\ud800": 1}}
            response = sender.send(operation, hostile)
            sender.refused(f"{operation.label} key", response, (422,), ("json", "/\\ud800"))
    assert tried >= 200, tried
    assert sender.failures == []


def test_an_undeclared_query_parameter_is_refused_everywhere(spec, sender):
    """A misspelt or unsupported filter (`/areas?cod=...`) is a 422 naming it, not ignored:
    ignoring it would answer more than the client asked for. Every operation of the document."""
    tried = 0
    for operation in _operations(spec):
        request = spec.request(operation)
        hostile = {**request, "query": {**request["query"], "nonsense_filter": "1"}}
        response = sender.send(operation, hostile)
        label = f"{operation.label} query nonsense_filter"
        sender.refused(label, response, (422,), naming=("query", "/nonsense_filter"))
        tried += 1
    assert tried >= 80, tried
    assert sender.failures == []


def test_huge_numbers_never_fail_a_request(spec, sender):
    """Every number of every body and query as 10**400 (a JSON integer, or a query text):
    never a 5xx; where refused, a problem that stored nothing."""
    tried = 0
    for operation in _operations(spec):
        request = spec.request(operation)
        for leaf in operation.leaves:
            if not _is(leaf, "integer", "number"):
                continue
            for value in (HUGE, -HUGE):
                placed = value if leaf.location == "json" else str(value)
                response = sender.send(operation, _place(request, leaf, placed))
                label = f"{operation.label} {leaf.pointer} = {'-' if value < 0 else ''}10**400"
                sender.survived(label, response)
                tried += 1
    assert tried >= 80, tried
    assert sender.failures == []


def test_deep_nesting_is_a_400_for_every_json_body(spec, sender):
    """Nesting beyond Python's recursion limit, or beyond ours (32 levels): 400, nothing
    stored, before any token is looked at (anonymous requests too)."""
    bodies = ("[" * 100_000 + "]" * 100_000, '{"a": ' * 33 + "1" + "}" * 33)
    tried = 0
    for operation in _operations(spec):
        if operation.body_type != JSON:
            continue
        request = spec.request(operation)
        for raw in bodies:
            for signed_in in (True, False):
                response = sender.send(operation, request, raw=raw, signed_in=signed_in)
                label = f"{operation.label} {len(raw)} bytes {'signed in' if signed_in else ''}"
                # Without a token, a secured operation answers 401 before reading the body.
                expected = (400, 401) if operation.secured and not signed_in else (400,)
                sender.refused(label, response, expected)
                tried += 1
    assert tried >= 120, tried  # 33 operations take JSON today
    assert sender.failures == []


# -- schemathesis' cases, one value swapped for a hostile one -----------------------------------


@pytest.fixture
def api_schema(app, connection):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # Generated cases only: the document's examples cannot take the extra hypothesis data.
    schema.config.phases.update(phases=["fuzzing"])
    # Cases that fit the document, so that the one hostile value is what gets refused (or not).
    schema.config.generation.update(modes=["positive"])
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


def _swap(document, draw_index, value):
    """`document` (a decoded JSON value) with one of its values, chosen by `draw_index`,
    replaced by `value`; the document itself when it holds no value."""
    places = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, sub in node.items():
                walk(sub, (*path, key))
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, (*path, index))
        if path:
            places.append(path)

    walk(document, ())
    if not places:
        return value
    return with_value(document, places[draw_index(len(places))], value)


@schema.given(data=st.data())
@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_cases_with_a_hostile_value_never_fail(
    case, data, client, omnipotent, token_for, ledger
):
    """Whatever schemathesis makes of an operation, with one value swapped for a hostile one:
    never a 5xx, and a refusal is a problem+json that stored nothing."""
    value = data.draw(HOSTILE, label="hostile value")

    def index(size: int) -> int:
        return data.draw(st.integers(0, size - 1), label="place")

    multipart = case.body is not None and case.media_type != JSON
    # Text no request may carry, put where the parser reads it: refused whatever the rest is.
    refused_text = isinstance(value, str) and bool(_BAD_TEXT.search(value)) and not multipart
    if multipart:  # uploads and forms: text only, and encodable
        value = value if isinstance(value, str) else json.dumps(value)
        case.body = _swap(case.body, index, _SURROGATES.sub("\x00", value))
    elif case.body is not None:
        case.body = _swap(case.body, index, value)
    elif case.query:
        name = data.draw(st.sampled_from(sorted(case.query)), label="parameter")
        case.query = {**case.query, name: value if isinstance(value, str) else json.dumps(value)}
    else:
        refused_text = False  # nothing to put it in
    # A session of its own: a generated logout or password change may end the previous one.
    every_role = token_for(omnipotent)
    ledger.mark()
    if multipart:
        answer = case.call(headers=every_role)
        status, kind = answer.status_code, answer.headers.get("content-type", [""])[0]
        text = answer.content[:300].decode(errors="replace")
    else:
        # The test client sends JSON with escapes, and the query as bytes a client could send
        # (a surrogate as %ED%A0%80): schemathesis' transport cannot encode lone surrogates.
        body = {} if case.body is None else {"data": json.dumps(case.body), "content_type": JSON}
        answer = client.open(
            case.formatted_path,
            method=case.method,
            query_string=urlencode(case.query or {}, doseq=True, errors="surrogatepass"),
            headers={**(case.headers or {}), **every_role},
            **body,
        )
        status, kind = answer.status_code, answer.mimetype
        text = answer.get_data(as_text=True)[:300]
    assert status < 500, (case.method, case.formatted_path, text)
    if refused_text:
        assert status == 422, (case.method, case.formatted_path, text)
    if status >= 400:
        assert kind.startswith(PROBLEM), text
    if status in REFUSALS:
        assert ledger.changes() == []
