"""Teams (volunteer organisations), their members, and the city's targets."""

from __future__ import annotations

from flask.views import MethodView

from app.core.auth import COMMUNITY_ADMIN, GRID_STAFF, current_user
from app.core.blueprint import Blueprint
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.extensions import db
from app.teams import service
from app.teams.schemas import (
    MemberCreateSchema,
    MemberSchema,
    TargetArgsSchema,
    TargetsPageSchema,
    TeamCreateSchema,
    TeamQueryArgsSchema,
    TeamSchema,
    TeamUpdateSchema,
)

blp = Blueprint(
    "teams", __name__, url_prefix="/api/v1/teams", description="Volunteer organisations"
)


@blp.route("")
class Teams(MethodView):
    @blp.login_required
    @blp.arguments(TeamQueryArgsSchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(TeamSchema))
    def get(self, filters, page):
        """Teams, by kind, area and filing status."""
        return paginate(db.session, service.list_teams(filters), **page)

    @blp.role_required(COMMUNITY_ADMIN)
    @blp.arguments(TeamCreateSchema)
    @blp.response(201, TeamSchema)
    def post(self, body):
        """Register a team in a community or sub-district of your jurisdiction."""
        return service.create_team(db.session, current_user(), body)


@blp.route("/targets")
class Targets(MethodView):
    @blp.role_required(GRID_STAFF)
    @blp.arguments(TargetArgsSchema, location="query")
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, TargetsPageSchema)
    def get(self, args, page):
        """Community organisations per community against the city's targets.

        At least 15 per urban community and 8 per rural one, 2 of them brand organisations;
        revoked organisations do not count. Communities inside `area_id` and your jurisdiction,
        by code, with a summary over all of them.
        """
        query, summary = service.targets(db.session, current_user(), args.get("area_id"))
        return {**paginate(db.session, query, scalars=False, **page), "summary": summary}


@blp.route("/<uuid:team_id>")
class TeamById(MethodView):
    @blp.login_required
    @blp.response(200, TeamSchema)
    def get(self, team_id):
        """One team."""
        return service.get_team(db.session, team_id)

    @blp.role_required(COMMUNITY_ADMIN)
    @blp.arguments(TeamUpdateSchema)
    @blp.response(200, TeamSchema)
    def patch(self, body, team_id):
        """Change a team of your jurisdiction (name, service type, brand, filing)."""
        team = service.get_managed_team(db.session, current_user(), team_id)
        return service.update_team(db.session, team, body)


@blp.route("/<uuid:team_id>/members")
class Members(MethodView):
    @blp.role_required(GRID_STAFF)
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_of(MemberSchema))
    def get(self, page, team_id):
        """Current members of a team of your jurisdiction."""
        team = service.get_managed_team(db.session, current_user(), team_id)
        return paginate(db.session, service.members_query(team), **page)

    @blp.role_required(COMMUNITY_ADMIN)
    @blp.arguments(MemberCreateSchema)
    @blp.response(201, MemberSchema)
    def post(self, body, team_id):
        """Add a member (a person you may see) to a team of your jurisdiction."""
        actor = current_user()
        team = service.get_managed_team(db.session, actor, team_id)
        return service.add_member(db.session, actor, team, body["user_id"], body["role"])


@blp.route("/<uuid:team_id>/members/<uuid:user_id>")
class Member(MethodView):
    @blp.role_required(COMMUNITY_ADMIN)
    @blp.response(204)
    def delete(self, team_id, user_id):
        """A member leaves the team (the membership is kept, with its end date)."""
        team = service.get_managed_team(db.session, current_user(), team_id)
        service.remove_member(db.session, team, user_id)
