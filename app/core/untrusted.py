"""What a request may carry before any schema or view looks at it.

One place decodes JSON from clients, for everyone who reads it: the schema parser
(app/core/blueprint.py), `request.get_json` (rate-limit keys read the body before the view), and
uploads holding JSON (station imports). It answers 400 for a body that is not JSON we can work
with: invalid UTF-8 or syntax, `NaN`/`Infinity` (not JSON), or nesting deeper than `MAX_DEPTH`
(Python's decoder raises RecursionError at about 1,000 levels, and code walking a decoded
document recurses too). Integers too long for Python to convert (4,300 digits) become infinite
floats, which every number field refuses like 10**400: a value the field judges, not a broken
document (one check-in of a batch is rejected; the others are kept).

Text in a request (JSON strings and keys, query and form fields, upload file names) must not
hold NUL, which PostgreSQL cannot store, or lone surrogates ("\\ud800": not characters, no UTF-8
for them, and I-JSON, RFC 7493, forbids them). Either is a 422 naming each place, before anything
is stored; a query string must be UTF-8 (400). Lone surrogates can only come as JSON escapes:
werkzeug decodes URLs and forms with replacement characters. URL path variables are left to
their converters and views (an unknown code with a NUL is just unknown: 404).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, Request, current_app, request
from werkzeug.exceptions import BadRequest

from app.core.blueprint import QUERY_SCHEMAS_ATTR
from app.core.errors import InvalidValues
from app.core.i18n import _, _l

MAX_DEPTH = 32
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
BAD_TEXT_DETAIL = _l("Must not contain NUL characters or lone surrogates.")


class UnacceptableJSON(ValueError):
    """A body that is not JSON we accept (a ValueError, as `request.get_json` expects)."""


class TooDeep(UnacceptableJSON):
    def __init__(self) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")


class BadText(UnacceptableJSON):
    """Decoded JSON holding text we refuse, at these JSON pointers."""

    def __init__(self, pointers: list[str]):
        super().__init__(f"{BAD_TEXT_DETAIL} ({', '.join(pointers)})")
        self.pointers = pointers


def _refuse_constant(name: str) -> Any:
    raise UnacceptableJSON(f"{name} is not a JSON number")


def _integer(digits: str) -> int | float:
    try:
        return int(digits)
    except ValueError:  # longer than Python converts: out of every field's range anyway
        return float(digits)


def loads(data: str | bytes, *, check_text: bool = True) -> Any:
    """Decode a client's JSON document under the rules above (UnacceptableJSON otherwise).
    Without `check_text`, the caller looks for refused text itself (`refused_text`), e.g. to
    refuse one row of an import instead of the whole file."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        document = json.loads(text, parse_constant=_refuse_constant, parse_int=_integer)
    except UnicodeDecodeError as exc:
        raise UnacceptableJSON(f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except RecursionError as exc:
        raise TooDeep from exc
    bad = refused_text(document)
    if bad and check_text:
        raise BadText(bad)
    return document


def _pointer_part(key: str) -> str:
    """A key as a JSON pointer step (RFC 6901), lone surrogates spelled as escapes."""
    key = key.encode("utf-8", "backslashreplace").decode("utf-8")
    return key.replace("~", "~0").replace("/", "~1")


def refused_text(document: Any) -> list[str]:
    """JSON pointers to the strings (and object keys) of `document` holding refused text;
    TooDeep when nested deeper than MAX_DEPTH. Iterative: depth costs no stack."""
    bad: list[str] = []
    pending: list[tuple[Any, str, int]] = [(document, "", 0)]
    while pending:
        node, pointer, depth = pending.pop()
        if isinstance(node, str):
            if _BAD_TEXT.search(node):
                bad.append(pointer or "/")
            continue
        if not isinstance(node, dict | list):
            continue
        if depth == MAX_DEPTH:
            raise TooDeep
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{pointer}/{_pointer_part(key)}"
                if _BAD_TEXT.search(key):
                    bad.append(child)
                pending.append((value, child, depth + 1))
        else:
            pending.extend((value, f"{pointer}/{n}", depth + 1) for n, value in enumerate(node))
    return sorted(bad)


class _ClientJSON:
    """What werkzeug's `Request.get_json` decodes with (its `json_module`; only `loads`)."""

    loads = staticmethod(loads)


class QunfangRequest(Request):
    """Flask's request, decoding JSON bodies with `loads` and answering its errors as problems."""

    @property
    def json_module(self) -> type[_ClientJSON]:
        return _ClientJSON

    @json_module.setter
    def json_module(self, _provider: Any) -> None:
        """Flask hands every request the app's JSON provider; a client's body is decoded by
        `loads` all the same (the provider still writes our answers)."""

    def _load_form_data(self) -> None:
        """Forms are checked when first read (by a schema, or by a view such as Open311's),
        after the view's blueprint has set its body limit (photos may be larger). A refused
        form stays refused: every later read raises again (the first reader may have been a
        rate-limit key, which must not fail)."""
        if "form" not in self.__dict__:
            super()._load_form_data()
            form, files = self.__dict__["form"], self.__dict__["files"]
            self.__dict__["_refused_form"] = _refused_fields("form", form) + [
                ("files", "/" + _pointer_part(key), BAD_TEXT_DETAIL)
                for key, upload in files.items(multi=True)
                if upload.filename and _BAD_TEXT.search(upload.filename)
            ]
        if self.__dict__.get("_refused_form"):
            raise InvalidValues(self.__dict__["_refused_form"])

    @property
    def form(self) -> Any:
        self._load_form_data()
        return self.__dict__["form"]

    @property
    def files(self) -> Any:
        self._load_form_data()
        return self.__dict__["files"]

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, BadText):
            raise InvalidValues([("json", pointer, BAD_TEXT_DETAIL) for pointer in e.pointers])
        if isinstance(e, TooDeep):
            raise BadRequest(_("The request body is nested too deeply."))
        if e is not None:
            raise BadRequest(_("The request body is not valid JSON: %(e)s", e=e))
        return super().on_json_loading_failed(e)


