"""The demo data set: real Chaoyang divisions (adcode by Vonng, CC BY 4.0; see data/ATTRIBUTION.md),
approximate polygons derived from them, a few grids and teams, and one account per role.

Loading is idempotent: what exists (by code, phone or name) is left as it is. Never in production.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from geoalchemy2 import WKTElement
from shapely.geometry import shape
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.areas import service as areas
from app.areas.models import Area, AreaLevel
from app.auth import service as accounts
from app.auth.models import User, phone_lookup
from app.auth.validators import id_check_character
from app.core.auth import ADMIN, COMMUNITY_ADMIN, GRID_STAFF, POLICE_LIAISON, VOLUNTEER
from app.patrols import checkpoints
from app.patrols.models import Checkpoint
from app.patrols.schedule import DAYS
from app.stations import service as stations_service
from app.stations.models import Station
from app.teams import service as teams
from app.teams.models import Team
from geo.crs import CoordSystem, geometry_to_wgs84, to_wgs84

DATA = Path(__file__).parent / "data"
SOURCE = "adcode by Vonng (CC BY 4.0)"
DERIVED = f"derived from centre points of {SOURCE}; approximate"
DISTRICT_CODE = "110105000000"
DEMO_PASSWORD = "Qunfang-demo-2026"  # noqa: S105 - printed by `make run`; dev data only
# Communities of 建外街道 (Jianwai) that get a generated 250 m grid.
GRID_COMMUNITIES = ("110105001024", "110105001025", "110105001026")
GRID_CELL_SIZE_M = 250


@dataclass(frozen=True)
class Division:
    code: str
    parent: str
    name: str
    level: str  # county / town / village
    urban_rural: str | None
    lon: float | None  # WGS-84
    lat: float | None


def read_divisions() -> list[Division]:
    """The CSV's rows (no header; columns in data/ATTRIBUTION.md's source), centres in WGS-84."""
    divisions = []
    with (DATA / "chaoyang-divisions-gcj02.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle):
            code, parent, name, level, ur_code, lon, lat = (
                row[0],
                row[1],
                row[2],
                row[3],
                row[8],
                row[12],
                row[13],
            )
            position = to_wgs84(float(lon), float(lat), CoordSystem.GCJ02) if lon else (None, None)
            urban_rural = (
                {"1": "urban", "2": "rural"}.get(ur_code[:1]) if level == "village" else None
            )
            divisions.append(Division(code, parent, name, level, urban_rural, *position))
    return divisions


def demo_id_number(serial: int) -> str:
    """A checksum-valid, obviously fictional resident ID number (Chaoyang, born 1990-01-01)."""
    first17 = f"11010519900101{serial:03d}"
    return first17 + id_check_character(first17)


DEMO_ACCOUNTS = (
    # phone, name, roles, jurisdiction codes, home community
    ("13800000001", "演示管理员", [ADMIN], [], None),
    ("13800000002", "演示社区管理员", [COMMUNITY_ADMIN], ["110105001000"], None),
    ("13800000003", "演示网格员", [GRID_STAFF], ["110105001024"], None),
    ("13800000004", "演示民警联络员", [POLICE_LIAISON], ["110105001000"], None),
    ("13800000005", "演示志愿者", [VOLUNTEER], [], "110105001024"),
)


def load_areas(session: Session, log=print) -> None:
    divisions = read_divisions()
    if session.scalar(select(func.count()).where(Area.level == AreaLevel.COMMUNITY)) >= sum(
        1 for d in divisions if d.level == "village"
    ):
        log("areas: already loaded")
        return
    outline = json.loads((DATA / "chaoyang-boundary-gcj02.json").read_text(encoding="utf-8"))
    district = areas.upsert_area(
        session,
        code=DISTRICT_CODE,
        name="朝阳区",
        level=AreaLevel.DISTRICT,
        parent=None,
        geometry=geometry_to_wgs84(shape(outline), CoordSystem.GCJ02),
        source=SOURCE,
    )
    children = defaultdict(list)
    for division in divisions:
        children[division.parent].append(division)

    def seed(division: Division) -> areas.ChildSeed:
        return areas.ChildSeed(
            division.code, division.name, division.lon, division.lat, division.urban_rural
        )

    # Bottom up, from every known community point of the district: a sub-district's own centre
    # is often unknown (建外's is), and a polygon drawn around a guessed one put real community
    # points in the wrong sub-district.
    areas.derive_from_community_points(
        session,
        district,
        [(seed(t), [seed(v) for v in children[t.code]]) for t in children[DISTRICT_CODE]],
        source=DERIVED,
    )
    for code in GRID_COMMUNITIES:
        areas.cut_grid(
            session,
            areas.get_by_code(session, code),
            GRID_CELL_SIZE_M,
            source="generated demo grid",
        )
    # Fresh statistics, so that point lookups use the pieces' index from the first request.
    session.execute(text("ANALYZE areas, area_pieces"))
    counts = dict(session.execute(select(Area.level, func.count()).group_by(Area.level)).all())
    log(f"areas: {counts}")


def load_accounts(session: Session, log=print) -> list[tuple[str, str]]:
    created = []
    settings = accounts.AuthSettings.from_config(current_app.config)
    for serial, (phone, name, roles, codes, home) in enumerate(DEMO_ACCOUNTS, start=1):
        if session.scalar(select(User.id).where(User.phone_hmac == phone_lookup(phone))):
            continue
        accounts.create_account(
            session,
            None,
            {
                "phone": phone,
                "password": DEMO_PASSWORD,
                "real_name": name,
                "id_number": demo_id_number(serial),
                "id_number_consent": True,
                "roles": roles,
                "jurisdiction": [areas.get_by_code(session, c).id for c in codes],
                "home_community_id": areas.get_by_code(session, home).id if home else None,
            },
            settings,
        )
        created.append((phone, ",".join(roles)))
    log(f"accounts: {len(created)} created")
    return created


DEMO_TEAMS = (
    # name, kind, service type, area code, brand, filing status
    ("朝阳群众建外分会", "association_branch", None, "110105001000", False, "filed"),
    ("南郎家园志愿服务工作站", "workstation", None, "110105001024", False, "filed"),
    ("南郎家园平安巡逻队", "patrol_team", None, "110105001024", False, "unfiled"),
    ("南郎家园调解会", "community_organisation", "mediation", "110105001024", True, "filed"),
    (
        "南郎家园为老服务队",
        "community_organisation",
        "elderly_care",
        "110105001024",
        False,
        "filed",
    ),
    (
        "南郎家园邻里互助社",
        "community_organisation",
        "mutual_aid",
        "110105001024",
        False,
        "unfiled",
    ),
    ("北郎家园文化队", "community_organisation", "culture", "110105001025", True, "filed"),
)


def load_teams(session: Session, log=print) -> None:
    admin = session.scalar(select(User).where(User.phone_hmac == phone_lookup(DEMO_ACCOUNTS[0][0])))
    created = 0
    for name, kind, service_type, code, brand, filing in DEMO_TEAMS:
        if session.scalar(select(Team.id).where(Team.name == name)):
            continue
        teams.create_team(
            session,
            admin,
            {
                "name": name,
                "kind": kind,
                "service_type": service_type,
                "area_id": areas.get_by_code(session, code).id,
                "brand": brand,
                "filing_status": filing,
            },
        )
        created += 1
    log(f"teams: {created} created")


WEEKDAYS_9_TO_5 = {
    **{day: [["08:30", "17:30"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "sat": [["09:00", "12:00"]],
}
ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
DAYTIME = {day: [["07:00", "21:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
GENERATED_STATIONS = (
    # type, how many, hours, amenities, name
    (
        "rider_station",
        200,
        ALL_DAY,
        ["charging", "hot_water", "microwave", "rest_area", "restroom"],
        "骑手驿站（演示生成）",
    ),
    (
        "volunteer_post",
        100,
        DAYTIME,
        ["drinking_water", "first_aid_kit", "umbrella"],
        "志愿者服务岗（演示生成）",
    ),
)


def load_stations(session: Session, log=print) -> None:
    """Community service centres at the real community centre points, plus generated rider
    stations and volunteer posts (marked `generated`, named as such)."""
    if session.scalar(
        select(func.count()).select_from(Station).where(Station.external_ref.like("demo:%"))
    ):
        log("stations: already loaded")
        return
    stations: list[Station] = []
    for division in read_divisions():
        if division.level == "village" and division.lon is not None:
            stations.append(
                Station(
                    external_ref=f"demo:centre:{division.code}",
                    type="community_service_centre",
                    name=f"{division.name.removesuffix('居委会').removesuffix('村委会')}服务站",
                    geom=WKTElement(f"POINT({division.lon} {division.lat})", srid=4326),
                    amenities=["drinking_water", "restroom", "wifi"],
                    opening_hours=WEEKDAYS_9_TO_5,
                )
            )
    district = select(Area.geom).where(Area.code == DISTRICT_CODE).scalar_subquery()
    # A seed per kind, so that posts and rider stations stand in different places.
    for seed, (kind, count, opening, amenities, name) in enumerate(GENERATED_STATIONS, start=7):
        points = (
            session.execute(
                select(
                    func.ST_AsText(
                        func.ST_Dump(func.ST_GeneratePoints(district, count + 20, seed)).geom
                    )
                )
            )
            .scalars()
            .all()[:count]
        )
        stations += [
            Station(
                external_ref=f"demo:{kind}:{n}",
                type=kind,
                name=f"{name} {n}",
                geom=WKTElement(point, srid=4326),
                amenities=amenities,
                opening_hours=opening,
                generated=True,
            )
            for n, point in enumerate(points, start=1)
        ]
    for station in stations:
        session.add(station)
    session.flush()
    stations_service.locate(session, stations)
    stations_service.refresh_open_periods(session, stations)
    log(f"stations: {len(stations)} created")


NIGHTLY = {
    "timezone": "Asia/Shanghai",
    "windows": [
        {"days": list(DAYS), "start": "20:00", "end": "22:00", "expected_visits": 1},
        {"days": ["fri", "sat"], "start": "23:00", "end": "01:00", "expected_visits": 1},
    ],
}
DEMO_CHECKPOINTS = (
    # name, WGS-84 lon, lat, radius, schedule
    ("南郎家园东门", 116.459067, 39.908921, 30, NIGHTLY),
    ("南郎家园自行车棚", 116.455619, 39.905178, 25, None),
    ("南郎家园消防通道", 116.455032, 39.907931, 25, NIGHTLY),
)


def load_checkpoints(session: Session, log=print) -> None:
    """A few checkpoints of 南郎家园, made by its demo grid staff (alerts go to them)."""
    staff = session.scalar(select(User).where(User.phone_hmac == phone_lookup(DEMO_ACCOUNTS[2][0])))
    created = 0
    for name, lon, lat, radius_m, schedule in DEMO_CHECKPOINTS:
        if session.scalar(select(Checkpoint.id).where(Checkpoint.name == name)):
            continue
        checkpoints.create(
            session,
            staff,
            {
                "name": name,
                "location": {"lon": lon, "lat": lat, "coord_system": "wgs84"},
                "radius_m": radius_m,
                "schedule": schedule,
                "min_interval_minutes": 10,
            },
        )
        created += 1
    log(f"checkpoints: {created} created")


def load(session: Session, log=print) -> None:
    load_areas(session, log)
    load_accounts(session, log)
    load_teams(session, log)
    load_stations(session, log)
    load_checkpoints(session, log)
