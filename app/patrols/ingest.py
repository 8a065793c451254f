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
import json
import math
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import h3
from marshmallow import ValidationError
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import Boolean, DateTime, Float, Integer, Uuid

from app.areas.schemas import COORD_SYSTEMS
from app.areas.service import deepest_area_sql
from app.core.fields import CLOCK_SKEW
from app.duty.service import follow_checkins_sql
from app.patrols import partitions
from app.patrols.models import (
    FLAG_IMPLAUSIBLE_SPEED,
    FLAG_POOR_ACCURACY,
    MAX_CHECKPOINT_RADIUS_M,
    Checkpoint,
    CheckpointVisit,
    Patrol,
    flag_names,
)
from app.patrols.schemas import CheckInItemSchema
from app.patrols.service import PatrolSettings
from geo.cells import to_bigint
from geo.crs import to_wgs84
from geo.distance import haversine_m

_ITEM = CheckInItemSchema()


@dataclass
class Item:
    """One item of a batch, as the service judges it."""

    client_id: str | None  # as the client sent it, echoed in the answer
    outcome: str = "accepted"
    reason: str | None = None
    detail: str | None = None
    recorded_at: dt.datetime | None = None
    lon: float = 0.0  # pragma: no mutate - set by parse; a rejected item's is never read
    lat: float = 0.0  # pragma: no mutate - set by parse; a rejected item's is never read
    accuracy_m: float | None = None
    scan: dict[str, Any] | None = None
    flags: int = 0
    visits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> uuid.UUID:
        """What the database stores for the client id (see client_key)."""
        assert self.client_id is not None  # accepted items always have one
        return client_key(self.client_id)

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


# Client ids that are not UUIDs are stored as their UUIDv5 in this namespace.
_CLIENT_ID_NAMESPACE = uuid.UUID("5d0c4a43-8d7e-4c35-9a51-2b1f6c3e9a10")
CLIENT_ID_MAX = 64


def client_key(client_id: str) -> uuid.UUID:
    """The stored form of a client id (any string of 1..64 characters the app generates, unique
    within its patrol): a UUID as itself, anything else as its UUIDv5, so the same id always
    finds the same row (a replay is a duplicate) and the column stays a fixed 16 bytes."""
    try:
        return uuid.UUID(client_id)
    except ValueError:
        return uuid.uuid5(_CLIENT_ID_NAMESPACE, client_id)


def _valid_client_id(value: Any) -> bool:
    """1..64 printable characters (no controls, no lone surrogates: it is echoed back)."""
    return type(value) is str and 0 < len(value) <= CLIENT_ID_MAX and value.isprintable()


def _client_id_of(raw: Any) -> str | None:
    client_id = raw.get("client_id") if isinstance(raw, dict) else None
    return client_id if _valid_client_id(client_id) else None


def _errors_text(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, dict):
        return "; ".join(_errors_text(v, f"{prefix}{k}.") for k, v in messages.items())
    if isinstance(messages, list):
        return "; ".join(f"{prefix.rstrip('.')}: {m}" for m in messages if isinstance(m, str))
    return f"{prefix.rstrip('.')}: {messages}"


_PLAIN_KEYS = frozenset({"client_id", "recorded_at", "location"})
_PLAIN_LOCATION_KEYS = frozenset({"lon", "lat", "coord_system", "accuracy_m"})
_MAX_ACCURACY_M = 100_000
_RECORDED_AT = _ITEM.fields["recorded_at"]
_OUT_OF_RANGE = "lon must be -180..180 and lat -90..90."


def _number(value: Any) -> bool:
    """A JSON number a float holds exactly enough: finite floats, and integers no larger than
    the largest coordinate or accuracy (math.isfinite(10**400) raises OverflowError)."""
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is int and abs(value) <= _MAX_ACCURACY_M


def _in_range(lon: float, lat: float) -> bool:
    return -180 <= lon <= 180 and -90 <= lat <= 90


