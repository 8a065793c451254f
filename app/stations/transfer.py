"""Station import (CSV or GeoJSON; dry run; per-row errors; idempotent by external reference)
and export (CSV or GeoJSON), for the API and the CLI alike."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from geoalchemy2.shape import to_shape
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.core import untrusted
from app.core.errors import DomainError, NotFound
from app.core.i18n import _
from app.stations import service
from app.stations.models import STATUSES, Station
from app.stations.schemas import StationCreateSchema
from geo.crs import CoordSystem

CSV_COLUMNS = (
    "external_ref", "name", "type", "lon", "lat", "address", "phone", "operator", "amenities",
    "opening_hours", "hours_exceptions", "capacity", "status",
)  # fmt: skip


class ImportFormatError(ValueError):
    """The file as a whole cannot be read (not CSV with the right header, not GeoJSON)."""


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"row": n, "detail": "..."}
    dry_run: bool = False


def _csv_rows(text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"external_ref", "name", "type", "lon", "lat", "opening_hours"} - set(
        reader.fieldnames or []
    )
    if missing:
        raise ImportFormatError(
            _("the CSV header lacks: %(value)s", value=", ".join(sorted(missing)))
        )
    try:
        return list(enumerate(reader, start=2))  # line 1 is the header
    except csv.Error as exc:
        raise ImportFormatError(
            _("line %(line_num)s: %(exc)s", line_num=reader.line_num, exc=exc)
        ) from exc


def _csv_values(row: dict[str, Any]) -> dict[str, Any]:
    """CSV cells as the schema takes them: amenities separated by ';', hours as JSON or '24h'."""
    hours_cell = (row.get("opening_hours") or "").strip()
    if hours_cell.lower() == "24h":
        hours_value: Any = {
            d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        }
    else:
        hours_value = untrusted.loads(hours_cell) if hours_cell else None
    values = {
        "external_ref": row.get("external_ref") or None,
        "name": row.get("name"),
        "type": row.get("type"),
        "location": {"lon": row.get("lon"), "lat": row.get("lat")},
        "address": row.get("address") or None,
        "phone": row.get("phone") or None,
        "operator": row.get("operator") or None,
        "amenities": [a.strip() for a in (row.get("amenities") or "").split(";") if a.strip()],
        "opening_hours": hours_value,
        "hours_exceptions": untrusted.loads(row["hours_exceptions"])
        if row.get("hours_exceptions")
        else [],
        "capacity": row.get("capacity") or None,
        "status": row.get("status") or None,
    }
    return values


def _geojson_rows(text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        document = untrusted.loads(text, check_text=False)  # judged row by row
    except ValueError as exc:
        raise ImportFormatError(_("not JSON: %(exc)s", exc=exc)) from exc
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ImportFormatError(_("a GeoJSON import is a FeatureCollection"))
    features = document.get("features")
    if not isinstance(features, list):
        raise ImportFormatError(_("the FeatureCollection has no features list"))
    return [(index, _feature_values(feature)) for index, feature in enumerate(features)]


def _feature_values(feature: Any) -> dict[str, Any]:
    """A feature's properties plus its point as `location`, or an `__error__` saying why not."""
    if not isinstance(feature, dict):
        return {"__error__": "a feature must be an object"}
    properties = feature.get("properties") or {}
    geometry = feature.get("geometry")
    if not isinstance(properties, dict):
        return {"__error__": "a feature's properties must be an object"}
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if (
        not isinstance(geometry, dict)
        or geometry.get("type") != "Point"
        or not isinstance(coordinates, list)
        or len(coordinates) < 2
    ):
        return {"__error__": "a station's geometry is a Point with [lon, lat]"}
    values = {k: v for k, v in properties.items() if v is not None or k == "capacity"}
    values["location"] = {"lon": coordinates[0], "lat": coordinates[1]}
    return values


