"""ETags of stored objects, and If-Match on every staff edit of one: one scheme for tips,
tasks, stations and checkpoints.

An object's ETag is its version (the `version` column SQLAlchemy bumps on every UPDATE), not
how it was rendered: reading a station in GCJ-02 or in English gives the same ETag, and any
change to the station gives a new one. `tag(kind, obj)` puts it on the answer (a GET whose
If-None-Match holds it is a 304 without a body); `require(kind, obj)` is the check of an edit
(PATCH, or a workflow POST such as a tip transition or a task cancel): 428 without If-Match (or
with `*`), 412 when it is not the current version. `@versioned(blp)` documents both.

(flask-smorest's own ETag support hashes whatever the view hands it, checks only PUT, PATCH and
DELETE, and needs its private `_generate_etag` to check a POST: we use none of it.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol

from flask import Response, after_this_request, request
from werkzeug.exceptions import PreconditionFailed, PreconditionRequired

from app.core.i18n import _, _l

# What the messages call each kind of object, in the reader's language.
_NAMES = {
    "tip": _l("tip"),
    "task": _l("task"),
    "station": _l("station"),
    "checkpoint": _l("checkpoint"),
}


class Versioned(Protocol):
    id: Any
    version: int


def etag_of(kind: str, obj: Versioned) -> str:
    """The ETag of this version of the object (without the quotes HTTP adds)."""
    return hashlib.sha256(f"{kind}:{obj.id}:{obj.version}".encode()).hexdigest()[:32]


def tag(kind: str, obj: Versioned) -> None:
    """The answer carries the object's ETag, as it is now; a GET or HEAD whose If-None-Match
    holds it becomes 304 Not Modified."""
    etag = etag_of(kind, obj)

    @after_this_request
    def _set(response: Response) -> Response:
        if response.status_code in (200, 201):
            response.set_etag(etag)
            return response.make_conditional(request)
        return response


def require(kind: str, obj: Versioned) -> None:
    """An edit names the version it was made from: 428 without If-Match (or with *), 412 when
    it is not the object's current version."""
    require_if_match(etag_of(kind, obj), str(_NAMES.get(kind, kind)))


def require_if_match(current_etag: str, what: str) -> None:
    """428 without If-Match (or with *), 412 when it is not `current_etag` (`what`: the
    object's name in the messages)."""
    if not request.if_match or request.if_match.star_tag:
        raise PreconditionRequired(
            _("Send the ETag you read (of the %(what)s) as If-Match, not *.", what=what)
        )
    if not request.if_match.contains(current_etag):
        raise PreconditionFailed(
            _("The %(what)s changed since you read it; read it again.", what=what)
        )


def versioned(blp, *, edit: bool = False, read_by: str = "its GET") -> Callable:
    """OpenAPI of a view that answers an object's ETag: 304 for a read; for an edit, the
    required If-Match header and its 412 and 428 answers."""

    def decorate(func):
        if not edit:
            return blp.alt_response(304, description="Not Modified (If-None-Match)")(func)
        func = blp.alt_response(412, response="PRECONDITION_FAILED")(func)
        func = blp.alt_response(428, response="PRECONDITION_REQUIRED")(func)
        return blp.doc(
            parameters=[
                {
                    "in": "header",
                    "name": "If-Match",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": f"the ETag of {read_by}",
                }
            ]
        )(func)

    return decorate
