"""Check-ins from a phone: one fix or a batch of up to 500, often synced late from offline.

Every item gets its own outcome, in request order: `accepted`, `duplicate` (its client id is
stored already: a replay changes nothing) or `rejected` with a reason. One bad item never costs
the others. Accepted items may carry flags (kept, but worth a look): `poor_accuracy`, and
`implausible_speed` from the previous plausible fix (a likely spoofed position; such fixes are
left out of tracks, distances, service time and coverage minutes).

The work is set-based: the batch's area paths are resolved in one query, the rows go in with one
INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING, and checkpoints near any of its
fixes are found in one more. Only batches that visit a checkpoint do more.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import h3
from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION
from sqlalchemy.orm import Session
from sqlalchemy.types import BigInteger, DateTime, Float, SmallInteger, String, Uuid

from app.areas.service import AreaPath, resolve_paths
from app.extensions import db
from app.patrols import partitions
from app.patrols.models import (
    FLAG_IMPLAUSIBLE_SPEED,
    FLAG_POOR_ACCURACY,
    Checkpoint,
    CheckpointVisit,
    Patrol,
    flag_names,
)
from app.patrols.schemas import CheckInItemSchema
from geo.cells import to_bigint
from geo.crs import to_wgs84
from geo.distance import haversine_m

# How far a phone's clock may be off: ahead of the server, or behind the patrol's start.
CLOCK_SKEW = dt.timedelta(minutes=5)
# Checkpoints have a radius of at most this (a CHECK on the table): the index-backed bound of
# the proximity search.
MAX_CHECKPOINT_RADIUS_M = 1000

_ITEM = CheckInItemSchema()


@dataclass
class Item:
    """One item of a batch, as the service judges it."""

    client_id: uuid.UUID | None
    outcome: str = "accepted"
    reason: str | None = None
    detail: str | None = None
    recorded_at: dt.datetime | None = None
    lon: float = 0.0
    lat: float = 0.0
    accuracy_m: float | None = None
    scan: dict[str, Any] | None = None
    flags: int = 0
    path: AreaPath = field(default_factory=AreaPath)
    h3_r9: int | None = None
    visits: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, reason: str, detail: str | None = None) -> None:
        self.outcome, self.reason, self.detail = "rejected", reason, detail

    def answer(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "outcome": self.outcome,
            "reason": self.reason,
            "detail": self.detail,
            "flags": flag_names(self.flags) if self.outcome == "accepted" else [],
            "visits": self.visits,
        }


def _client_id_of(raw: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw.get("client_id")))
    except (AttributeError, ValueError):
        return None


def _errors_text(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, dict):
        return "; ".join(_errors_text(v, f"{prefix}{k}.") for k, v in messages.items())
    if isinstance(messages, list):
        return "; ".join(f"{prefix.rstrip('.')}: {m}" for m in messages if isinstance(m, str))
    return f"{prefix.rstrip('.')}: {messages}"


def parse(raw_items: Sequence[Any]) -> list[Item]:
    """Validate each raw item on its own; a malformed one becomes a rejected Item."""
    items = []
    for raw in raw_items:
        try:
            data = _ITEM.load(raw)
        except ValidationError as exc:
            item = Item(client_id=_client_id_of(raw))
            item.reject("invalid", _errors_text(exc.messages))
            items.append(item)
            continue
        item = Item(
            client_id=data["client_id"],
            recorded_at=data["recorded_at"].astimezone(dt.UTC),
            accuracy_m=data["accuracy_m"],
            scan=data["checkpoint"],
        )
        lon, lat = data["lon"], data["lat"]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            item.reject("coordinates_out_of_range", "lon must be -180..180 and lat -90..90.")
        else:
            item.lon, item.lat = to_wgs84(lon, lat, data["coord_system"])
        items.append(item)
    return items


def _judge_times(items: list[Item], patrol: Patrol, now: dt.datetime, oldest: dt.datetime) -> None:
    for item in items:
        if item.outcome != "accepted":
            continue
        at = item.recorded_at
        if at > now + CLOCK_SKEW:
            item.reject("in_future", "recorded_at is ahead of the server's clock.")
        elif at < oldest:
            item.reject("past_retention", "recorded_at is older than check-ins are kept.")
        elif at < patrol.started_at - CLOCK_SKEW:
            item.reject("before_patrol_start", "recorded_at is before the patrol started.")
        elif patrol.ended_at is not None and at > patrol.ended_at + CLOCK_SKEW:
            item.reject("after_patrol_end", "recorded_at is after the patrol ended.")


def _mark_batch_duplicates(items: list[Item]) -> list[Item]:
    """The items still accepted, each client id once (later copies are duplicates)."""
    seen: set[uuid.UUID] = set()
    fresh = []
    for item in items:
        if item.outcome != "accepted":
            continue
        if item.client_id in seen:
            item.outcome = "duplicate"
            continue
        seen.add(item.client_id)
        fresh.append(item)
    return fresh


def _anchors(session: Session, patrol: Patrol, fresh: list[Item]) -> list[tuple]:
    """Stored plausible fixes the batch's speed checks compare against. A batch after the
    patrol's latest fix (the usual case) needs only that fix, kept on the patrol; a batch
    reaching back before it (an older phone syncing late) reads the stored fixes it spans."""
    earliest = min(i.recorded_at for i in fresh)
    if patrol.last_fix_at is None:
        return []
    if earliest >= patrol.last_fix_at:
        return [(patrol.last_fix_at, patrol.last_lon, patrol.last_lat)]
    rows = session.execute(
        text(
            """
            SELECT recorded_at, ST_X(geom), ST_Y(geom) FROM checkins
            WHERE patrol_id = :patrol AND flags & :spoof = 0
              AND recorded_at >= :started AND recorded_at <= :latest
              AND recorded_at >= coalesce((
                  SELECT max(recorded_at) FROM checkins
                  WHERE patrol_id = :patrol AND flags & :spoof = 0
                    AND recorded_at >= :started AND recorded_at < :earliest), :earliest)
            """
        ),
        {
            "patrol": patrol.id,
            "spoof": FLAG_IMPLAUSIBLE_SPEED,
            "started": patrol.started_at - CLOCK_SKEW,
            "earliest": earliest,
            "latest": max(i.recorded_at for i in fresh),
        },
    )
    return [tuple(row) for row in rows]


def _flag(fresh: list[Item], anchors: list[tuple], poor_accuracy_m: float, max_speed: float) -> None:
    """Flag poor accuracy, and speeds from the previous plausible fix (stored or in the batch)
    beyond `max_speed` m/s. A flagged fix is not the reference for the next one, so one jump
    does not also flag the return to the true position."""
    events = [(at, 0, lon, lat, None) for at, lon, lat in anchors]
    events += [(i.recorded_at, 1, i.lon, i.lat, n) for n, i in enumerate(fresh)]
    events.sort(key=lambda e: (e[0], e[1]))
    previous = None
    for at, _order, lon, lat, index in events:
        if index is None:
            previous = (at, lon, lat)
            continue
        item = fresh[index]
        if item.accuracy_m is not None and item.accuracy_m > poor_accuracy_m:
            item.flags |= FLAG_POOR_ACCURACY
        if previous is not None:
            seconds = max((at - previous[0]).total_seconds(), 1.0)
            if haversine_m(previous[1], previous[2], lon, lat) / seconds > max_speed:
                item.flags |= FLAG_IMPLAUSIBLE_SPEED
                continue
        previous = (at, lon, lat)


# -- partitions ----------------------------------------------------------------------------------

_known_months: set[dt.date] = set()
_months_lock = threading.Lock()


def _ensure_partitions(session: Session, fresh: list[Item]) -> None:
    """Partitions for the batch's months exist (made by the daily job; made here, in a
    transaction of their own, should the job not have run). Known months are cached."""
    months = {partitions.month_of(i.recorded_at) for i in fresh}
    if months <= _known_months:
        return
    with _months_lock:
        _known_months.update(partitions.existing_months(session))
        missing = months - _known_months
        if missing:
            with db.engine.begin() as connection:
                partitions.ensure_months(connection, missing)
            _known_months.update(missing)


# -- the insert ----------------------------------------------------------------------------------

INSERT_SQL = text(
    """
    INSERT INTO checkins (patrol_id, client_id, recorded_at, volunteer_id, geom, accuracy_m, flags,
                          checkpoint_id, scan_method, district_id, subdistrict_id, community_id,
                          grid_cell_id, h3_r9)
    SELECT :patrol_id, i.client_id, i.recorded_at, :volunteer_id,
           ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326), i.accuracy_m, i.flags,
           i.checkpoint_id, i.scan_method, i.district_id, i.subdistrict_id, i.community_id,
           i.grid_cell_id, i.h3_r9
    FROM unnest(:client_ids, :recorded_ats, :lons, :lats, :accuracies, :flags, :checkpoint_ids,
                :scan_methods, :district_ids, :subdistrict_ids, :community_ids, :grid_cell_ids,
                :h3s)
         AS i(client_id, recorded_at, lon, lat, accuracy_m, flags, checkpoint_id, scan_method,
              district_id, subdistrict_id, community_id, grid_cell_id, h3_r9)
    ON CONFLICT DO NOTHING
    RETURNING client_id
    """
).bindparams(
    bindparam("patrol_id", type_=Uuid),
    bindparam("volunteer_id", type_=Uuid),
    bindparam("client_ids", type_=ARRAY(Uuid)),
    bindparam("recorded_ats", type_=ARRAY(DateTime(timezone=True))),
    bindparam("lons", type_=ARRAY(DOUBLE_PRECISION)),
    bindparam("lats", type_=ARRAY(DOUBLE_PRECISION)),
    bindparam("accuracies", type_=ARRAY(Float)),
    bindparam("flags", type_=ARRAY(SmallInteger)),
    bindparam("checkpoint_ids", type_=ARRAY(Uuid)),
    bindparam("scan_methods", type_=ARRAY(String)),
    bindparam("district_ids", type_=ARRAY(Uuid)),
    bindparam("subdistrict_ids", type_=ARRAY(Uuid)),
    bindparam("community_ids", type_=ARRAY(Uuid)),
    bindparam("grid_cell_ids", type_=ARRAY(Uuid)),
    bindparam("h3s", type_=ARRAY(BigInteger)),
)


def _insert(session: Session, patrol: Patrol, fresh: list[Item]) -> set[uuid.UUID]:
    """Store the fresh items; returns the client ids that went in (the rest were stored
    already: replays)."""
    params: dict[str, Any] = {
        "patrol_id": patrol.id,
        "volunteer_id": patrol.volunteer_id,
        "client_ids": [i.client_id for i in fresh],
        "recorded_ats": [i.recorded_at for i in fresh],
        "lons": [i.lon for i in fresh],
        "lats": [i.lat for i in fresh],
        "accuracies": [i.accuracy_m for i in fresh],
        "flags": [i.flags for i in fresh],
        "checkpoint_ids": [i.scan["id"] if i.scan else None for i in fresh],
        "scan_methods": [i.scan["method"] if i.scan else None for i in fresh],
        "h3s": [i.h3_r9 for i in fresh],
    }
    for key in ("district_id", "subdistrict_id", "community_id", "grid_cell_id"):
        params[key + "s"] = [getattr(i.path, key) for i in fresh]
    return set(session.execute(INSERT_SQL, params).scalars())


# -- checkpoint visits ---------------------------------------------------------------------------

NEAR_CHECKPOINTS_SQL = text(
    f"""
    WITH fix AS (
        SELECT n, ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography AS g, scan_id
        FROM unnest(:ns, :lons, :lats, :scan_ids) AS u(n, lon, lat, scan_id)
    )
    SELECT fix.n, c.id, c.radius_m, c.min_interval_minutes, c.code_secret,
           ST_Distance(c.geog, fix.g) AS distance_m
    FROM fix JOIN checkpoints c
      ON ST_DWithin(c.geog, fix.g, {MAX_CHECKPOINT_RADIUS_M}) AND ST_DWithin(c.geog, fix.g, c.radius_m)
    WHERE c.active
    UNION
    SELECT fix.n, c.id, c.radius_m, c.min_interval_minutes, c.code_secret,
           ST_Distance(c.geog, fix.g) AS distance_m
    FROM fix JOIN checkpoints c ON c.id = fix.scan_id
    WHERE c.active
    """
).bindparams(
    bindparam("ns", type_=ARRAY(SmallInteger)),
    bindparam("lons", type_=ARRAY(DOUBLE_PRECISION)),
    bindparam("lats", type_=ARRAY(DOUBLE_PRECISION)),
    bindparam("scan_ids", type_=ARRAY(Uuid)),
)

COUNT_LATE_VISITS_SQL = text(
    """
    UPDATE checkpoint_windows w
    SET visits = w.visits + s.n,
        status = CASE WHEN w.visits + s.n >= w.expected_visits THEN 'visited' ELSE w.status END
    FROM (
        SELECT w2.id, count(*) AS n
        FROM checkpoint_windows w2
        JOIN unnest(:checkpoint_ids, :visited_ats) AS v(checkpoint_id, visited_at)
          ON w2.checkpoint_id = v.checkpoint_id
         AND v.visited_at >= w2.starts_at AND v.visited_at < w2.ends_at
        GROUP BY w2.id
    ) s
    WHERE w.id = s.id
    """
).bindparams(
    bindparam("checkpoint_ids", type_=ARRAY(Uuid)),
    bindparam("visited_ats", type_=ARRAY(DateTime(timezone=True))),
)


def _scan_valid(item: Item, code_secret: str) -> bool:
    if item.scan["method"] == "gps":
        return True
    return secrets.compare_digest(item.scan["code"].encode(), code_secret.encode())


def _visits(session: Session, patrol: Patrol, stored: list[Item]) -> int:
    """Count the visits the stored items make; returns how many were counted."""
    rows = session.execute(
        NEAR_CHECKPOINTS_SQL,
        {
            "ns": list(range(len(stored))),
            "lons": [i.lon for i in stored],
            "lats": [i.lat for i in stored],
            "scan_ids": [i.scan["id"] if i.scan else None for i in stored],
        },
    ).all()
    found_scans = set()
    candidates = []  # (item, checkpoint_id, distance, interval, method)
    for n, checkpoint_id, radius_m, interval, code_secret, distance in rows:
        item = stored[n]
        scanned = item.scan is not None and item.scan["id"] == checkpoint_id
        if scanned:
            found_scans.add(n)
            if not _scan_valid(item, code_secret):
                item.visits.append(_not_counted(checkpoint_id, "invalid_code"))
                continue
            if distance > radius_m:
                item.visits.append(_not_counted(checkpoint_id, "outside_radius"))
                continue
        method = item.scan["method"] if scanned else "gps"
        candidates.append((item, checkpoint_id, distance, interval, method, scanned))
    for n, item in enumerate(stored):
        if item.scan is not None and n not in found_scans:
            item.visits.append(_not_counted(item.scan["id"], "unknown_checkpoint"))
    if not candidates:
        return 0
    return _count(session, patrol, candidates)


def _not_counted(checkpoint_id: uuid.UUID, reason: str) -> dict[str, Any]:
    return {"checkpoint_id": checkpoint_id, "counted": False, "reason": reason}


def _count(session: Session, patrol: Patrol, candidates: list[tuple]) -> int:
    """Counted visits keep each checkpoint's minimum interval from every other counted visit.
    The checkpoints are locked while this is decided, so concurrent batches cannot both count."""
    ids = sorted({c[1] for c in candidates})
    session.execute(
        select(Checkpoint.id).where(Checkpoint.id.in_(ids)).order_by(Checkpoint.id).with_for_update()
    ).all()
    times = [c[0].recorded_at for c in candidates]
    widest = dt.timedelta(minutes=max(c[3] for c in candidates))
    counted_at: dict[uuid.UUID, list[dt.datetime]] = {}
    for checkpoint_id, visited_at in session.execute(
        select(CheckpointVisit.checkpoint_id, CheckpointVisit.visited_at).where(
            CheckpointVisit.checkpoint_id.in_(ids),
            CheckpointVisit.visited_at >= min(times) - widest,
            CheckpointVisit.visited_at <= max(times) + widest,
        )
    ):
        counted_at.setdefault(checkpoint_id, []).append(visited_at)
    new_visits = []
    for item, checkpoint_id, distance, interval, method, scanned in sorted(
        candidates, key=lambda c: c[0].recorded_at
    ):
        gap = dt.timedelta(minutes=interval)
        earlier = counted_at.setdefault(checkpoint_id, [])
        if any(abs(item.recorded_at - t) < gap for t in earlier):
            if scanned:
                item.visits.append(_not_counted(checkpoint_id, "too_soon"))
            continue
        earlier.append(item.recorded_at)
        item.visits.append({"checkpoint_id": checkpoint_id, "counted": True, "reason": None})
        new_visits.append(
            {
                "id": uuid.uuid4(),
                "checkpoint_id": checkpoint_id,
                "patrol_id": patrol.id,
                "volunteer_id": patrol.volunteer_id,
                "client_id": item.client_id,
                "visited_at": item.recorded_at,
                "method": method,
                "distance_m": round(distance, 1),
            }
        )
    if new_visits:
        session.execute(insert(CheckpointVisit), new_visits)
        session.execute(
            COUNT_LATE_VISITS_SQL,
            {
                "checkpoint_ids": [v["checkpoint_id"] for v in new_visits],
                "visited_ats": [v["visited_at"] for v in new_visits],
            },
        )
    return len(new_visits)


# -- the batch -----------------------------------------------------------------------------------


def ingest(session: Session, patrol: Patrol, raw_items: Sequence[Any]) -> list[dict[str, Any]]:
    """Judge, store and count a batch for `patrol` (locked by the caller); the outcomes in
    request order."""
    config = current_app.config
    now = dt.datetime.now(dt.UTC)
    items = parse(raw_items)
    _judge_times(items, patrol, now, partitions.horizon(now, config["CHECKIN_RETENTION_DAYS"]))
    fresh = _mark_batch_duplicates(items)
    if fresh:
        _flag(
            fresh,
            _anchors(session, patrol, fresh),
            config["CHECKIN_POOR_ACCURACY_M"],
            config["CHECKIN_MAX_SPEED_MPS"],
        )
        for item, path in zip(
            fresh, resolve_paths(session, [(i.lon, i.lat) for i in fresh]), strict=True
        ):
            item.path = path
            item.h3_r9 = _h3(item.lon, item.lat)
        _ensure_partitions(session, fresh)
        inserted = _insert(session, patrol, fresh)
        stored = [i for i in fresh if i.client_id in inserted]
        for item in fresh:
            if item.client_id not in inserted:
                item.outcome = "duplicate"
        if stored:
            visits = _visits(session, patrol, stored)
            _update_patrol(session, patrol, stored, visits)
    return [item.answer() for item in items]


def _h3(lon: float, lat: float) -> int:
    return to_bigint(h3.latlng_to_cell(lat, lon, 9))


def _update_patrol(session: Session, patrol: Patrol, stored: list[Item], visits: int) -> None:
    values: dict[str, Any] = {
        "checkin_count": Patrol.checkin_count + len(stored),
        "flagged_count": Patrol.flagged_count + sum(1 for i in stored if i.flags),
        "visit_count": Patrol.visit_count + visits,
    }
    plausible = [i for i in stored if not i.flags & FLAG_IMPLAUSIBLE_SPEED]
    if plausible:
        latest = max(plausible, key=lambda i: i.recorded_at)
        if patrol.last_fix_at is None or latest.recorded_at > patrol.last_fix_at:
            values.update(last_fix_at=latest.recorded_at, last_lon=latest.lon, last_lat=latest.lat)
    if patrol.checkin_count == 0:
        # The patrol is where it began: the area path of its first fix.
        first = min(stored, key=lambda i: i.recorded_at)
        values.update(first.path.as_dict())
    session.execute(update(Patrol).where(Patrol.id == patrol.id).values(**values))
    session.expire(patrol)
