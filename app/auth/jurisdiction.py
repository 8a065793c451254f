"""The jurisdiction rule, in one place (ARCHITECTURE.md §4).

Staff act only inside the areas they were given; an admin acts everywhere. Every row that lives
somewhere carries its area path (`district_id`, `subdistrict_id`, `community_id`,
`grid_cell_id`), so "inside" is an equality test on one of them: a grant of a sub-district covers
every row whose `subdistrict_id` is that sub-district. Objects outside answer 404 (never 403):
we do not confirm that they exist.

The SQL rule is two-valued: a row whose path column at a granted level is NULL (a tip outside
any grid cell, a sub-district seen by a community's staff) is *outside*, never "unknown". A
three-valued `col IN (...)` would make `NOT clause` NULL for such rows, and a NULL filter drops
the row silently: the negation of "inside" would then miss exactly the rows one level up.
Negate with `excludes()`, which says what it means.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, false, not_, or_, true

from app.areas.models import AreaLevel
from app.auth.models import User
from app.core.auth import ADMIN, COMMUNITY_ADMIN, GRID_STAFF, POLICE_LIAISON
from app.core.errors import NotFound
from app.core.i18n import N_, _, translated

PATH_KEYS = ("district_id", "subdistrict_id", "community_id", "grid_cell_id")
_KEY_OF_LEVEL = dict(zip(AreaLevel, PATH_KEYS, strict=True))  # pragma: no mutate (4 levels, 4 keys)
_AREA_ROLES = {GRID_STAFF, COMMUNITY_ADMIN, POLICE_LIAISON}


@dataclass(frozen=True)  # pragma: no mutate (equivalent: nothing assigns to a Jurisdiction)
class Jurisdiction:
    everywhere: bool
    grants: Mapping[str, frozenset[uuid.UUID]]  # path key -> granted area ids at that level

    @property
    def area_ids(self) -> frozenset[uuid.UUID]:
        return frozenset().union(*self.grants.values()) if self.grants else frozenset()

    # Annotations are never evaluated here (`from __future__ import annotations`): a mutant of
    # their `|` is equivalent, hence the marks on this line and in require_inside.
    def covers(self, path: Mapping[str, uuid.UUID | None]) -> bool:  # pragma: no mutate (type hint)
        """Whether an object with this area path is inside."""
        if self.everywhere:
            return True
        return any(path.get(key) in ids for key, ids in self.grants.items())

    def clause(self, columns: Mapping[str, ColumnElement]) -> ColumnElement[bool]:
        """SQL condition for rows inside, given the row's path columns by key: TRUE or FALSE,
        never NULL (a NULL path column at a granted level is outside)."""
        if self.everywhere:
            return true()
        conditions = [
            and_(columns[key].is_not(None), columns[key].in_(sorted(ids)))
            for key, ids in self.grants.items()
            if ids and key in columns
        ]
        return or_(*conditions) if conditions else false()

    def excludes(self, columns: Mapping[str, ColumnElement]) -> ColumnElement[bool]:
        """SQL condition for rows outside: exactly the rows `clause` leaves out, NULLs
        included."""
        return not_(self.clause(columns))


NOWHERE = Jurisdiction(everywhere=False, grants={})


def path_columns(entity) -> dict[str, ColumnElement]:
    """The area-path columns of a located model (those of PATH_KEYS it has)."""
    return {key: getattr(entity, key) for key in PATH_KEYS if hasattr(entity, key)}


def area_path_columns(area) -> dict[str, ColumnElement]:
    """The path columns of an `areas` row (the model or an alias of it): an area's path holds
    itself at its own level, and only a grid cell is its own grid cell. With these, the row rule
    applies to areas: `clause(area_path_columns(Area))` are the areas inside."""
    return {
        "district_id": area.district_id,
        "subdistrict_id": area.subdistrict_id,
        "community_id": area.community_id,
        "grid_cell_id": case((area.level == AreaLevel.GRID_CELL.value, area.id)),
    }


def in_jurisdiction(actor: User, entity) -> ColumnElement[bool]:
    """SQL condition for the rows of a model carrying its area path (a `Located` model, a team,
    or an alias of one) inside the actor's jurisdiction: what every staff list filters by. TRUE
    for an admin, FALSE for someone without grants, else an equality test on the path column
    of each granted level the model has."""
    return jurisdiction_of(actor).clause(path_columns(entity))


def within_area(entity, area_id: uuid.UUID) -> ColumnElement[bool]:
    """SQL condition: the row lies in the area `area_id`, whatever the area's level."""
    return or_(*(column == area_id for column in path_columns(entity).values()))


def jurisdiction_of(user: User) -> Jurisdiction:
    """Admins: everywhere. Staff and liaisons: their granted areas. Anyone else: nowhere."""
    if ADMIN in user.roles:
        return Jurisdiction(everywhere=True, grants={})
    if not _AREA_ROLES & set(user.roles):
        return NOWHERE
    grants: dict[str, set[uuid.UUID]] = {}
    for area in user.jurisdiction:
        grants.setdefault(_KEY_OF_LEVEL[AreaLevel(area.level)], set()).add(area.id)
    return Jurisdiction(everywhere=False, grants={k: frozenset(v) for k, v in grants.items()})


def require_inside(
    user: User,
    path: Mapping[str, uuid.UUID | None],  # pragma: no mutate (a type hint, never evaluated)
    what: str = N_("object"),
) -> None:
    """Raise NotFound unless `path` is inside the user's jurisdiction."""
    if not jurisdiction_of(user).covers(path):
        raise NotFound(_("No such %(what)s.", what=translated(what)))