def _plain(raw: Any) -> dict[str, Any] | None:
    """The common item (no scan; JSON numbers and strings as the app sends them) read without
    the schema, which costs more than the rest of the batch together; None for anything else,
    which the schema then judges (and explains). Accepts only what the schema accepts, and
    answers as it does: the location in WGS-84."""
    if type(raw) is not dict or not raw.keys() <= _PLAIN_KEYS:
        return None
    location = raw.get("location")
    if type(location) is not dict or not location.keys() <= _PLAIN_LOCATION_KEYS:
        return None
    try:
        client_id = raw["client_id"]
        if not _valid_client_id(client_id):
            return None
        recorded_at = dt.datetime.fromisoformat(raw["recorded_at"])
        lon, lat = location["lon"], location["lat"]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    accuracy = location.get("accuracy_m")
    system = location.get("coord_system", "wgs84")
    if recorded_at.tzinfo is None:
        return None
    try:
        recorded_at = _RECORDED_AT.checked(recorded_at)  # the schema's own bounds
    except ValidationError:
        return None
    if (
        not (_number(lon) and _number(lat) and _in_range(lon, lat))
        or not (accuracy is None or (_number(accuracy) and 0 <= accuracy <= _MAX_ACCURACY_M))
        or system not in COORD_SYSTEMS
    ):
        return None
    if system != "wgs84":
        lon, lat = to_wgs84(lon, lat, system)
    return {
        "client_id": client_id,
        "recorded_at": recorded_at,
        "location": {"lon": float(lon), "lat": float(lat), "accuracy_m": accuracy},
        "checkpoint": None,
    }


def _out_of_range_only(messages: Any, raw: Any) -> bool:
    """The schema refused the item only because its coordinates, numbers, are out of range: a
    reason of its own (`coordinates_out_of_range`) rather than `invalid`."""
    if not isinstance(messages, dict) or messages.keys() != {"location"}:
        return False
    wrong = messages["location"]
    if not isinstance(wrong, dict) or not wrong or not wrong.keys() <= {"lon", "lat"}:
        return False
    location = raw.get("location") if isinstance(raw, dict) else None
    return isinstance(location, dict) and all(_finite(location.get(key)) for key in wrong)


