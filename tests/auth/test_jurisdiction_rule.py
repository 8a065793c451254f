"""The jurisdiction rule at every level of the area tree.

Grantees hold areas at each level (district, sub-district, community, grid cell, and two levels
at once); objects sit at every level too, inside their grant, beside it, above it and in another
district. The expected answer comes from an oracle that walks the areas' parent links (not the
path columns the rule reads): an object is inside when its area or an ancestor is granted.

Checked against it: `covers()`, the SQL `clause()` (never NULL), its negation `excludes()`, and
every list and detail query that applies the rule (tips, patrols, tasks, clue batches, users,
checkpoints, stations, the grid, coverage and its cells, the audit trail).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box
from sqlalchemy import select, update

from app.areas import service as areas_service
from app.areas.models import Area, AreaLevel
from app.auth.jurisdiction import (
    PATH_KEYS,
    Jurisdiction,
    area_path_columns,
    jurisdiction_of,
)
from app.exports.models import ClueBatch
from app.patrols.models import CheckIn, Checkpoint, Patrol
from app.stations.models import Station
from app.tasks.models import Task
from app.tips.models import Tip
from tests.patrols.conftest import HOME, item
from tests.tips.conftest import JIANWAI, tip_body

# The demo's Chaoyang: a sub-district (建外), one of its communities with grid cells, and their
# neighbours at each level. "X*" is a made-up second district, far away.
DEMO = {
    "D": "110105000000",
    "S": "110105001000",
    "S2": "110105002000",
    "C": "110105001024",
    "C_sib": "110105001027",
    "G": "110105001024-G003",
    "G_sib": "110105001024-G001",
    "G_cousin": "110105001025-G001",
}
FOREIGN = ("XD", "XS", "XC", "XG")
GRANTS = {
    "district": ("D",),
    "subdistrict": ("S",),
    "community": ("C",),
    "grid_cell": ("G",),
    "two levels": ("S2", "G"),
    # Staff given no area yet: a grant set that yields no SQL condition is nowhere (issue #22:
    # "everything" there would list every tip and task to them).
    "no area": (),
}
STAFF_ROLE = "community_admin"  # grid staff rights, and allowed everywhere the rule applies


@dataclass
class Tree:
    areas: dict[str, Area]
    parents: dict[uuid.UUID, uuid.UUID | None] = field(default_factory=dict)

    def ancestry(self, node: str) -> set[uuid.UUID]:
        """The node's area and every area above it, by the parent links."""
        seen, at = set(), self.areas[node].id
        while at is not None:
            seen.add(at)
            at = self.parents[at]
        return seen

    def inside(self, node: str, grant: tuple[str, ...]) -> bool:
        return bool(self.ancestry(node) & {self.areas[g].id for g in grant})

    def path(self, node: str) -> dict[str, uuid.UUID | None]:
        return self.areas[node].path_ids

    @property
    def nodes(self) -> list[str]:
        return list(self.areas)


@pytest.fixture
def tree(session, area) -> Tree:
    areas = {name: area(code) for name, code in DEMO.items()}
    areas["C_other"] = session.scalar(
        select(Area).where(Area.parent_id == areas["S2"].id).order_by(Area.code).limit(1)
    )
    parent = None
    for name, level, size in zip(FOREIGN, AreaLevel, (1.0, 0.5, 0.2, 0.05), strict=True):
        parent = areas_service.upsert_area(
            session,
            code=f"TEST-{name}",
            name=f"测试{name}",
            level=level,
            parent=parent,
            geometry=box(100.0, 30.0, 100.0 + size, 30.0 + size),
            source="test",
        )
        areas[name] = parent
    session.commit()
    parents = dict(session.execute(select(Area.id, Area.parent_id)).all())
    return Tree(areas, parents)


# -- the rule itself -----------------------------------------------------------------------------


def _jurisdiction(tree: Tree, grant: tuple[str, ...]) -> Jurisdiction:
    grants: dict[str, set[uuid.UUID]] = {}
    for name in grant:
        level = AreaLevel(tree.areas[name].level)
        grants.setdefault(PATH_KEYS[list(AreaLevel).index(level)], set()).add(tree.areas[name].id)
    return Jurisdiction(everywhere=False, grants={k: frozenset(v) for k, v in grants.items()})


