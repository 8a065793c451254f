"""Open311 GeoReport v2 under /open311/v2: discovery, services, service requests and tokens,
each as `.json` or `.xml` (the format is the path's suffix).

This blueprint is registered with Flask, not with our OpenAPI `Api`: Open311 clients learn the
interface from its own specification and from discovery.json, and it follows Open311's
conventions instead of ours (format suffixes, form-encoded writes authorised by an `api_key`,
errors as `[{"code", "description"}]` or `<errors>` instead of problem+json), which our document
would misdescribe. Every view still declares its access and runs inside our transaction
boundary (one commit when the answer is below 400).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, ClassVar

from flask import Response, current_app, request, url_for
from flask.views import MethodView
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from app.core.blueprint import Blueprint
from app.core.caching import public_data
from app.core.errors import handle_unexpected
from app.core.fields import HORIZON, BoundedDateTime, PlainText
from app.core.i18n import _
from app.extensions import db, limiter
from app.open311 import service
from app.open311.xml import document

blp = Blueprint("open311", __name__, url_prefix="/open311/v2")

FORMAT = "<any(json, xml):fmt>"
MIMETYPES = {"json": "application/json", "xml": "text/xml"}
# Per client app, for all of its users together: generous. OPEN311_RATE_LIMIT overrides it.


# -- parsing -------------------------------------------------------------------------------------


def _no_nul(value: str) -> None:
    if "\x00" in value:
        raise ValidationError(_("Must not contain NUL characters."))


class CommaSeparated(fields.Field):
    """`a,b,c` (GeoReport v2's lists) as a list of the non-blank parts."""

    def _deserialize(self, value, attr, data, **kwargs):
        return [part.strip() for part in str(value).split(",") if part.strip()]


class Timestamp(BoundedDateTime):
    """An ISO 8601 date-time (or date); without an offset it is UTC. Bounded as our own
    query periods are (app/core/fields.py)."""

    default_error_messages: ClassVar[dict[str, str]] = {
        **BoundedDateTime.default_error_messages,
        "invalid": "Not an ISO 8601 date-time, e.g. 2026-11-01T00:00:00+08:00.",
    }

    def __init__(self, **kwargs: Any):
        super().__init__(latest=HORIZON, default_timezone=dt.UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(str(value).strip(), attr, data, **kwargs)


class _Fields(Schema):
    class Meta:
        # Clients send fields we do not use (jurisdiction_id, address_id, attribute[...]).
        unknown = EXCLUDE


class RequestCreateSchema(_Fields):
    service_code = fields.String(required=True, validate=_no_nul)
    lat = fields.Float(validate=validate.Range(-90, 90))
    long = fields.Float(validate=validate.Range(-180, 180))
    address_string = PlainText(validate=[validate.Length(max=300), _no_nul])
    description = PlainText(required=True, validate=[validate.Length(max=4000), _no_nul])

    @validates_schema
    def _place(self, data, **_kwargs):
        if ("lat" in data) != ("long" in data):
            missing = "long" if "lat" in data else "lat"
            raise ValidationError(_("Missing: lat and long go together."), missing)
        if "lat" not in data and "address_string" not in data:
            raise ValidationError(_("Give lat and long, or address_string, or both."), "lat/long")


class RequestListArgsSchema(_Fields):
    service_request_id = CommaSeparated()
    service_code = CommaSeparated()
    status = CommaSeparated(validate=validate.ContainsOnly(("open", "closed")))
    start_date = Timestamp()
    end_date = Timestamp()


def _load(schema: Schema, values: dict[str, str]) -> dict[str, Any]:
    try:
        return schema.load(values)
    except ValidationError as exc:
        problems = [
            f"{field}: {message}"
            for field, messages in sorted(exc.normalized_messages().items())
            for message in (messages if isinstance(messages, list) else [messages])
        ]
        raise service.BadRequest("; ".join(problems)) from exc


def _form_values() -> dict[str, str]:
    """The first value of each form field; clients send unused fields empty: they are absent."""
    return {key: value for key, value in request.form.items() if value.strip()}


def _query_values() -> dict[str, str]:
    """Query parameters; one given several times (as `status` may be) joins them with commas."""
    joined = {key: ",".join(values) for key, values in request.args.lists()}
    return {key: value for key, value in joined.items() if value.strip()}


# -- answering -----------------------------------------------------------------------------------


def _answer(fmt: str, root: str, content: Any, status: int = 200) -> Response:
    """The same content as JSON, or as XML under the `root` element."""
    if fmt == "xml":
        body = document(root, content)
    else:
        body = json.dumps(content, ensure_ascii=False).encode()
    return current_app.response_class(body, status=status, mimetype=MIMETYPES[fmt])


def _requested_format() -> str:
    fmt = (request.view_args or {}).get("fmt")
    if fmt in MIMETYPES:
        return fmt
    return "xml" if request.path.endswith(".xml") else "json"


@blp.errorhandler(Exception)
def _as_open311_error(error: Exception) -> Response:
    """Every error of these routes in Open311's format, with the status and description that
    our problem+json handlers decide (and log); validation errors are Open311's 400."""
    problem = handle_unexpected(error)
    body = json.loads(problem.get_data())
    status = 400 if body["status"] == 422 else body["status"]
    errors = [{"code": status, "description": body.get("detail") or body["title"]}]
    response = _answer(_requested_format(), "errors", errors, status)
    for header in ("Allow", "Retry-After"):
        if header in problem.headers:
            response.headers[header] = problem.headers[header]
    return response


# -- the rate limit of writes --------------------------------------------------------------------


def _client_rate_limit() -> str:
    return current_app.config["OPEN311_RATE_LIMIT"]


def _client_bucket() -> str:
    """One bucket per api_key presented (a digest of it, so the limiter never holds a key)."""
    key = request.form.get("api_key", "")
    return "open311:" + hashlib.sha256(key.encode()).hexdigest()[:32]


# -- views ---------------------------------------------------------------------------------------


class _View(MethodView):
    # OPTIONS goes to `elsewhere`, which knows every method of the path (Flask's automatic
    # answer would also list the methods `elsewhere` catches to answer them 405).
    provide_automatic_options = False
    # GeoReport v2 clients send parameters we do not use (jurisdiction_id, api_key on reads):
    # the views read the query themselves, ignoring those (app/core/untrusted.py).
    query_read_by_view = True


@blp.route(f"/discovery.{FORMAT}")
class Discovery(_View):
    @blp.public
    @public_data
    def get(self, fmt):
        """Where this endpoint is, its formats, and whom to ask for an api_key."""
        url = url_for("open311.Discovery", fmt=fmt, _external=True).rpartition("/")[0]
        return _answer(fmt, "discovery", service.discovery(url))


@blp.route(f"/services.{FORMAT}")
class Services(_View):
    @blp.public
    @public_data
    def get(self, fmt):
        """Service types: our active tip categories."""
        return _answer(fmt, "services", service.services(db.session))


@blp.route(f"/services/<string:service_code>.{FORMAT}")
class ServiceDefinition(_View):
    @blp.public
    @public_data
    def get(self, service_code, fmt):
        """A service type's extra attributes (none: every service takes the standard fields)."""
        definition = service.service_definition(db.session, service_code)
        return _answer(fmt, "service_definition", definition)


@blp.route(f"/requests.{FORMAT}")
class Requests(_View):
    decorators = (limiter.limit(_client_rate_limit, key_func=_client_bucket, methods=["POST"]),)

    @blp.public
    @public_data
    def get(self, fmt):
        """Published requests (public categories only, positions to ~100 m, no reporter data):
        `service_request_id` (comma-separated; overrides the rest), `service_code`, `status`
        (open, closed), `start_date`/`end_date` (at most 90 days; the last 90 by default)."""
        args = _load(RequestListArgsSchema(), _query_values())
        requests = service.public_requests(
            db.session,
            ids=args.get("service_request_id"),
            service_codes=args.get("service_code"),
            statuses=args.get("status"),
            start=args.get("start_date"),
            end=args.get("end_date"),
        )
        return _answer(fmt, "service_requests", requests)

    @blp.public
    def post(self, fmt):
        """Report something, as a client app holding an `api_key` (a form field; the view
        checks it): service_code, description, lat + long (WGS-84) and/or address_string.

        The report is always an anonymous tip: contact fields are accepted and dropped, and
        media_url is ignored (we do not fetch remote files).
        """
        service.client_for_key(db.session, request.form.get("api_key"))
        sent = _form_values()
        values = _load(RequestCreateSchema(), sent)
        answer = service.submit(
            db.session,
            values,
            contact_sent=any(name in sent for name in service.CONTACT_FIELDS),
            media_sent="media_url" in sent,
        )
        return _answer(fmt, "service_requests", [answer])


@blp.route(f"/requests/<string:request_id>.{FORMAT}")
class RequestById(_View):
    @blp.public
    @public_data
    def get(self, request_id, fmt):
        """One published request, as a one-element list."""
        return _answer(fmt, "service_requests", [service.public_request(db.session, request_id)])


@blp.route(f"/tokens/<string:token_id>.{FORMAT}")
class Token(_View):
    @blp.public
    @public_data
    def get(self, token_id, fmt):
        """The request a token stands for (our tokens are the request ids themselves)."""
        return _answer(fmt, "service_requests", [service.token(db.session, token_id)])


def _allowed_methods() -> list[str]:
    """The methods the views of this path take (empty: no view has this path)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST"):
        try:
            endpoint, _args = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != request.endpoint:
            allowed += ["GET", "HEAD"] if method == "GET" else [method]
    return [*allowed, "OPTIONS"] if allowed else []


@blp.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@blp.public
def elsewhere(path):
    """Anything else under /open311/v2, answered the Open311 way: OPTIONS lists a path's
    methods, another method of a known path is a 405, an unknown path (or format) a 404."""
    allowed = _allowed_methods()
    if not allowed:
        raise NotFound(_("No such resource: see discovery.json (formats: .json, .xml)."))
    if request.method == "OPTIONS":
        return Response(status=200, headers={"Allow": ", ".join(allowed)})
    raise MethodNotAllowed(valid_methods=allowed, description=_("This method is not allowed here."))
