"""If-Match for staff edits of shared objects that flask-smorest does not check (it checks PUT,
PATCH and DELETE only): workflow POSTs on tips and tasks."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import PreconditionFailed, PreconditionRequired


def require_if_match(current_etag: str, what: str) -> None:
    """428 without If-Match (or with *), 412 when it is not the object's current ETag."""
    if not request.if_match or request.if_match.star_tag:
        raise PreconditionRequired(f"Send the {what}'s ETag as If-Match (not *).")
    if not request.if_match.contains(current_etag):
        raise PreconditionFailed(f"The {what} changed since you read it; read it again.")
