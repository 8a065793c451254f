"""Clues by grid cell: counts, trends, hotspots, risk against patrol coverage, public heatmap.

Every aggregate reads the area ids and H3 cells stored on each tip at write time (indexed
equality on the area path and time, then GROUP BY the cell); no grid is built and joined
spatially per request. Merged tips are duplicates of another and are never counted.

Hotspots: for each cell, the count `x` of the latest window is set against its own trailing
baseline, the mean `m` of the BASELINE_WINDOWS windows of the same length before it. A cell is
a hotspot when `x >= MIN_HOTSPOT_TIPS` and the Poisson tail P(X >= x | mean max(m, 0.5)) is
under HOTSPOT_P: that many clues would be this unlikely if the cell went on as before.
Ranked by that probability (smallest first), ties by `x`.

Risk against coverage: for each cell, its share of the area's clues (weighted by priority) and
its share of the area's patrol time in the same window; the `gap` is the first minus the
second. Cells with the largest gap take the most clues for the least watching: send patrols
there next.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import h3
from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.orm import Session

from app.areas.models import Area
from app.auth.jurisdiction import Jurisdiction, jurisdiction_of, path_columns
from app.auth.models import User
from app.core.errors import NotFound, Unprocessable
from app.core.i18n import _
from app.patrols import coverage
from app.tips.models import OPEN_STATUSES, PUBLIC_CATEGORIES, STATUSES, Tip, TipCategory
from geo.cells import from_bigint, to_bigint

MAX_CELLS = coverage.MAX_CELLS
BASELINE_WINDOWS = 8
MIN_HOTSPOT_TIPS = 3
HOTSPOT_P = 0.01
PRIORITY_WEIGHTS = {"low": 0.5, "normal": 1.0, "high": 2.0, "urgent": 4.0}
PUBLIC_RESOLUTION = 7  # about 1.4 km across: coarse enough for anyone's map


def tip_cell(kind: str, res: int) -> ColumnElement:
    """The cell column of a tip: its grid cell, or its H3 cell at `res` (7..9 stored; coarser
    ones derived in SQL from the stored resolution 7)."""
    if kind == "admin":
        return Tip.grid_cell_id
    if res >= 7:
        return getattr(Tip, f"h3_r{res}")
    return coverage.hex_cell(Tip.h3_r7, res, stored_res=7)


# Annotations are never evaluated here (`from __future__ import annotations`): the `|` of
# `Area | None` has no behaviour to test.
def _conditions(
    jurisdiction: Jurisdiction,
    area: Area | None,  # pragma: no mutate
    args: dict[str, Any],
) -> list:
    columns = path_columns(Tip)
    conditions = [
        jurisdiction.clause(columns),
        coverage.in_area(columns, area),
        Tip.status != "merged",
    ]
    if args.get("category"):
        conditions.append(Tip.category_code.in_(args["category"]))
    if args.get("status"):
        conditions.append(Tip.status.in_(args["status"]))
    if args.get("bbox"):
        # `intersects` is PostGIS's `&&`, which compares boxes and not SRIDs: another SRID
        # number here changes no answer.
        envelope = func.ST_MakeEnvelope(*args["bbox"], 4326)  # pragma: no mutate
        conditions.append(Tip.geom.intersects(envelope))
    return conditions


def parse_cell(value: str) -> tuple[str, Any]:
    """('admin', uuid) for a grid cell id, ('hex', bigint) for an H3 index."""
    try:
        return "admin", uuid.UUID(value)
    except ValueError:
        pass
    try:
        if h3.is_valid_cell(value):
            return "hex", to_bigint(value)
    except (ValueError, TypeError):
        pass
    raise NotFound(_("No such cell."))


def _cell_value(kind: str, value: Any) -> str:
    return str(value) if kind == "admin" else from_bigint(value)


# -- counts per cell -----------------------------------------------------------------------------


class _Categories:
    """The tip category codes, remembered by the process: the counts per category need them
    before the statement is written, and a query for them on every aggregate was a round
    trip. A category made since is seen by the aggregate itself (its `unknown` count), which
    then reads the codes again; an unused new category has no count to show anyway."""

    known: tuple[str, ...] = ()

    def read(self, session: Session) -> tuple[str, ...]:
        self.known = tuple(session.scalars(select(TipCategory.code).order_by(TipCategory.code)))
        return self.known


_categories = _Categories()


def tip_cells(session: Session, user: User, args: dict[str, Any], start, end) -> list[dict]:
    """Per cell with tips in [start, end): total, by category, by status, open, first and last
    tip, and the change against the window of equal length just before.

    One scan and one GROUP BY cell, with a FILTERed count per category and per status, so
    that PostgreSQL aggregates in parallel and Python sees one row per cell (measured in
    bench/bench_grid.py against GROUPING SETS and against grouping by cell × category ×
    status, both about twice as slow for the whole district)."""
    jurisdiction, area = coverage.scope(session, user, args.get("area_id"))
    kind, res = args["cells"], args["resolution"]
    cell = tip_cell(kind, res).label("cell")
    statuses = [status for status in STATUSES if status != "merged"]
    current = Tip.created_at >= start
    categories = _categories.known or _categories.read(session)
    while True:
        columns = [
            func.count().filter(current).label("total"),
            func.count().filter(~current).label("previous"),
            func.min(Tip.created_at).filter(current).label("first"),
            func.max(Tip.created_at).filter(current).label("last"),
            func.count().filter(current, Tip.category_code.not_in(categories)).label("unknown"),
            *(func.count().filter(current, Tip.category_code == c) for c in categories),
            *(func.count().filter(current, Tip.status == st) for st in statuses),
        ]
        rows = session.execute(
            select(cell, *columns)
            .where(Tip.created_at >= start - (end - start), Tip.created_at < end)
            .where(cell.is_not(None), *_conditions(jurisdiction, area, args))
            .group_by(literal_column("cell"))
            .order_by(literal_column("cell"))
            .limit(MAX_CELLS + 1)
        ).all()
        if not any(row.unknown for row in rows) or categories == _categories.read(session):
            break
        categories = _categories.known  # a category made since: count again with it
    if len(rows) > MAX_CELLS:
        raise Unprocessable(_("Too many cells: choose a smaller area or a coarser resolution."))
    out = []
    for row in rows:
        value, total, previous, first, last, _unknown, *counts = row
        by_category = {c: n for c, n in zip(categories, counts, strict=False) if n}
        by_status = {st: n for st, n in zip(statuses, counts[len(categories) :], strict=True) if n}
        out.append(
            {
                "cell": value,
                "cell_id": _cell_value(kind, value),
                "total": total,
                "by_category": by_category,
                "by_status": by_status,
                "open": sum(n for st, n in by_status.items() if st in OPEN_STATUSES),
                "change": _change(total, previous),
                "first_at": first.isoformat() if first else None,
                "last_at": last.isoformat() if last else None,
            }
        )
    return out


def _change(now: int, before: int) -> dict[str, Any]:
    return {
        "previous": before,
        "delta": now - before,
        "ratio": round(now / before, 3) if before else None,
    }


# -- one cell over time --------------------------------------------------------------------------


def series(
    session: Session, user: User, cell_text: str, args: dict[str, Any], start, end, *, zone: str
):
    """Counts per day or week (local time in `zone`, SERVICE_TIMEZONE) of one cell, every
    bucket present."""
    kind, value = parse_cell(cell_text)
    res = 9 if kind == "admin" else _resolution(cell_text)
    jurisdiction = jurisdiction_of(user)
    column = tip_cell(kind, res)
    interval = args["interval"]
    bucket = func.date_trunc(interval, func.timezone(zone, Tip.created_at))
    counts = dict(
        session.execute(
            select(bucket, func.count())
            .where(column == value, Tip.created_at >= start, Tip.created_at < end)
            .where(*_conditions(jurisdiction, None, args))
            .group_by(bucket)
        ).all()
    )
    first = _truncate(start.astimezone(ZoneInfo(zone)).replace(tzinfo=None), interval)
    step = dt.timedelta(days=7 if interval == "week" else 1)
    points, at = [], first
    last_local = end.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    while at < last_local:
        points.append({"start": at.date().isoformat(), "count": counts.get(at, 0)})
        at += step
        if len(points) > 400:
            raise Unprocessable(_("Too many buckets: choose a shorter period or weeks."))
    return {"cell_id": cell_text, "interval": interval, "timezone": zone, "points": points}


def _truncate(moment: dt.datetime, interval: str) -> dt.datetime:
    day = dt.datetime(moment.year, moment.month, moment.day)
    return day - dt.timedelta(days=day.weekday()) if interval == "week" else day


def _resolution(cell_text: str) -> int:
    res = h3.get_resolution(cell_text)
    if not 5 <= res <= 9:
        raise Unprocessable(_("Hex cells are H3 resolutions 5 to 9."))
    return res


# -- hotspots ------------------------------------------------------------------------------------


def poisson_tail(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean)."""
    if count <= 0:
        return 1.0
    term = math.exp(-mean)
    below = term
    for k in range(1, count):
        term *= mean / k
        below += term
    return max(0.0, 1.0 - below)