def _evaluate(session, jurisdiction: Jurisdiction, tree: Tree) -> dict[str, tuple]:
    """(clause, excludes) of every node's path, evaluated by PostgreSQL."""
    paths = sa.values(
        sa.column("node", sa.String),
        *(sa.column(key, sa.Uuid) for key in PATH_KEYS),
        name="paths",
    ).data([(node, *tree.path(node).values()) for node in tree.nodes])
    columns = {key: paths.c[key] for key in PATH_KEYS}
    rows = session.execute(
        select(
            paths.c.node,
            jurisdiction.clause(columns).label("inside"),
            jurisdiction.excludes(columns).label("outside"),
        )
    ).all()
    return {row.node: (row.inside, row.outside) for row in rows}


def _check_rule(session, tree: Tree, grant: tuple[str, ...]) -> None:
    jurisdiction = _jurisdiction(tree, grant)
    evaluated = _evaluate(session, jurisdiction, tree)
    for node in tree.nodes:
        expected = tree.inside(node, grant)
        assert jurisdiction.covers(tree.path(node)) is expected, (grant, node)
        assert evaluated[node] == (expected, not expected), (grant, node, evaluated[node])


@pytest.mark.parametrize("grant", list(GRANTS.values()), ids=list(GRANTS))
def test_clause_excludes_and_covers_agree_at_every_level(session, tree, grant):
    _check_rule(session, tree, grant)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_clause_excludes_and_covers_agree_for_any_set_of_grants(session, tree, data):
    grant = tuple(data.draw(st.sets(st.sampled_from(sorted(tree.nodes)), max_size=4)))
    _check_rule(session, tree, grant)


def test_the_rule_applies_to_areas_themselves(session, tree):
    """`area_path_columns`: an area is inside when it or an area above it is granted."""
    for grant in GRANTS.values():
        jurisdiction = _jurisdiction(tree, grant)
        ids = [a.id for a in tree.areas.values()]
        columns = area_path_columns(Area)
        rows = dict(
            session.execute(
                select(Area.id, jurisdiction.clause(columns)).where(Area.id.in_(ids))
            ).all()
        )
        negated = dict(
            session.execute(
                select(Area.id, jurisdiction.excludes(columns)).where(Area.id.in_(ids))
            ).all()
        )
        for node, row in tree.areas.items():
            assert rows[row.id] is tree.inside(node, grant), (grant, node)
            assert negated[row.id] is (not tree.inside(node, grant)), (grant, node)


def test_nobody_with_no_grant_sees_anything_and_an_admin_sees_everything(
    session, tree, create_user
):
    nowhere = jurisdiction_of(create_user(roles=["grid_staff"]))
    everywhere = jurisdiction_of(create_user(roles=["admin"]))
    for node in tree.nodes:
        assert not nowhere.covers(tree.path(node))
        assert everywhere.covers(tree.path(node))
    assert _evaluate(session, nowhere, tree) == {n: (False, True) for n in tree.nodes}
    assert _evaluate(session, everywhere, tree) == {n: (True, False) for n in tree.nodes}


# -- every query that applies it -----------------------------------------------------------------


@dataclass
class World:
    client: object
    session: object
    tree: Tree
    admin: dict[str, str]
    create_user: Callable
    token_for: Callable

    def place(self, model, object_id, node: str) -> None:
        """Give a row the area path of `node` (the rule reads nothing else)."""
        self.session.execute(
            update(model)
            .where(model.id == uuid.UUID(str(object_id)))
            .values(**self.tree.path(node))
        )
        self.session.commit()

    def get(self, url: str, headers) -> object:
        return self.client.get(url, headers=headers)


def _ids(page) -> set[str]:
    return {row["id"] for row in page.json["items"]}


# Each domain: make(world, node) -> object id; listed(world, headers) -> ids; opens(world,
# headers, id) -> bool (the detail answered 200; outside must be 404, never 403).


