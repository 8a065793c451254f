"""Team rules, called on the service: where a team may belong, who may register it, its kind and
filing dates, one leader, membership spells, and the city's targets for organisations."""

from __future__ import annotations

import pytest

from app.core.errors import Conflict, NotFound, Unprocessable
from app.teams import service

NANLANG, BEILANG, JIANWAI = "110105001024", "110105001025", "110105001000"
CHAOWAI_COMMUNITY = "110105002024"
XIAXINBAO_VILLAGE = "110105037207"  # a rural village committee (村委会)


@pytest.fixture
def admin(create_user):
    return create_user(roles=["community_admin"], jurisdiction=[JIANWAI])


@pytest.fixture
def new_team(session, area, admin):
    def make(code=NANLANG, actor=None, **overrides):
        values = {
            "name": "测试社会组织",
            "kind": "community_organisation",
            "service_type": "mutual_aid",
            "area_id": area(code).id,
            **overrides,
        }
        return service.create_team(session, actor or admin, values)

    return make


def test_a_team_takes_the_area_path_of_its_community(new_team, area):
    team = new_team(NANLANG)
    assert (team.community_id, team.subdistrict_id, team.district_id) == (
        area(NANLANG).id,
        area(JIANWAI).id,
        area("110105000000").id,
    )


@pytest.mark.parametrize("code", ["110105000000", f"{NANLANG}-G001"])
def test_a_team_belongs_to_a_community_or_a_subdistrict_only(new_team, code):
    with pytest.raises(Unprocessable):
        new_team(code)


def test_a_team_outside_the_actors_jurisdiction_is_not_found(new_team):
    with pytest.raises(NotFound):
        new_team(CHAOWAI_COMMUNITY)


@pytest.mark.parametrize(
    ("kind", "service_type"),
    [("community_organisation", None), ("patrol_team", "mutual_aid")],
)
def test_only_a_community_organisation_has_a_service_type(new_team, kind, service_type):
    with pytest.raises(Unprocessable):
        new_team(kind=kind, service_type=service_type)


def test_filing_and_revoking_date_the_team_and_unfiling_clears_both(new_team, session):
    team = new_team(filing_status="filed")
    assert team.filed_on is not None and team.revoked_on is None
    service.update_team(session, team, {"filing_status": "revoked"})
    assert team.filed_on is not None and team.revoked_on is not None
    service.update_team(session, team, {"filing_status": "filed"})
    assert team.revoked_on is None
    service.update_team(session, team, {"filing_status": "unfiled"})
    assert (team.filed_on, team.revoked_on) == (None, None)


def test_a_team_has_one_leader_and_the_previous_one_stays_a_member(
    new_team, session, admin, create_user
):
    team = new_team()
    first, second = create_user(home=NANLANG), create_user(home=NANLANG)
    service.add_member(session, admin, team, first.id, "leader")
    service.add_member(session, admin, team, second.id, "leader")
    roles = {m.user_id: m.role for m in session.scalars(service.members_query(team))}
    assert roles == {first.id: "member", second.id: "leader"}
    assert team.leader_id == second.id


def test_a_current_member_cannot_join_twice_but_may_come_back_after_leaving(
    new_team, session, admin, create_user
):
    team = new_team()
    volunteer = create_user(home=NANLANG)
    service.add_member(session, admin, team, volunteer.id, "member")
    with pytest.raises(Conflict):
        service.add_member(session, admin, team, volunteer.id, "member")
    service.remove_member(session, team, volunteer.id)
    assert list(session.scalars(service.members_query(team))) == []
    service.add_member(session, admin, team, volunteer.id, "member")
    assert [m.user_id for m in session.scalars(service.members_query(team))] == [volunteer.id]


def test_the_leader_leaving_leaves_the_team_without_a_leader(new_team, session, admin, create_user):
    team = new_team()
    leader = create_user(home=NANLANG)
    service.add_member(session, admin, team, leader.id, "leader")
    service.remove_member(session, team, leader.id)
    assert team.leader_id is None


def test_removing_someone_who_is_not_a_member_is_not_found(new_team, session, create_user):
    with pytest.raises(NotFound):
        service.remove_member(session, new_team(), create_user(home=NANLANG).id)


def test_a_volunteer_outside_the_actors_jurisdiction_cannot_be_added(
    new_team, session, admin, create_user
):
    with pytest.raises(NotFound):
        service.add_member(
            session, admin, new_team(), create_user(home=CHAOWAI_COMMUNITY).id, "member"
        )


def _row(session, actor, code, area):
    query, _summary = service.targets(session, actor, area(code).id)
    (row,) = session.execute(query).all()
    return row


@pytest.mark.parametrize("filing_status", ["unfiled", "filed"])
def test_an_organisation_counts_towards_the_target_filed_or_not(
    new_team, session, admin, area, filing_status
):
    before = _row(session, admin, BEILANG, area).organisations
    new_team(BEILANG, filing_status=filing_status)
    assert _row(session, admin, BEILANG, area).organisations == before + 1


def test_a_revoked_organisation_does_not_count_towards_the_target(new_team, session, admin, area):
    before = _row(session, admin, BEILANG, area).organisations
    new_team(BEILANG, name="已撤销", filing_status="revoked")
    assert _row(session, admin, BEILANG, area).organisations == before


def test_other_kinds_of_team_do_not_count_towards_the_target(new_team, session, admin, area):
    before = _row(session, admin, BEILANG, area).organisations
    new_team(BEILANG, name="巡逻队", kind="patrol_team", service_type=None)
    assert _row(session, admin, BEILANG, area).organisations == before


def test_brand_organisations_count_against_their_own_target(new_team, session, admin, area):
    before = _row(session, admin, NANLANG, area)
    new_team(NANLANG, brand=True)
    after = _row(session, admin, NANLANG, area)
    assert after.brand_organisations == before.brand_organisations + 1
    assert after.brand_short_by == max(service.TARGET_BRAND - after.brand_organisations, 0)


def test_a_rural_community_has_the_rural_target(session, create_user, area):
    admin = create_user(roles=["admin"])
    row = _row(session, admin, XIAXINBAO_VILLAGE, area)
    assert (row.urban_rural, row.target) == ("rural", service.TARGET_RURAL)
    assert _row(session, admin, NANLANG, area).target == service.TARGET_URBAN


def test_the_targets_leave_out_communities_outside_the_jurisdiction(session, admin, area):
    query, summary = service.targets(session, admin, None)
    codes = {row.code for row in session.execute(query)}
    assert NANLANG in codes and CHAOWAI_COMMUNITY not in codes
    assert summary["communities"] == len(codes)
