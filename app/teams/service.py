"""Teams: registry, membership, and the city's targets for community organisations."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Select, and_, case, func, literal, select, update
from sqlalchemy.orm import Session

from app.areas.models import Area, AreaLevel
from app.auth import service as accounts
from app.auth.jurisdiction import (
    area_path_columns,
    jurisdiction_of,
    require_inside,
    within_area,
)
from app.auth.models import User
from app.core.errors import Conflict, NotFound, Unprocessable
from app.core.i18n import N_, _
from app.teams.models import Team, TeamMember

# Beijing's targets: community social organisations per urban / rural community, and how many
# of them should be "brand" organisations.
TARGET_URBAN = 15
TARGET_RURAL = 8
TARGET_BRAND = 2


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _home_area(session: Session, area_id: uuid.UUID) -> Area:
    area = session.get(Area, area_id)
    if area is None or area.level not in (AreaLevel.COMMUNITY, AreaLevel.SUBDISTRICT):
        raise Unprocessable(
            _("A team belongs to a community or a sub-district."),
            extra={
                "errors": [
                    {
                        "location": "json",
                        "pointer": "/area_id",
                        "detail": "Not a community or sub-district.",
                    }
                ]
            },
        )
    return area


def _check_kind(team: Team) -> None:
    if (team.kind == "community_organisation") != (team.service_type is not None):
        raise Unprocessable(_("A community organisation, and only one, has a service type."))
    if team.filing_status == "filed" and team.filed_on is None:
        team.filed_on = _now().date()
    if team.filing_status == "revoked" and team.revoked_on is None:
        team.revoked_on = _now().date()


def create_team(session: Session, actor: User, values: dict[str, Any]) -> Team:
    area = _home_area(session, values["area_id"])
    require_inside(actor, area.path_ids, N_("area"))
    team = Team(id=uuid.uuid4(), **values)
    team.district_id, team.subdistrict_id, team.community_id = (
        area.district_id,
        area.subdistrict_id,
        area.community_id,
    )
    team.filing_status = values.get("filing_status", "unfiled")
    team.brand = values.get("brand", False)
    _check_kind(team)
    session.add(team)
    session.flush()
    return team


def get_team(session: Session, team_id: uuid.UUID) -> Team:
    """Teams are public organisations: any signed-in user may see one."""
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(_("No such team."))
    return team


def get_managed_team(session: Session, actor: User, team_id: uuid.UUID) -> Team:
    """A team inside the actor's jurisdiction (404 otherwise)."""
    team = get_team(session, team_id)
    require_inside(actor, team.path_ids, N_("team"))
    return team


def update_team(session: Session, team: Team, values: dict[str, Any]) -> Team:
    for key, value in values.items():
        setattr(team, key, value)
    # The dates follow the status: a filed team has no revocation, an unfiled one neither date.
    if values.get("filing_status") == "filed":
        team.revoked_on = None
    elif values.get("filing_status") == "unfiled":
        team.filed_on = team.revoked_on = None
    _check_kind(team)
    session.flush()
    return team


def list_teams(filters: dict[str, Any]) -> Select:
    query = select(Team).order_by(Team.name, Team.id)
    if "kind" in filters:
        query = query.where(Team.kind == filters["kind"])
    if "area_id" in filters:
        query = query.where(within_area(Team, filters["area_id"]))
    if "filing_status" in filters:
        query = query.where(Team.filing_status == filters["filing_status"])
    return query


def members_query(team: Team) -> Select:
    """The team's current members, longest-standing first."""
    return (
        select(TeamMember)
        .where(TeamMember.team_id == team.id, TeamMember.left_at.is_(None))
        .order_by(TeamMember.joined_at, TeamMember.id)
    )


def add_member(
    session: Session, actor: User, team: Team, user_id: uuid.UUID, role: str
) -> TeamMember:
    user = accounts.get_visible_user(session, actor, user_id)
    exists = session.scalar(
        select(TeamMember.id).where(
            TeamMember.team_id == team.id,
            TeamMember.user_id == user.id,
            TeamMember.left_at.is_(None),
        )
    )
    if exists:
        raise Conflict(_("This person is a member already."))
    member = TeamMember(
        id=uuid.uuid4(), team_id=team.id, user_id=user.id, role=role, joined_at=_now()
    )
    if role == "leader":  # one leader: the previous one stays on as a member
        session.execute(
            update(TeamMember)
            .where(
                TeamMember.team_id == team.id,
                TeamMember.role == "leader",
                TeamMember.left_at.is_(None),
            )
            .values(role="member")
        )
        team.leader_id = user.id
    session.add(member)
    session.flush()
    return member


def remove_member(session: Session, team: Team, user_id: uuid.UUID) -> None:
    """The member leaves (the spell is kept, with its end)."""
    member = session.scalar(
        select(TeamMember).where(
            TeamMember.team_id == team.id,
            TeamMember.user_id == user_id,
            TeamMember.left_at.is_(None),
        )
    )
    if member is None:
        raise NotFound(_("No such member."))
    member.left_at = _now()
    if team.leader_id == user_id:
        team.leader_id = None
    session.flush()


def targets(session: Session, actor: User, area_id: uuid.UUID | None) -> tuple[Select, dict]:
    """For each community inside `area_id` (and the actor's jurisdiction): its community
    organisations (revoked ones do not count) and brand organisations against the targets.

    Returns the per-community query (ordered by code) and a summary over all of them.
    """
    counted = and_(Team.kind == "community_organisation", Team.filing_status != "revoked")
    target = case((Area.urban_rural == "rural", TARGET_RURAL), else_=TARGET_URBAN)
    organisations = func.count(Team.id).filter(counted)
    brand = func.count(Team.id).filter(counted, Team.brand)
    query = (
        select(
            Area.id.label("community_id"),
            Area.code,
            Area.name,
            Area.urban_rural,
            target.label("target"),
            organisations.label("organisations"),
            func.greatest(target - organisations, 0).label("short_by"),
            literal(TARGET_BRAND).label("brand_target"),
            brand.label("brand_organisations"),
            func.greatest(TARGET_BRAND - brand, 0).label("brand_short_by"),
        )
        .select_from(Area)
        .outerjoin(Team, Team.community_id == Area.id)
        .where(Area.level == AreaLevel.COMMUNITY)
        .where(jurisdiction_of(actor).clause(area_path_columns(Area)))
        .group_by(Area.id)
        .order_by(Area.code)
    )
    if area_id is not None:
        query = query.where(within_area(Area, area_id))
    rows = query.subquery()
    summary = (
        session.execute(
            select(
                func.count().label("communities"),
                func.count().filter(rows.c.short_by > 0).label("communities_short"),
                func.count().filter(rows.c.brand_short_by > 0).label("communities_short_of_brand"),
                func.coalesce(func.sum(rows.c.organisations), 0).label("organisations"),
            )
        )
        .one()
        ._asdict()
    )
    return query, summary
