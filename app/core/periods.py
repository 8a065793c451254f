"""`from` / `to` query arguments as one rule: defaults, order and a longest period."""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.core.errors import Unprocessable
from app.core.i18n import _


def period(args: dict[str, Any], *, default_days: int, max_days: int):
    """(start, end) from `from_` and `to` (default: the last `default_days` up to now); a 422
    when backwards or longer than `max_days`."""
    end = args.get("to") or dt.datetime.now(dt.UTC)
    start = args.get("from_") or end - dt.timedelta(days=default_days)
    if start >= end:
        raise Unprocessable(_("`from` must be before `to`."))
    if end - start > dt.timedelta(days=max_days):
        raise Unprocessable(_("The period is at most %(max_days)s days.", max_days=max_days))
    return start, end
