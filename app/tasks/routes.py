"""Tasks for staff, and the volunteer's task feed and responses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app
from flask.views import MethodView
from geoalchemy2.shape import to_shape

from app.core import preconditions
from app.core.auth import GRID_STAFF, VOLUNTEER, current_user
from app.core.blueprint import Blueprint
from app.core.pagination import PageArgsSchema, page_of, paginate
from app.core.preconditions import versioned
from app.extensions import db
from app.tasks import schemas as s
from app.tasks import service
from app.tasks.models import Task
from geo.crs import from_wgs84

tasks_blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Tasks")
me_blp = Blueprint(
    "my_tasks", __name__, url_prefix="/api/v1/me", description="Your tasks and duty status"
)

_TASK_ATTRIBUTES = [n for n in s.TaskSchema().fields if hasattr(Task, n)]


def _task_item(task_row: Task, crs: str = "wgs84") -> dict[str, Any]:
    item = {name: getattr(task_row, name) for name in _TASK_ATTRIBUTES}
    now = dt.datetime.now(dt.UTC)
    item["status"], item["over"] = task_row.lifecycle(now), task_row.ends_at <= now
    if task_row.geom is not None:
        point = to_shape(task_row.geom)
        lon, lat = from_wgs84(point.x, point.y, crs)
        item["location"] = {"lon": round(lon, 7), "lat": round(lat, 7)}
    else:
        item["location"] = None
    return item


@tasks_blp.route("")
class Tasks(MethodView):
    @tasks_blp.role_required(GRID_STAFF)
    @tasks_blp.idempotent
    @tasks_blp.arguments(s.TaskCreateSchema)
    @tasks_blp.response(201, s.TaskSchema)
    def post(self, body):
        """Create a task in your jurisdiction; its volunteers' phones are notified within seconds.

        The fan-out job is deferred in the same transaction as the task: a created task always
        reaches its volunteers, a failed request never does.
        """
        return _task_item(service.create(db.session, current_user(), body))

    @tasks_blp.role_required(GRID_STAFF)
    @tasks_blp.arguments(s.TaskQueryArgsSchema, location="query")
    @tasks_blp.arguments(PageArgsSchema, location="query")
    @tasks_blp.response(200, page_of(s.TaskSchema))
    def get(self, args, page):
        """Tasks of your jurisdiction, newest first."""
        result = paginate(db.session, service.list_query(current_user(), args), **page)
        result["items"] = [_task_item(t, args["crs"]) for t in result["items"]]
        return result


@tasks_blp.route("/<uuid:task_id>")
class TaskById(MethodView):
    @tasks_blp.role_required(GRID_STAFF)
    @versioned(tasks_blp)
    @tasks_blp.response(200, s.TaskDetailSchema)
    def get(self, task_id):
        """A task of your jurisdiction with its responses and delivery statistics."""
        task_row = service.managed(db.session, current_user(), task_id)
        preconditions.tag("task", task_row)
        statistics = service.statistics(
            db.session, task_row, current_app.config["TASK_MIN_COUNT_SHOWN"]
        )
        return {**_task_item(task_row), "statistics": statistics}


@tasks_blp.route("/<uuid:task_id>/cancel")
class CancelTask(MethodView):
    @tasks_blp.role_required(GRID_STAFF)
    @versioned(tasks_blp, edit=True, read_by="GET /tasks/{task_id}")
    @tasks_blp.arguments(s.CancelSchema)
    @tasks_blp.response(200, s.TaskSchema)
    def post(self, body, task_id):
        """Cancel a task (send the ETag you read as `If-Match`); those who accepted are told."""
        task_row = service.managed(db.session, current_user(), task_id)
        preconditions.require("task", task_row)
        task_row = service.cancel(db.session, task_row, body.get("reason"))
        preconditions.tag("task", task_row)
        return _task_item(task_row)


@tasks_blp.route("/<uuid:task_id>/responses")
class Responses(MethodView):
    @tasks_blp.role_required(VOLUNTEER)
    @tasks_blp.idempotent
    @tasks_blp.arguments(s.ResponseCreateSchema)
    @tasks_blp.response(200, s.MyResponseSchema)
    def post(self, body, task_id):
        """Answer a task sent to you: accept, decline, arrive (within its radius), complete.

        Places are limited: once `needed` volunteers accepted, a further accept is a 409.
        Cancelled or finished tasks answer 409.
        """
        settings = service.TaskSettings.from_config(current_app.config)
        return service.respond(db.session, current_user(), task_id, body, settings)


@me_blp.route("/tasks")
class MyTasks(MethodView):
    @me_blp.role_required(VOLUNTEER)
    @me_blp.arguments(s.MyTasksArgsSchema, location="query")
    @me_blp.arguments(PageArgsSchema, location="query")
    @me_blp.response(200, page_of(s.MyTaskSchema))
    def get(self, args, page):
        """Tasks sent to you, newest first, with your answer (the source of truth: pushes are
        best effort)."""
        query = service.my_tasks_query(current_user(), args)
        result = paginate(db.session, query, scalars=False, **page)
        result["items"] = [
            {**_task_item(row["Task"], args["crs"]), "mine": row["TaskRecipient"]}
            for row in result["items"]
        ]
        return result
