"""Our `Blueprint`: every route declares who may call it, and commits once at the request boundary.

- `@blp.public`, `@blp.login_required`, `@blp.role_required(*roles)` enforce access and write it
  into the OpenAPI operation (security requirement, 401/403 responses, a line in the description).
  The authorization test walks the URL map and fails on any view method without one of them.
- Views never commit. The wrapper installed by `add_url_rule` commits the session once the view
  has produced a response below 400, and rolls back otherwise or on any exception (Indico's rule).
  A view can then hand a finished response to `@blp.idempotent` (app/core/idempotency.py), which
  records it in the same transaction as the work it describes.
- Request bodies declared as JSON must be sent as JSON: anything else is a 415. They are decoded
  by app/core/untrusted.py (malformed or too deeply nested JSON is a 400, text PostgreSQL or
  UTF-8 cannot hold a 422), all problem+json.
- Uploads read `files` and `form` with one schema each (webargs reads one location per schema);
  `@blp.multipart_body(Schema)` documents the two as the one `multipart/form-data` body they are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import flask
import flask_smorest
from flask import current_app, request
from flask_jwt_extended import verify_jwt_in_request
from sqlalchemy import exc as sa_exc
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import UnsupportedMediaType

from app.core.auth import current_roles, has_any_role
from app.core.db import SAFE_METHODS
from app.core.errors import Forbidden
from app.core.i18n import _
from app.core.idempotency import idempotent
from app.extensions import db

ACCESS_ATTR = "_qf_access"
# The query-string schemas an API view declares (app/core/untrusted.py refuses other parameters).
QUERY_SCHEMAS_ATTR = "_qf_query_schemas"
MULTIPART = "multipart/form-data"
_MULTIPART_LOCATIONS = ("files", "form")
BEARER_SCHEME = "bearerAuth"


@dataclass(frozen=True)
class Access:
    """Who may call a view: `public`, `login` (any valid token), `roles` (one of `roles`), or
    `session` (a staff console page: a signed-in console session holding one of `roles`,
    app/console/access.py)."""

    kind: str
    roles: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "public":
            return "Access: public (no token needed)."
        if self.kind == "login":
            return "Access: any signed-in user."
        if self.kind == "refresh":
            return "Access: a refresh token as the bearer token."
        if self.kind == "session":
            return "Access: a console session of roles " + ", ".join(self.roles) + "."
        return "Access: roles " + ", ".join(self.roles) + " (or a role that includes them)."


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or mimetype.endswith("+json")


class JsonBodyParser(FlaskParser):
    """webargs parser that answers 415 for a non-JSON body, and decodes JSON as
    `request.get_json` does (app/core/untrusted.py), with the same answers to bad bodies."""

    def load_json(self, req, schema):
        has_body = bool(req.content_length) or req.headers.get("Transfer-Encoding") == "chunked"
        if has_body and not _is_json(req.mimetype):
            raise UnsupportedMediaType(
                f"This operation takes an application/json body, not {req.mimetype or 'no type'}."
            )
        return super().load_json(req, schema)

    def _raw_load_json(self, req):
        if not is_json_request(req) or not req.get_data(cache=True):
            return missing
        return req.get_json()


def _transaction_boundary(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            try:
                response = current_app.make_response(view(*args, **kwargs))
            except sa_exc.DBAPIError as exc:
                if not (exc.connection_invalidated and request.method in SAFE_METHODS):
                    raise
                # The server dropped the connection (restart, failover): the pool is renewed,
                # and a request that only reads runs again, once (app/core/db.py).
                db.session.rollback()
                response = current_app.make_response(view(*args, **kwargs))
        except BaseException:
            db.session.rollback()
            raise
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        return response

    return wrapper


class _TransactionalRules(flask.Blueprint):
    """Between flask-smorest's Blueprint and Flask's in the MRO: wraps every registered view."""

    def add_url_rule(self, rule, endpoint=None, view_func=None, *args, **kwargs):
        if view_func is not None:
            view_func = _transaction_boundary(view_func)
        return super().add_url_rule(rule, endpoint, view_func, *args, **kwargs)


# For blueprints outside the API (the staff console): the same one commit per request.
TransactionalBlueprint = _TransactionalRules


class Blueprint(flask_smorest.Blueprint, _TransactionalRules):
    ARGUMENTS_PARSER = JsonBodyParser()
    idempotent = staticmethod(idempotent)

    def __init__(self, *args, doc_tag: str | None = None, **kwargs):
        """`doc_tag`: file the operations under another blueprint's OpenAPI tag instead of a
        tag of this one's name (a package that moved out of another keeps its operations where
        generated clients group them); app/core/api.py then lists no tag for this one."""
        super().__init__(*args, **kwargs)
        self.doc_tag = doc_tag

    def route(self, rule, *, parameters=None, tags=None, **options):
        if tags is None and self.doc_tag is not None:
            tags = [self.doc_tag]
        return super().route(rule, parameters=parameters, tags=tags, **options)

    @staticmethod
    def multipart_body(schema) -> Callable[[Callable], Callable]:
        """Document the `files` and `form` arguments of a view as one multipart/form-data
        request body described by `schema` (its file fields `Upload`, its form fields as they
        are). Parsing stays with the view's `@blp.arguments(..., location="files"/"form")`."""

        def decorator(func: Callable) -> Callable:
            func._apidoc = {**getattr(func, "_apidoc", {}), "multipart_body": schema}
            return func

        return decorator

    def arguments(self, schema, *, location="json", **kwargs) -> Callable[[Callable], Callable]:
        """flask-smorest's `arguments`, also recording a view's query schemas (its API views
        start with none: `_declare`)."""
        decorate = super().arguments(schema, location=location, **kwargs)
        if location != "query":
            return decorate

        def decorator(func: Callable) -> Callable:
            view = decorate(func)
            setattr(view, QUERY_SCHEMAS_ATTR, (*getattr(view, QUERY_SCHEMAS_ATTR, ()), schema))
            return view

        return decorator

    def _prepare_arguments_doc(self, doc, doc_info, *, api, spec, **kwargs):
        # flask-smorest turns the first body argument into the requestBody and leaves the
        # others as `in: files`/`in: form` parameters, which OpenAPI 3 does not have.
        body_schema = doc_info.get("multipart_body")
        operation = doc_info.get("arguments")
        if body_schema is not None and operation:
            operation = {
                **operation,
                "parameters": [
                    p
                    for p in operation["parameters"]
                    if not (isinstance(p, dict) and p.get("in") in _MULTIPART_LOCATIONS)
                ],
            }
            doc_info = {**doc_info, "arguments": operation}
            doc = super()._prepare_arguments_doc(doc, doc_info, api=api, spec=spec, **kwargs)
            if not doc.get("parameters"):
                doc.pop("parameters", None)
            doc["requestBody"] = {"required": True, "content": {MULTIPART: {"schema": body_schema}}}
            return doc
        return super()._prepare_arguments_doc(doc, doc_info, api=api, spec=spec, **kwargs)

    def _declare(self, func: Callable, access: Access, check: Callable[[], None]) -> Callable:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            check()
            return func(*args, **kwargs)

        if access.kind == "public":
            wrapper = self.doc(security=[])(wrapper)
        else:
            wrapper = self.doc(security=[{BEARER_SCHEME: []}])(wrapper)
            wrapper = self.alt_response(401, response="UNAUTHORIZED")(wrapper)
            if access.kind == "roles":
                wrapper = self.alt_response(403, response="FORBIDDEN")(wrapper)
        # The docstring's first line stays the summary; the access rule ends the description.
        body = (func.__doc__ or "").strip().partition("\n")[2].strip()
        wrapper = self.doc(description=f"{body}\n\n{access.describe()}".strip())(wrapper)
        setattr(wrapper, ACCESS_ATTR, access)
        setattr(wrapper, QUERY_SCHEMAS_ATTR, getattr(wrapper, QUERY_SCHEMAS_ATTR, ()))
        return wrapper

    def public(self, func: Callable) -> Callable:
        """Anyone may call this view."""
        return self._declare(func, Access("public"), lambda: None)

    def login_required(self, func: Callable) -> Callable:
        """Any caller with a valid access token."""
        return self._declare(func, Access("login"), verify_jwt_in_request)

    def refresh_token_required(self, func: Callable) -> Callable:
        """Callers presenting a refresh token (not an access token) as the bearer token."""
        return self._declare(func, Access("refresh"), lambda: verify_jwt_in_request(refresh=True))

    def role_required(self, *roles: str) -> Callable[[Callable], Callable]:
        """Callers holding one of `roles` (or a role that includes one of them)."""
        if not roles:
            raise ValueError("role_required needs at least one role")

        def check() -> None:
            verify_jwt_in_request()
            if not has_any_role(current_roles(), roles):
                raise Forbidden(_("Your role does not allow this operation."))

        return lambda func: self._declare(func, Access("roles", tuple(roles)), check)


# Endpoints registered by other code (flask-smorest's spec and docs pages) that are public.
_PUBLIC_ENDPOINTS: set[str] = set()


def declare_public_endpoint(endpoint: str) -> None:
    _PUBLIC_ENDPOINTS.add(endpoint)


def access_of(endpoint: str, view_func: Callable, method: str) -> Access | None:
    """The access rule declared for one HTTP method of a registered endpoint, if any."""
    if endpoint in _PUBLIC_ENDPOINTS:
        return Access("public")
    view_class = getattr(view_func, "view_class", None)
    target = getattr(view_class, method.lower(), None) if view_class else view_func
    return getattr(target, ACCESS_ATTR, None)
