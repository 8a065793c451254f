"""`from` / `to` query arguments as one rule: defaults, order and a longest period."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.core.errors import Unprocessable
from app.core.i18n import _


def minute_ceiling(moment: dt.datetime) -> dt.datetime:
    """The end of the minute `moment` falls in: a default window that ends there holds all
    that happened so far and stays the same for a minute, so an unchanged answer keeps its
    ETag (If-None-Match then saves the download) instead of moving with every request."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + dt.timedelta(minutes=1)


def period(args: dict[str, Any], *, default_days: int, max_days: int):
    """(start, end) from `from_` and `to` (default: the last `default_days` up to the end of
    the current minute); a 422 when backwards or longer than `max_days`."""
    end = args.get("to") or minute_ceiling(dt.datetime.now(dt.UTC))
    start = args.get("from_") or end - dt.timedelta(days=default_days)
    if start >= end:
        raise Unprocessable(_("`from` must be before `to`."))
    if end - start > dt.timedelta(days=max_days):
        raise Unprocessable(_("The period is at most %(max_days)s days.", max_days=max_days))
    return start, end
