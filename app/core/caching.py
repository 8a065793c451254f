"""Who may keep a copy of an answer, declared once per view and applied to every response in one
place; and `X-Content-Type-Options: nosniff` on every response, errors and docs included (a
browser must never guess a JSON or CSV answer to be HTML and run it).

Answers carry personal data unless a view declares otherwise, so the default is the safe one:
every response is `Cache-Control: no-store` (no browser, proxy or CDN keeps a copy of a profile,
a reporter's phone, a follow view or a clue batch), whatever the view set itself. Two
declarations relax it, for answers that name nobody:

- `@public_data`: the same for every caller and about places and things (areas, stations, tip
  categories, the signing key, the k-anonymous heatmap, Open311's moderated reads, the API
  docs). Shared caches may keep it; the view may set a `max-age`. Honoured on public routes
  only: on a route that needs a token it is ignored (no-store).
- `@staff_aggregate`: counts for staff that name nobody (the grid statistics): only the staff
  member's own client may keep them, revalidating each time (`private, no-cache`), so their
  ETag still saves a download.

tests/core/test_caching.py walks the URL map: every route answers accordingly, and the routes
that opt out are reviewed there.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, current_app, request

from app.core.blueprint import access_of

PERSONAL, STAFF_AGGREGATE, PUBLIC_DATA = "personal", "staff_aggregate", "public_data"
CACHE_CONTROL = {PERSONAL: "no-store", STAFF_AGGREGATE: "private, no-cache"}
DATA_CLASS_ATTR = "_qf_data_class"

# Endpoints registered by other code (flask-smorest's spec and docs pages) and their class.
_ENDPOINT_CLASSES: dict[str, str] = {}


def public_data(func: Callable) -> Callable:
    """The view's answers hold no personal data and are the same for every caller."""
    setattr(func, DATA_CLASS_ATTR, PUBLIC_DATA)
    return func


def staff_aggregate(func: Callable) -> Callable:
    """The view's answers are aggregates for staff that name nobody."""
    setattr(func, DATA_CLASS_ATTR, STAFF_AGGREGATE)
    return func


def declare_endpoint(endpoint: str, data_class: str) -> None:
    _ENDPOINT_CLASSES[endpoint] = data_class


def data_class_of(endpoint: str | None, view_func: Callable | None, method: str) -> str:
    """The data class of one HTTP method of an endpoint: `personal` unless declared (and a
    `public_data` declaration counts only on a public route)."""
    if endpoint is None or view_func is None:
        return PERSONAL
    method = "GET" if method == "HEAD" else method
    declared = _ENDPOINT_CLASSES.get(endpoint)
    if declared is None:
        view_class = getattr(view_func, "view_class", None)
        target = getattr(view_class, method.lower(), None) if view_class else view_func
        declared = getattr(target, DATA_CLASS_ATTR, PERSONAL)
    if declared == PUBLIC_DATA:
        access = access_of(endpoint, view_func, method)
        if access is None or access.kind != "public":
            return PERSONAL
    return declared


def _apply(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    endpoint = request.endpoint
    view_func = current_app.view_functions.get(endpoint) if endpoint else None
    data_class = data_class_of(endpoint, view_func, request.method)
    if data_class in CACHE_CONTROL:
        response.headers["Cache-Control"] = CACHE_CONTROL[data_class]
    return response


def init_app(app: Flask) -> None:
    app.after_request(_apply)