def _refused_fields(location: str, fields: Any) -> list[tuple[str, str, str]]:
    """(location, pointer, detail) for each field of a MultiDict with refused text. A multipart
    part whose name werkzeug could not read comes with the name None: refused as well (it was
    a 500, found by schemathesis in some runs only)."""
    return [
        (location, "/" + _pointer_part(key or ""), BAD_TEXT_DETAIL)
        for key, values in fields.lists()
        if not isinstance(key, str)
        or _BAD_TEXT.search(key)
        or any(isinstance(value, str) and _BAD_TEXT.search(value) for value in values)
    ]


# (endpoint, method) -> the query parameters its view declares; None: not an API view.
def _declared_query(endpoint: str, method: str) -> frozenset[str] | None:
    """The names of the query parameters the view declares with `@blp.arguments(...,
    location="query")` (None for views that are not part of the API, such as the docs).
    Kept per application (two apps in one process may route an endpoint name differently)."""
    cache = current_app.extensions.setdefault("qunfang.declared_query", {})
    key = (endpoint, method)
    if key not in cache:
        view = current_app.view_functions[endpoint]
        view_class = getattr(view, "view_class", None)
        target = getattr(view_class, method.lower(), None) if view_class else view
        schemas = getattr(target, QUERY_SCHEMAS_ATTR, None)
        names: frozenset[str] | None = None
        if schemas is not None and not getattr(view_class, "query_read_by_view", False):
            declared = set()
            for schema in schemas:
                schema = schema() if isinstance(schema, type) else schema
                declared |= {f.data_key or name for name, f in schema.fields.items()}
            names = frozenset(declared)
        cache[key] = names
    return cache[key]


def _check_query() -> None:
    """Before any view: a UTF-8 query string without refused text, naming only parameters
    the view declares (a misspelt or unsupported filter answers 422 instead of being ignored,
    which would answer more than the client asked for)."""
    try:
        request.query_string.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(_("The query string is not UTF-8 (percent-encode it).")) from exc
    if bad := _refused_fields("query", request.args):
        raise InvalidValues(bad)
    if request.endpoint is None or not request.args:
        return
    method = "GET" if request.method == "HEAD" else request.method
    declared = _declared_query(request.endpoint, method)
    if declared is not None and (unknown := sorted(set(request.args) - declared)):
        raise InvalidValues(
            [("query", "/" + _pointer_part(name), _("Unknown field.")) for name in unknown]
        )


def init_untrusted_input(app: Flask) -> None:
    app.request_class = QunfangRequest
    app.before_request(_check_query)