def hotspots(session: Session, user: User, args: dict[str, Any], end: dt.datetime) -> list[dict]:
    """Cells whose latest window is unusually high against their own trailing baseline."""
    jurisdiction, area = coverage.scope(session, user, args.get("area_id"))
    kind, res = args["cells"], args["resolution"]
    window = dt.timedelta(days=args["window_days"])
    start = end - window * (BASELINE_WINDOWS + 1)
    cell = tip_cell(kind, res).label("cell")
    age = func.floor(func.extract("epoch", end - Tip.created_at) / window.total_seconds())
    rows = session.execute(
        select(cell, age.label("age"), func.count())
        .where(Tip.created_at >= start, Tip.created_at < end, cell.is_not(None))
        .where(*_conditions(jurisdiction, area, args))
        .group_by(literal_column("cell"), literal_column("age"))
    ).all()
    per_cell: dict[Any, list[int]] = {}
    for value, window_age, count in rows:
        counts = per_cell.setdefault(value, [0] * (BASELINE_WINDOWS + 1))
        counts[int(window_age)] += count
    found = []
    for value, counts in per_cell.items():
        recent, baseline = counts[0], counts[1:]
        mean = sum(baseline) / BASELINE_WINDOWS
        p = poisson_tail(recent, max(mean, 0.5))
        if recent >= MIN_HOTSPOT_TIPS and p < HOTSPOT_P:
            found.append(
                {
                    "cell": value,
                    "cell_id": _cell_value(kind, value),
                    "recent": recent,
                    "baseline_mean": round(mean, 2),
                    "baseline": baseline,
                    "p_value": p,
                    "ratio": round(recent / mean, 2) if mean else None,
                }
            )
    found.sort(key=lambda h: (h["p_value"], -h["recent"], h["cell_id"]))
    for rank, hotspot in enumerate(found, start=1):
        hotspot["rank"] = rank
    return found