def _make_tip(world: World, node: str) -> str:
    response = world.client.post(
        "/api/v1/tips", json=tip_body(), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 201, response.json
    world.place(Tip, response.json["id"], node)
    return response.json["id"]


def _make_patrol(world: World, node: str) -> str:
    volunteer = world.create_user(roles=["volunteer"], home=DEMO["C"])
    headers = world.token_for(volunteer)
    started = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    response = world.client.post(
        "/api/v1/patrols", json={"kind": "walk_along", "started_at": started}, headers=headers
    )
    assert response.status_code == 201, response.json
    patrol_id = response.json["id"]
    fixes = [item(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=m)) for m in (20, 10)]
    answer = world.client.post(
        f"/api/v1/patrols/{patrol_id}/checkins", json={"items": fixes}, headers=headers
    )
    assert answer.status_code == 200, answer.json
    world.place(Patrol, patrol_id, node)
    world.session.execute(
        update(CheckIn)
        .where(CheckIn.patrol_id == uuid.UUID(patrol_id))
        .values(**world.tree.path(node))
    )
    return patrol_id


def _make_task(world: World, node: str) -> str:
    body = {
        "title": "协助疏导",
        "kind": "event_support",
        "location": {"lon": HOME[0], "lat": HOME[1]},
        "radius_m": 500,
        "ends_at": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat(),
        "needed": 1,
        "targeting": {"mode": "radius"},
    }
    response = world.client.post("/api/v1/tasks", json=body, headers=world.admin)
    assert response.status_code == 201, response.json
    world.place(Task, response.json["id"], node)
    return response.json["id"]


def _make_checkpoint(world: World, node: str) -> str:
    body = {"name": f"检查点{node}", "location": {"lon": HOME[0], "lat": HOME[1]}}
    response = world.client.post("/api/v1/checkpoints", json=body, headers=world.admin)
    assert response.status_code == 201, response.json
    world.place(Checkpoint, response.json["id"], node)
    return response.json["id"]


def _make_station(world: World, node: str) -> str:
    body = {
        "name": f"驿站{node}",
        "type": "rider_station",
        "location": {"lon": JIANWAI[0], "lat": JIANWAI[1]},
        "opening_hours": {"mon": [["08:00", "20:00"]]},
    }
    response = world.client.post("/api/v1/stations", json=body, headers=world.admin)
    assert response.status_code == 201, response.json
    world.place(Station, response.json["id"], node)
    return response.json["id"]


def _new_batch(world: World, role: str, scope: list[uuid.UUID], reference: str) -> str:
    batch = ClueBatch(
        id=uuid.uuid4(),
        created_by=world.create_user(roles=["admin"]).id,
        creator_role=role,
        scope_everywhere=False,
        scope_area_ids=scope,
        purpose="核查",
        case_reference=f"TEST-{reference}",
        status="pending",
        row_count=1,
    )
    world.session.add(batch)
    world.session.commit()
    return str(batch.id)


def _make_batch(role: str) -> Callable[[World, str], str]:
    return lambda world, node: _new_batch(world, role, [world.tree.areas[node].id], node)


def _make_staff_account(world: World, node: str) -> str:
    return str(
        world.create_user(roles=["grid_staff"], jurisdiction=[world.tree.areas[node].code]).id
    )


def _make_volunteer(world: World, node: str) -> str | None:
    """A volunteer whose home is `node`: only communities are homes."""
    if world.tree.areas[node].level != AreaLevel.COMMUNITY:
        return None
    return str(world.create_user(roles=["volunteer"], home=world.tree.areas[node].code).id)


def _listed(url: str) -> Callable[[World, dict], set[str]]:
    return lambda world, headers: _ids(world.get(url, headers))


def _opens(template: str) -> Callable[[World, dict, str], bool]:
    def opens(world: World, headers, object_id: str) -> bool:
        response = world.get(template.format(id=object_id), headers)
        assert response.status_code in (200, 404), (template, response.status_code)
        return response.status_code == 200

    return opens


def _stations_listed(world: World, headers) -> set[str]:
    """The staff list of stations is the export (it carries names, not ids)."""
    response = world.get("/api/v1/stations/export?format=geojson", headers)
    names = {f["properties"]["name"] for f in response.json["features"]}
    return {
        str(i) for i in world.session.scalars(select(Station.id).where(Station.name.in_(names)))
    }


@dataclass(frozen=True)
class Domain:
    make: Callable[[World, str], str | None]
    listed: Callable[[World, dict], set[str]]
    opens: Callable[[World, dict, str], bool]
    role: str = STAFF_ROLE