def _finite(value: Any) -> bool:
    """A JSON number that is a number (10**400 and 1e400 are not: they are `invalid`)."""
    if type(value) not in (int, float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def parse(raw_items: Sequence[Any]) -> list[Item]:
    """Validate each raw item on its own; a malformed one becomes a rejected Item."""
    items = []
    for raw in raw_items:
        data = _plain(raw)
        if data is None:
            try:
                data = _ITEM.load(raw)
            except ValidationError as exc:
                item = Item(client_id=_client_id_of(raw))
                if _out_of_range_only(exc.messages, raw):
                    item.reject("coordinates_out_of_range", _OUT_OF_RANGE)
                else:
                    item.reject("invalid", _errors_text(exc.messages))
                items.append(item)
                continue
        location = data["location"]
        item = Item(
            client_id=data["client_id"],
            recorded_at=data["recorded_at"],
            accuracy_m=location["accuracy_m"],
            scan=data["checkpoint"],
        )
        item.lon, item.lat = location["lon"], location["lat"]
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
        if item.key in seen:
            item.outcome = "duplicate"
            continue
        seen.add(item.key)
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


def _flag(
    fresh: list[Item], anchors: list[tuple], poor_accuracy_m: float, max_speed: float
) -> None:
    """Flag poor accuracy, and speeds from the previous plausible fix (stored or in the batch)
    beyond `max_speed` m/s. A flagged fix is not the reference for the next one, so one jump
    does not also flag the return to the true position."""
    events = [(at, 0, lon, lat, None) for at, lon, lat in anchors]  # pragma: no mutate
    # Any order key for the items is alike (even the anchors' 0: the sort is stable).
    mine = [(f.recorded_at, 1, f.lon, f.lat, n) for n, f in enumerate(fresh)]  # pragma: no mutate
    events += mine
    events.sort(key=lambda e: (e[0], e[1]))  # pragma: no mutate - anchors lead; a stable sort
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


def _ensure_partitions(session: Session, fresh: list[Item]) -> None:
    """The partitions of the batch's months exist: made ahead by the daily job, or made here,
    inside the request's transaction, should the job not have run (a concurrent request or the
    job making the same month is waited for: partitions.ensure_months). Only months seen to
    exist are cached in the process: a partition made by a request that then rolled back is
    looked for again by the next one."""
    months = {partitions.month_of(i.recorded_at) for i in fresh}
    if months <= _known_months:
        return
    existing = partitions.existing_months(session)
    _known_months.update(existing & months)
    missing = months - existing
    if missing:
        partitions.ensure_months(session, missing)


# -- the insert ----------------------------------------------------------------------------------

# One statement per batch: resolve every fix's area path (the rule of
# app.areas.service.deepest_area_sql), insert what is new, bring the patrol's counts and last fix
# up to date, and find the checkpoints each new fix is near (or scanned). Duplicates of stored
# rows fall to ON CONFLICT and come back with `stored` false.
INGEST_SQL = text(
    f"""
    WITH guard AS (
        -- The batch was judged against the patrol as read: unlocked when `optimistic`, so the
        -- row must still be as it was (no batch in between), else nothing is written.
        SELECT p.id FROM patrols p
        WHERE p.id = :patrol_id
          AND (NOT :optimistic OR (p.checkin_count = :seen_count AND p.ended_at IS NULL
                                   AND p.last_fix_at IS NOT DISTINCT FROM :seen_last_fix_at))
        FOR UPDATE
    ), input AS (
        SELECT i.*, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326) AS geom
        FROM json_to_recordset(CAST(:rows AS json)) AS i(
            n int, client_id uuid, recorded_at timestamptz, lon float8, lat float8,
            accuracy_m float8, flags int2, checkpoint_id uuid, scan_method text, h3_r9 int8)
    ), located AS (
        SELECT input.*, a.district_id, a.subdistrict_id, a.community_id,
               CASE WHEN a.level = 'grid_cell' THEN a.id END AS grid_cell_id
        FROM input LEFT JOIN areas a ON a.id = {deepest_area_sql("input.geom")}
    ), near_any AS (
        -- A visit takes more statements than this one: an optimistic batch near a checkpoint
        -- writes nothing and goes the locked way.
        SELECT :optimistic AND EXISTS (
            SELECT 1 FROM located JOIN checkpoints c
              ON c.active AND ST_DWithin(c.geog, located.geom::geography, {MAX_CHECKPOINT_RADIUS_M})
             AND ST_DWithin(c.geog, located.geom::geography, c.radius_m)
        ) AS found
    ), stored AS (
        INSERT INTO checkins (patrol_id, client_id, recorded_at, volunteer_id, geom, accuracy_m,
                              flags, checkpoint_id, scan_method, district_id, subdistrict_id,
                              community_id, grid_cell_id, h3_r9)
        SELECT :patrol_id, client_id, recorded_at, :volunteer_id, geom, accuracy_m, flags,
               checkpoint_id, scan_method, district_id, subdistrict_id, community_id,
               grid_cell_id, h3_r9
        FROM located
        WHERE EXISTS (SELECT 1 FROM guard) AND NOT (SELECT found FROM near_any)
        ON CONFLICT DO NOTHING
        RETURNING client_id, recorded_at, flags, district_id, subdistrict_id, community_id,
                  grid_cell_id
    ), duty AS ({
        follow_checkins_sql(
            volunteer=":volunteer_id",
            lon=":last_lon",
            lat=":last_lat",
            at=":last_at",
            stored="EXISTS (SELECT 1 FROM stored)",
        )
    }
    ), first_fix AS (
        SELECT * FROM stored ORDER BY recorded_at LIMIT 1
    ), patrol AS (
        UPDATE patrols p SET
            checkin_count = p.checkin_count + (SELECT count(*) FROM stored),
            flagged_count = p.flagged_count + (SELECT count(*) FROM stored WHERE flags <> 0),
            last_fix_at = CASE WHEN p.last_fix_at IS NULL OR p.last_fix_at < :last_at
                               THEN :last_at ELSE p.last_fix_at END,
            last_lon = CASE WHEN p.last_fix_at IS NULL OR p.last_fix_at < :last_at
                            THEN :last_lon ELSE p.last_lon END,
            last_lat = CASE WHEN p.last_fix_at IS NULL OR p.last_fix_at < :last_at
                            THEN :last_lat ELSE p.last_lat END,
            district_id = CASE WHEN p.checkin_count = 0 THEN f.district_id ELSE p.district_id END,
            subdistrict_id = CASE WHEN p.checkin_count = 0 THEN f.subdistrict_id
                                  ELSE p.subdistrict_id END,
            community_id = CASE WHEN p.checkin_count = 0 THEN f.community_id
                                ELSE p.community_id END,
            grid_cell_id = CASE WHEN p.checkin_count = 0 THEN f.grid_cell_id
                                ELSE p.grid_cell_id END,
            updated_at = now()
        FROM first_fix f
        WHERE p.id = :patrol_id
        RETURNING p.id
    )
    SELECT located.n, stored.client_id IS NOT NULL AS stored, near.checkpoints,
           (SELECT count(*) FROM patrol) AS updated,
           (SELECT count(*) FROM guard) = 1 AND NOT (SELECT found FROM near_any) AS went_in
    FROM located
    LEFT JOIN stored ON stored.client_id = located.client_id
    LEFT JOIN LATERAL (
        SELECT json_agg(json_build_array(
                   c.id, c.radius_m, c.min_interval_minutes, c.code_secret,
                   ST_Distance(c.geog, located.geom::geography))) AS checkpoints
        FROM checkpoints c
        WHERE stored.client_id IS NOT NULL AND NOT :optimistic AND c.active
          AND (c.id = located.checkpoint_id
               OR (ST_DWithin(c.geog, located.geom::geography, {MAX_CHECKPOINT_RADIUS_M})
                   AND ST_DWithin(c.geog, located.geom::geography, c.radius_m)))
    ) near ON true
    ORDER BY located.n
    """  # noqa: S608 - formatted with constants, never input
).bindparams(
    bindparam("patrol_id", type_=Uuid),
    bindparam("volunteer_id", type_=Uuid),
    bindparam("last_at", type_=DateTime(timezone=True)),
    bindparam("last_lon", type_=Float),
    bindparam("last_lat", type_=Float),
    bindparam("optimistic", type_=Boolean),
    bindparam("seen_count", type_=Integer),
    bindparam("seen_last_fix_at", type_=DateTime(timezone=True)),
)


def _rows_json(fresh: list[Item]) -> str:
    return json.dumps(
        [
            {
                "n": n,
                "client_id": str(i.key),
                "recorded_at": i.recorded_at.isoformat(),
                "lon": i.lon,
                "lat": i.lat,
                "accuracy_m": i.accuracy_m,
                "flags": i.flags,
                "checkpoint_id": str(i.scan["id"]) if i.scan else None,
                "scan_method": i.scan["method"] if i.scan else None,
                "h3_r9": _h3(i.lon, i.lat),
            }
            for n, i in enumerate(fresh)
        ]
    )


def _store(
    session: Session, patrol: Patrol, fresh: list[Item], *, optimistic: bool
) -> list[tuple[Item, list]] | None:
    """Insert the fresh items and update the patrol, in one statement; the items that went in
    (the rest were stored already: replays), each with the checkpoints it is near or scanned.
    `optimistic`: `patrol` was read without a lock; None when the statement wrote nothing
    because the patrol changed meanwhile or a fix is near a checkpoint."""
    plausible = [i for i in fresh if not i.flags & FLAG_IMPLAUSIBLE_SPEED]
    latest = max(plausible, key=lambda i: i.recorded_at) if plausible else None
    rows = session.execute(
        INGEST_SQL,
        {
            "rows": _rows_json(fresh),
            "patrol_id": patrol.id,
            "volunteer_id": patrol.volunteer_id,
            "last_at": latest.recorded_at if latest else None,
            "last_lon": latest.lon if latest else None,
            "last_lat": latest.lat if latest else None,
            "optimistic": optimistic,
            "seen_count": patrol.checkin_count,
            "seen_last_fix_at": patrol.last_fix_at,
        },
    ).all()
    # `went_in` is the statement's: every row has the same.
    went_in = rows[0].went_in if rows else True  # pragma: no mutate - rows[0] is rows[-1]
    if not went_in:
        return None
    stored = []
    for n, was_stored, near, _updated, _went_in in rows:
        if was_stored:
            stored.append((fresh[n], near or []))
        else:
            fresh[n].outcome = "duplicate"
    return stored


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


def _visits(session: Session, patrol: Patrol, stored: list[tuple[Item, list]]) -> None:
    """Count the visits the stored items make (each with the checkpoints it is near or
    scanned); the patrol's visit count follows."""
    candidates = []  # (item, checkpoint_id, distance, interval, method, scanned)
    for item, near in stored:
        scan_found = False
        for checkpoint_id, radius_m, interval, code_secret, distance in near:
            checkpoint_id = uuid.UUID(checkpoint_id)
            scanned = item.scan is not None and item.scan["id"] == checkpoint_id
            if item.scan is not None and not scanned:
                continue  # a scan credits the checkpoint scanned, not others near it
            if scanned:
                scan_found = True
                # A scan credits one checkpoint: `break` would skip the same others.
                if not _scan_valid(item, code_secret):
                    item.visits.append(_not_counted(checkpoint_id, "invalid_code"))
                    continue  # pragma: no mutate
                if distance > radius_m:
                    item.visits.append(_not_counted(checkpoint_id, "outside_radius"))
                    continue  # pragma: no mutate
            method = item.scan["method"] if scanned else "gps"
            candidates.append((item, checkpoint_id, distance, interval, method, scanned))
        if item.scan is not None and not scan_found:
            item.visits.append(_not_counted(item.scan["id"], "unknown_checkpoint"))
    if candidates:
        counted = _count(session, patrol, candidates)
        if counted:
            session.execute(
                update(Patrol)
                .where(Patrol.id == patrol.id)
                .values(visit_count=Patrol.visit_count + counted)
            )


def _not_counted(checkpoint_id: uuid.UUID, reason: str) -> dict[str, Any]:
    return {"checkpoint_id": checkpoint_id, "counted": False, "reason": reason}


def _count(session: Session, patrol: Patrol, candidates: list[tuple]) -> int:
    """Counted visits keep each checkpoint's minimum interval from every other counted visit.
    The checkpoints are locked while this is decided, so concurrent batches cannot both count."""
    ids = sorted({c[1] for c in candidates})
    session.execute(
        select(Checkpoint.id)
        .where(Checkpoint.id.in_(ids))
        .order_by(Checkpoint.id)
        .with_for_update()
    ).all()
    times = [c[0].recorded_at for c in candidates]
    widest = dt.timedelta(minutes=max(c[3] for c in candidates))
    counted_at: dict[uuid.UUID, list[dt.datetime]] = {}
    for checkpoint_id, visited_at in session.execute(
        select(CheckpointVisit.checkpoint_id, CheckpointVisit.visited_at).where(
            CheckpointVisit.checkpoint_id.in_(ids),
            CheckpointVisit.visited_at >= min(times) - widest,  # pragma: no mutate - at widest,
            CheckpointVisit.visited_at <= max(times) + widest,  # pragma: no mutate - not too soon
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
                "client_id": item.key,
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


def ingest(
    session: Session,
    patrol: Patrol,
    raw_items: Sequence[Any],
    settings: PatrolSettings,
    *,
    optimistic: bool = False,
) -> list[dict[str, Any]] | None:
    """Judge, store and count a batch for `patrol`; the outcomes in request order.

    `patrol` is locked by the caller, or with `optimistic` read without a lock on a connection
    in autocommit: the batch then goes in with one statement, which checks that the patrol is
    still as read. None (nothing written) when that one statement cannot do it all: the patrol
    changed meanwhile, a fix is near a checkpoint or scans one (visits take more statements),
    the patrol has ended (its summary follows), or a month's partition is not known to exist.
    The caller then locks the patrol and calls again."""
    now = dt.datetime.now(dt.UTC)
    items = parse(raw_items)
    _judge_times(items, patrol, now, partitions.horizon(now, settings.checkin_retention_days))
    fresh = _mark_batch_duplicates(items)
    if fresh and optimistic and not _one_statement_will_do(patrol, fresh):
        return None
    if fresh:
        # Before anything reads check-ins: a month's partition is made under ACCESS EXCLUSIVE on
        # `checkins`, and a transaction that read them (the anchors) before waiting for another
        # maker of the month would deadlock with it.
        _ensure_partitions(session, fresh)
        _flag(
            fresh,
            _anchors(session, patrol, fresh),
            settings.checkin_poor_accuracy_m,
            settings.checkin_max_speed_mps,
        )
        stored = _store(session, patrol, fresh, optimistic=optimistic)
        if stored is None:
            return None
        if any(near or item.scan for item, near in stored):
            _visits(session, patrol, stored)
        # What the statement changed is read again on next access; the rest (status, times)
        # stays, so a caller's look at the status costs no query.
        session.expire(patrol, _PATROL_COUNTS)
    return [item.answer() for item in items]


def _one_statement_will_do(patrol: Patrol, fresh: list[Item]) -> bool:
    return (
        patrol.status != "ended"
        and not any(item.scan for item in fresh)
        and {partitions.month_of(i.recorded_at) for i in fresh} <= _known_months
    )


_PATROL_COUNTS = [
    "checkin_count",
    "flagged_count",
    "visit_count",
    "last_fix_at",
    "last_lon",
    "last_lat",
    "district_id",
    "subdistrict_id",
    "community_id",
    "grid_cell_id",
    "updated_at",
]


def _h3(lon: float, lat: float) -> int:
    return to_bigint(h3.latlng_to_cell(lat, lon, 9))
