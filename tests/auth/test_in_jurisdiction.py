"""`in_jurisdiction(actor, Model)`, the WHERE clause of every staff list, on each located model.

Rows of each model sit at every level of the area tree (a district, a sub-district, a community, a
grid cell), beside them (a sibling sub-district, community and grid cell) and nowhere (no area
holds the place: every path column NULL). Actors hold grants at each level. The expected rows
come from the areas' parent links, not from the path columns the clause reads: a row is listed
when its area or an area above it is granted.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from geoalchemy2 import WKTElement
from sqlalchemy import select

from app.areas.models import Area
from app.auth.jurisdiction import PATH_KEYS, in_jurisdiction
from app.patrols import partitions
from app.patrols.models import CheckIn, Checkpoint, Patrol
from app.stations.models import Station
from app.tasks.models import Task
from app.tips.models import Tip

NODES = {
    "district": "110105000000",
    "subdistrict": "110105001000",
    "subdistrict_sibling": "110105002000",
    "community": "110105001024",
    "community_sibling": "110105001027",
    "grid_cell": "110105001024-G003",
    "grid_cell_sibling": "110105001024-G001",
}
NOWHERE = "nowhere"
# Who lists: role and granted nodes.
ACTORS = {
    "admin": (["admin"], ()),
    "staff without grants": (["grid_staff"], ()),
    "volunteer": (["volunteer"], ()),
    "district staff": (["community_admin"], ("district",)),
    "subdistrict staff": (["community_admin"], ("subdistrict",)),
    "community staff": (["grid_staff"], ("community",)),
    "grid cell staff": (["grid_staff"], ("grid_cell",)),
    "two levels": (["grid_staff"], ("subdistrict_sibling", "grid_cell")),
    "liaison": (["police_liaison"], ("community",)),
}
NOW = dt.datetime.now(dt.UTC)
POINT = WKTElement("POINT(116.45 39.91)", srid=4326)


def _tip(path, _volunteer) -> Tip:
    return Tip(
        code=uuid.uuid4().hex[:10].upper(),
        category_code="theft",
        description="有人撬车锁",
        address_text="建外",
        priority="normal",
        anonymous=True,
        **path,
    )


def _task(path, _volunteer) -> Task:
    return Task(
        title="协助疏导",
        kind="event_support",
        starts_at=NOW,
        ends_at=NOW + dt.timedelta(hours=2),
        needed=1,
        targeting_mode="named",
        **path,
    )


def _patrol(path, volunteer) -> Patrol:
    return Patrol(
        volunteer_id=volunteer.id,
        kind="walk_along",
        status="ended",
        started_at=NOW - dt.timedelta(hours=1),
        ended_at=NOW,
        **path,
    )


def _checkin(path, volunteer) -> CheckIn:
    return CheckIn(
        patrol_id=uuid.uuid4(),
        client_id=uuid.uuid4(),
        recorded_at=NOW,
        volunteer_id=volunteer.id,
        geom=POINT,
        **path,
    )


def _checkpoint(path, _volunteer) -> Checkpoint:
    return Checkpoint(name="小区东门", geom=POINT, **path)


def _station(path, _volunteer) -> Station:
    return Station(type="rider_station", name="骑手驿站", geom=POINT, opening_hours={}, **path)


# Each model, how to make a row of it, and the column that names a row.
MODELS: dict[type, tuple[Callable, str]] = {
    Tip: (_tip, "id"),
    Task: (_task, "id"),
    Patrol: (_patrol, "id"),
    CheckIn: (_checkin, "client_id"),
    Checkpoint: (_checkpoint, "id"),
    Station: (_station, "id"),
}


@pytest.fixture
def tree(session, area) -> dict[str, Area]:
    return {name: area(code) for name, code in NODES.items()}


def _ancestry(session, area: Area) -> set[uuid.UUID]:
    """The area and every area above it, by the parent links."""
    parents = dict(session.execute(select(Area.id, Area.parent_id)).all())
    seen, at = set(), area.id
    while at is not None:
        seen.add(at)
        at = parents[at]
    return seen


def _expected(session, tree, role: list[str], granted: tuple[str, ...]) -> set[str]:
    if "admin" in role:
        return {*tree, NOWHERE}
    if "volunteer" in role:
        return set()
    grants = {tree[g].id for g in granted}
    return {node for node, area in tree.items() if _ancestry(session, area) & grants}


@pytest.mark.parametrize("model", list(MODELS), ids=[m.__name__ for m in MODELS])
@pytest.mark.parametrize("actor", list(ACTORS))
def test_an_actor_lists_exactly_the_rows_under_its_grants(session, tree, create_user, model, actor):
    make, key = MODELS[model]
    partitions.ensure_months(session, [partitions.month_of(NOW)])
    volunteer = create_user(roles=["volunteer"])
    paths = {node: area.path_ids for node, area in tree.items()}
    paths[NOWHERE] = dict.fromkeys(PATH_KEYS)
    rows = {node: make(path, volunteer) for node, path in paths.items()}
    session.add_all(rows.values())
    session.flush()
    node_of = {getattr(row, key): node for node, row in rows.items()}

    role, granted = ACTORS[actor]
    user = create_user(roles=role, jurisdiction=[NODES[g] for g in granted])
    column = getattr(model, key)
    listed = session.scalars(
        select(column).where(in_jurisdiction(user, model), column.in_(list(node_of)))
    )

    assert {node_of[value] for value in listed} == _expected(session, tree, role, granted)