DOMAINS = {
    "tips": Domain(_make_tip, _listed("/api/v1/tips?page_size=100"), _opens("/api/v1/tips/{id}")),
    "patrols": Domain(
        _make_patrol, _listed("/api/v1/patrols?page_size=100"), _opens("/api/v1/patrols/{id}")
    ),
    "tasks": Domain(
        _make_task, _listed("/api/v1/tasks?page_size=100"), _opens("/api/v1/tasks/{id}")
    ),
    "staff batches": Domain(
        _make_batch("grid_staff"),
        _listed("/api/v1/clue-batches?page_size=100"),
        _opens("/api/v1/clue-batches/{id}"),
    ),
    "liaison batches": Domain(
        _make_batch("police_liaison"),
        _listed("/api/v1/clue-batches?page_size=100"),
        _opens("/api/v1/clue-batches/{id}"),
        role="police_liaison",
    ),
    "staff accounts": Domain(
        _make_staff_account, _listed("/api/v1/users?page_size=100"), _opens("/api/v1/users/{id}")
    ),
    "volunteers": Domain(
        _make_volunteer, _listed("/api/v1/users?page_size=100"), _opens("/api/v1/users/{id}")
    ),
    "checkpoints": Domain(
        _make_checkpoint,
        _listed("/api/v1/checkpoints?page_size=100"),
        _opens("/api/v1/checkpoints/{id}"),
    ),
    "stations": Domain(_make_station, _stations_listed, _opens("/api/v1/stations/{id}/visit-code")),
}


@pytest.fixture
def world(client, session, tree, token_for, create_user) -> World:
    return World(client, session, tree, token_for("admin"), create_user, token_for)


def _grantee(world: World, role: str, grant: tuple[str, ...]) -> dict[str, str]:
    codes = [world.tree.areas[name].code for name in grant]
    return world.token_for(world.create_user(roles=[role], jurisdiction=codes))


@pytest.mark.parametrize("name", list(DOMAINS))
def test_lists_and_details_show_exactly_what_the_rule_covers(world, name):
    domain = DOMAINS[name]
    made = {node: domain.make(world, node) for node in world.tree.nodes}
    made = {node: object_id for node, object_id in made.items() if object_id is not None}
    assert len(made) >= 4
    for label, grant in GRANTS.items():
        headers = _grantee(world, domain.role, grant)
        expected = {made[n] for n in made if world.tree.inside(n, grant)}
        listed = domain.listed(world, headers) & set(made.values())
        assert listed == expected, f"{name}, grant at {label}"
        for node, object_id in made.items():
            assert domain.opens(world, headers, object_id) is world.tree.inside(node, grant), (
                f"{name}, grant at {label}, object at {node}"
            )


def test_grid_counts_only_tips_the_rule_covers(world):
    made = {node: _make_tip(world, node) for node in world.tree.nodes}
    for label, grant in GRANTS.items():
        headers = _grantee(world, STAFF_ROLE, grant)
        answer = world.get("/api/v1/grid/tips?cells=hex&resolution=9", headers)
        assert answer.status_code == 200, answer.json
        counted = sum(f["properties"]["total"] for f in answer.json["features"])
        assert counted == sum(world.tree.inside(n, grant) for n in made), label


def test_coverage_counts_only_fixes_the_rule_covers(world):
    made = {node: _make_patrol(world, node) for node in world.tree.nodes}
    for label, grant in GRANTS.items():
        headers = _grantee(world, STAFF_ROLE, grant)
        answer = world.get("/api/v1/coverage/cells?cells=hex&resolution=9", headers)
        assert answer.status_code == 200, answer.json
        fixes = sum(f["properties"]["checkins"] for f in answer.json["features"])
        assert fixes == 2 * sum(world.tree.inside(n, grant) for n in made), label


def test_coverage_gaps_offer_exactly_the_grid_cells_the_rule_covers(world):
    demo_cells = {
        a.id: a
        for a in world.session.scalars(select(Area).where(Area.level == AreaLevel.GRID_CELL))
    }
    for label, grant in GRANTS.items():
        headers = _grantee(world, STAFF_ROLE, grant)
        answer = world.get("/api/v1/coverage/gaps?cells=admin", headers)
        assert answer.status_code == 200, answer.json
        offered = {uuid.UUID(f["properties"]["cell_id"]) for f in answer.json["features"]}
        granted = {world.tree.areas[g].id for g in grant}
        expected = {
            cell_id
            for cell_id in demo_cells
            if {cell_id, *_ancestors(world.tree, cell_id)} & granted
        }
        assert offered == expected, label