# -- risk against coverage -----------------------------------------------------------------------


def risk_coverage(
    session: Session, user: User, args: dict[str, Any], end: dt.datetime, *, max_gap_minutes: int
):
    """Cells ranked by their share of weighted clues minus their share of patrol time (each
    gap between fixes counting up to `max_gap_minutes`)."""
    jurisdiction, area = coverage.scope(session, user, args.get("area_id"))
    kind, res = args["cells"], args["resolution"]
    start = end - dt.timedelta(days=args["window_days"])
    cell = tip_cell(kind, res).label("cell")
    weight = func.sum(
        func.coalesce(
            literal_column(
                "CASE tips.priority "
                + " ".join(f"WHEN '{k}' THEN {v}" for k, v in PRIORITY_WEIGHTS.items())
                + " END"
            ),
            1.0,
        )
    )
    tip_rows = session.execute(
        select(
            cell,
            func.count().label("tips"),
            func.count().filter(Tip.status.in_(OPEN_STATUSES)).label("open"),
            weight.label("weight"),
        )
        .where(Tip.created_at >= start, Tip.created_at < end, cell.is_not(None))
        .where(*_conditions(jurisdiction, area, args))
        .group_by(literal_column("cell"))
    ).all()
    patrols = {
        row.cell: row
        for row in coverage.patrol_totals(
            session, jurisdiction, area, kind, res, start, end, max_gap_minutes
        )
    }
    total_weight = sum(float(r.weight) for r in tip_rows) or 1.0
    total_seconds = sum(float(r.seconds) for r in patrols.values()) or 1.0
    ranked = []
    for row in tip_rows:
        patrol = patrols.get(row.cell)
        seconds = float(patrol.seconds) if patrol else 0.0
        tip_share = float(row.weight) / total_weight
        patrol_share = seconds / total_seconds
        ranked.append(
            {
                "cell": row.cell,
                "cell_id": _cell_value(kind, row.cell),
                "tips": row.tips,
                "open": row.open,
                "weighted_tips": round(float(row.weight), 2),
                "patrol_minutes": round(seconds / 60, 1),
                "patrollers": patrol.patrollers if patrol else 0,
                "last_patrolled_at": patrol.last_patrolled_at.isoformat() if patrol else None,
                "tip_share": round(tip_share, 4),
                "patrol_share": round(patrol_share, 4),
                "gap": round(tip_share - patrol_share, 4),
            }
        )
    ranked.sort(key=lambda r: (-r["gap"], -r["weighted_tips"], r["cell_id"]))
    for rank, entry in enumerate(ranked, start=1):
        entry["rank"] = rank
    return ranked


# -- the public heatmap --------------------------------------------------------------------------


def public_heatmap(
    session: Session, bbox, window_days: int, end: dt.datetime, *, k: int
) -> list[dict]:
    """Coarse cells (H3 resolution 7) of tips of public categories in the bbox, each only when
    at least k (HEATMAP_MIN_REPORTERS) distinct named reporters contributed to it: no single
    tipster can be located from it. Anonymous tips count in `count` but never towards k (they
    have no reporter to tell apart)."""
    cell = Tip.h3_r7.label("cell")
    # `intersects` is `&&` (boxes, SRIDs not compared): another SRID number changes no answer.
    envelope = func.ST_MakeEnvelope(*bbox, 4326)  # pragma: no mutate
    rows = session.execute(
        select(cell, func.count().label("count"))
        .where(
            Tip.created_at >= end - dt.timedelta(days=window_days),
            Tip.created_at < end,
            Tip.status != "merged",
            Tip.category_code.in_(sorted(PUBLIC_CATEGORIES)),
            Tip.geom.intersects(envelope),
            cell.is_not(None),
        )
        .group_by(literal_column("cell"))
        .having(func.count(Tip.reporter_id.distinct()) >= k)
        .order_by(literal_column("cell"))
        .limit(MAX_CELLS + 1)
    ).all()
    if len(rows) > MAX_CELLS:
        raise Unprocessable(_("Too many cells: choose a smaller bbox."))
    return [{"cell": r.cell, "cell_id": from_bigint(r.cell), "count": r.count} for r in rows]
