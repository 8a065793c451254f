"""Errors inside the console are pages in the reader's language, not problem+json."""

from __future__ import annotations

from flask import render_template
from werkzeug.exceptions import HTTPException

from app.console import bp
from app.core.errors import DomainError, Forbidden, NotFound, handle_unexpected
from app.core.i18n import _


def _page(status: int, message: str):
    return render_template("console/error.html", status=status, message=message), status


@bp.errorhandler(NotFound)
def _not_found(error: NotFound):
    # Outside the jurisdiction is "no such tip", as in the API: existence is not confirmed.
    return _page(404, _("Not found, or not in your areas."))


@bp.errorhandler(Forbidden)
def _forbidden(_error: Forbidden):
    return _page(403, _("Your role does not allow this page."))


@bp.errorhandler(DomainError)
def _domain(error: DomainError):
    return _page(getattr(error, "status", 400), str(error))


@bp.errorhandler(HTTPException)
def _http(error: HTTPException):
    messages = {
        400: _("The form had expired or was not sent from this console; please try again."),
        403: _("Your role does not allow this page."),
        404: _("Not found, or not in your areas."),
        422: _("Some of the filters are not valid."),
        429: _("Too many attempts; please wait a moment and try again."),
    }
    status = error.code or 500
    return _page(status, messages.get(status, _("Something went wrong.")))


@bp.errorhandler(Exception)
def _unexpected(error: Exception):
    # The API's handler logs it and decides the status (a database outage is a 503); the
    # console shows that status as a page.
    answer = handle_unexpected(error)
    return _page(answer.status_code, _("Something went wrong."))