def import_stations(
    session: Session,
    actor: User | None,
    text: str,
    *,
    fmt: str,
    source_crs: CoordSystem = CoordSystem.WGS84,
    dry_run: bool = False,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> ImportReport:
    """Create or update stations by `external_ref`; a bad row is reported (CSV line number or
    feature index) and skipped, the others go on. With `dry_run`, nothing is kept. `actor` None
    is the operator's CLI (no jurisdiction); otherwise every station must be inside the actor's."""
    rows = _csv_rows(text) if fmt == "csv" else _geojson_rows(text)
    report = ImportReport(dry_run=dry_run)
    schema = StationCreateSchema()
    outer = session.begin_nested()
    for number, raw in rows:
        try:
            if "__error__" in raw:
                raise DomainError(raw["__error__"])
            if refused := untrusted.refused_text(raw):
                raise DomainError(f"{untrusted.BAD_TEXT_DETAIL} ({', '.join(refused)})")
            values = _csv_values(raw) if fmt == "csv" else dict(raw)
            # `status` (as exports write it) applies to known stations: it can reopen one.
            status = {"status": s} if (s := values.pop("status", None)) in STATUSES else {}
            if isinstance(values.get("location"), dict):
                values["location"]["coord_system"] = source_crs.value
            loaded = schema.load(values)
            if not loaded.get("external_ref"):
                raise DomainError(_("every station needs an external_ref (imports update by it)"))
            with session.begin_nested():
                existing = session.scalar(
                    select(Station).where(Station.external_ref == loaded["external_ref"])
                )
                if existing is None:
                    service.create_station(session, actor, loaded)
                    report.created += 1
                else:
                    if actor is not None:
                        service.get_managed_station(session, actor, existing.id)
                    service.update_station(session, actor, existing, {**loaded, **status})
                    report.updated += 1
        except ValidationError as exc:
            report.errors.append(
                {"row": number, "detail": json.dumps(exc.messages, ensure_ascii=False)}
            )
        except NotFound:
            # One answer whether the reference belongs to another area or the place lies
            # outside: an import must not tell staff what exists beyond their jurisdiction.
            report.errors.append({"row": number, "detail": "outside your jurisdiction"})
        except (DomainError, ValueError, TypeError) as exc:
            report.errors.append(
                {"row": number, "detail": getattr(exc, "detail", None) or str(exc)}
            )
        on_progress(1)
    if dry_run:
        outer.rollback()
    else:
        outer.commit()
    return report


def export_rows(session: Session, query) -> Iterator[dict[str, Any]]:
    for station in session.scalars(query):
        point = to_shape(station.geom)
        yield {
            "external_ref": station.external_ref or "",
            "name": station.name,
            "type": station.type,
            "lon": round(point.x, 7),
            "lat": round(point.y, 7),
            "address": station.address or "",
            "phone": station.phone or "",
            "operator": station.operator or "",
            "amenities": ";".join(station.amenities),
            "opening_hours": json.dumps(station.opening_hours, ensure_ascii=False),
            "hours_exceptions": json.dumps(station.hours_exceptions, ensure_ascii=False),
            "capacity": "" if station.capacity is None else station.capacity,
            "status": station.status,
        }


def export_csv(session: Session, query) -> Iterator[str]:
    """UTF-8 with a byte-order mark, so that Excel opens the Chinese text right."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    buffer.write("\ufeff")
    writer.writeheader()
    for row in export_rows(session, query):
        writer.writerow(row)
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_geojson(session: Session, query) -> Iterator[str]:
    yield '{"type": "FeatureCollection", "features": ['
    for index, row in enumerate(export_rows(session, query)):
        # Empty CSV cells are nulls in GeoJSON, so that an export imports back as it was.
        properties = {
            k: (None if v == "" else v) for k, v in row.items() if k not in ("lon", "lat")
        }
        properties["amenities"] = [a for a in row["amenities"].split(";") if a]
        properties["opening_hours"] = json.loads(row["opening_hours"])
        properties["hours_exceptions"] = json.loads(row["hours_exceptions"])
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
            "properties": properties,
        }
        yield ("," if index else "") + json.dumps(feature, ensure_ascii=False)
    yield "]}"