def _ancestors(tree: Tree, area_id: uuid.UUID) -> set[uuid.UUID]:
    seen, at = set(), tree.parents[area_id]
    while at is not None:
        seen.add(at)
        at = tree.parents[at]
    return seen


def test_only_admins_read_the_audit_trail_at_any_level(world):
    for label, grant in GRANTS.items():
        headers = _grantee(world, STAFF_ROLE, grant)
        assert world.get("/api/v1/audit", headers).status_code == 403, label
    assert world.get("/api/v1/audit", world.admin).status_code == 200


def test_a_batch_whose_scope_names_no_known_area_is_nobodys(world):
    """A scope id that matches no area (or an empty scope) is never "covered"."""
    ghost = _new_batch(world, "grid_staff", [uuid.uuid4()], "ghost")
    empty = _new_batch(world, "grid_staff", [], "empty")
    headers = _grantee(world, STAFF_ROLE, ("D",))
    listed = _ids(world.get("/api/v1/clue-batches?page_size=100", headers))
    assert {ghost, empty} & listed == set()


def test_the_reported_leak_is_closed(world):
    """Issue 14.1: a batch scoped to 建外 is not opened by grid staff of a community elsewhere,
    and a district-wide liaison's batch is not opened by a liaison of one sub-district."""
    subdistrict_batch = _make_batch("grid_staff")(world, "S")
    district_batch = _make_batch("police_liaison")(world, "D")
    elsewhere = _grantee(world, "grid_staff", ("C_other",))
    liaison = _grantee(world, "police_liaison", ("S",))
    for headers, batch_id in ((elsewhere, subdistrict_batch), (liaison, district_batch)):
        assert world.get(f"/api/v1/clue-batches/{batch_id}", headers).status_code == 404
        files = world.get(f"/api/v1/clue-batches/{batch_id}/files/tips.csv", headers)
        assert files.status_code == 404


@pytest.mark.parametrize("name", ["tips", "patrols", "tasks", "checkpoints", "stations"])
def test_an_admin_lists_and_opens_everything(world, name):
    """The admin clause is TRUE: every object, at every level and in the made-up district."""
    domain = DOMAINS[name]
    made = {node: domain.make(world, node) for node in world.tree.nodes}
    assert set(made.values()) <= domain.listed(world, world.admin)
    for node, object_id in made.items():
        assert domain.opens(world, world.admin, object_id), (name, node)


def test_an_area_filter_takes_the_rows_in_that_area_at_any_level(world):
    """`within_area`: the tips list's `area_id` (and a batch's `area_ids`) takes a row when the
    area is on its path, whatever the area's level, and nothing else."""
    made = {node: _make_tip(world, node) for node in world.tree.nodes}
    for node in world.tree.nodes:
        area_id = world.tree.areas[node].id
        listed = _ids(world.get(f"/api/v1/tips?page_size=100&area_id={area_id}", world.admin))
        expected = {made[n] for n in made if area_id in world.tree.ancestry(n)}
        assert listed & set(made.values()) == expected, node


def test_an_account_without_an_area_role_is_nowhere_whatever_areas_it_holds(
    session, tree, create_user
):
    """Areas count only with a role that works in them: a grid worker made a volunteer (whose
    grant rows were left behind) covers nothing."""
    codes = [tree.areas[name].code for name in ("D", "G", "XD")]
    demoted = jurisdiction_of(create_user(roles=["volunteer"], jurisdiction=codes))
    assert demoted == Jurisdiction(everywhere=False, grants={})
    assert _evaluate(session, demoted, tree) == {n: (False, True) for n in tree.nodes}
    for role in ("grid_staff", "community_admin", "police_liaison"):
        granted = jurisdiction_of(create_user(roles=[role], jurisdiction=codes))
        assert granted.area_ids == {tree.areas[name].id for name in ("D", "G", "XD")}, role
