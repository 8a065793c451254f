"""covers(), the in-memory jurisdiction rule, over any set of grants at any levels of the area
tree (issue #22): a path is inside when *any* granted area is on it, at its own level; an admin is
inside everywhere; no grant is nowhere. The clause() test checks the SQL rule agrees, on PostGIS."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.auth.jurisdiction import NOWHERE, PATH_KEYS, Jurisdiction

AREAS = [uuid.UUID(int=n) for n in range(1, 9)]

paths = st.fixed_dictionaries({key: st.none() | st.sampled_from(AREAS) for key in PATH_KEYS})
grant_sets = st.dictionaries(
    st.sampled_from(PATH_KEYS), st.frozensets(st.sampled_from(AREAS), min_size=1), max_size=4
)


@given(grants=grant_sets, path=paths)
def test_a_path_is_inside_when_any_grant_is_on_it_at_its_level(grants, path):
    inside = any(path[key] is not None and path[key] in ids for key, ids in grants.items())
    assert Jurisdiction(everywhere=False, grants=grants).covers(path) is inside


@given(path=paths)
def test_grants_at_two_levels_each_cover_their_own_rows(path):
    district, community = AREAS[0], AREAS[1]
    both = Jurisdiction(
        everywhere=False,
        grants={"district_id": frozenset({district}), "community_id": frozenset({community})},
    )
    # A row of the community in another district, and a row of the district in another
    # community: each is inside through one of the two grants.
    assert both.covers({**path, "district_id": AREAS[2], "community_id": community})
    assert both.covers({**path, "district_id": district, "community_id": AREAS[3]})
    outside = {**path, "district_id": AREAS[2], "community_id": AREAS[3]}
    assert not both.covers(outside)


@given(path=paths)
def test_an_admin_covers_every_path_and_nobody_covers_none(path):
    assert Jurisdiction(everywhere=True, grants={}).covers(path)
    assert not NOWHERE.covers(path)
    assert NOWHERE.area_ids == frozenset()


@given(grants=grant_sets)
def test_area_ids_are_every_granted_area_at_every_level(grants):
    expected = frozenset(area for ids in grants.values() for area in ids)
    assert Jurisdiction(everywhere=False, grants=grants).area_ids == expected


def _evaluate(session, clause) -> bool:
    return session.scalar(select(clause))


@given(grants=grant_sets, path=paths)
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_clause_answers_like_covers_even_for_a_row_without_a_granted_level(session, grants, path):
    # A row kind with no grid cell (a station, a district's record) under a grid-cell grant is
    # outside, not an error; the SQL rule and covers() agree on every path, NULLs included.
    for present in (PATH_KEYS, PATH_KEYS[:3], PATH_KEYS[:1]):
        columns = {key: sa.literal(path[key], sa.Uuid) for key in present}
        jurisdiction = Jurisdiction(everywhere=False, grants=grants)
        expected = jurisdiction.covers({key: path[key] for key in present})
        assert _evaluate(session, jurisdiction.clause(columns)) is expected
        assert _evaluate(session, jurisdiction.excludes(columns)) is (not expected)
