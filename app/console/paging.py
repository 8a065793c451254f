"""The page a console list is asked for, and how many pages it has."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import UnprocessableEntity

MOST_PAGES = 100_000


def page_number() -> int:
    """`?page=` (1 unless given): a 422 page when it is not a number from 1 to MOST_PAGES."""
    try:
        page = int(request.args.get("page", "1"))
    except ValueError as exc:
        raise UnprocessableEntity() from exc
    if not 1 <= page <= MOST_PAGES:
        raise UnprocessableEntity()
    return page


def page_count(total: int, page_size: int) -> int:
    """How many pages `total` items fill (at least one, shown empty)."""
    return max(1, -(-total // page_size))
