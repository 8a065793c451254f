"""The places of a task over any sequence of answers (issue #22): a place is taken by an
acceptance and kept through arrival and completion, withdrawing frees exactly it, a completion
stays and counts once, and no more than `needed` are ever engaged. The expected answers come
from a model of that rule, not from the service."""

from __future__ import annotations

from flask import current_app
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select

from app.core.errors import Conflict
from app.tasks import service as tasks_service
from app.tasks.models import Task, TaskRecipient
from tests.tasks.conftest import HOME
from tests.tasks.test_service_rules import COMMUNITY, EXAMPLES, _task, grantee

__all__ = ["grantee"]  # the fixture, used here


def _settings() -> tasks_service.TaskSettings:
    """The task rules' settings as the application reads them."""
    return tasks_service.TaskSettings.from_config(current_app.config)


ENGAGED = ("accepted", "arrived", "completed")
ANSWERS = st.lists(
    st.tuples(st.integers(0, 3), st.sampled_from(["accept", "decline", "arrive", "complete"])),
    min_size=1,
    max_size=14,
)


def _expected(state: dict[int, str | None], needed: int, who: int, action: str) -> str | None:
    """The rule: the answer `who` would have after `action` (None: refused, nothing changes).
    A place is taken by acceptance and kept through arrival and completion; withdrawing frees
    it; a completed task stays completed; arriving and completing need an acceptance."""
    now = state[who]
    taken = sum(1 for s in state.values() if s in ENGAGED)
    if action == "accept":
        if now in ENGAGED:
            return now
        return "accepted" if taken < needed else None
    if action == "decline":
        return None if now == "completed" else "declined"
    if action == "arrive":
        return "arrived" if now in ("accepted", "arrived") else None
    return "completed" if now in ENGAGED else None


@given(needed=st.integers(1, 3), answers=ANSWERS)
# Besides the generated ones, always: completing twice, arriving after completing (counted
# twice before the fix), withdrawing when full, accepting past the places.
@example(needed=1, answers=[(0, "accept"), (0, "complete"), (0, "complete")])
@example(needed=1, answers=[(0, "accept"), (0, "complete"), (0, "arrive"), (0, "complete")])
@example(needed=2, answers=[(0, "accept"), (1, "accept"), (0, "decline"), (2, "accept")])
@example(needed=1, answers=[(0, "accept"), (1, "accept"), (0, "accept"), (1, "decline")])
@EXAMPLES
def test_places_follow_the_answers(session, grantee, create_user, needed, answers):
    actor = grantee(COMMUNITY)
    volunteers = [create_user(roles=["volunteer"], home=COMMUNITY) for _ in range(4)]
    named = {"mode": "named", "volunteer_ids": [v.id for v in volunteers], "max_recipients": 10}
    task_row = _task(session, actor, needed=needed, targeting=named)
    assert (
        tasks_service.fan_out(
            session,
            task_row.id,
            0,
            tasks_service._now(),
            _settings(),
        )
        == 4
    )
    state: dict[int, str | None] = dict.fromkeys(range(4))
    ever_completed: set[int] = set()
    here = {"lon": HOME[0], "lat": HOME[1]}
    for who, action in answers:
        expected = _expected(state, needed, who, action)
        try:
            tasks_service.respond(
                session,
                volunteers[who],
                task_row.id,
                {"action": action, "location": here},
                _settings(),
            )
        except Conflict:
            assert expected is None, (state, who, action)
        else:
            assert expected is not None, (state, who, action)
            state[who] = expected
            if expected == "completed":
                ever_completed.add(who)
        session.expire_all()
        stored = session.get(Task, task_row.id)
        answered = dict(
            session.execute(
                select(TaskRecipient.user_id, TaskRecipient.response).where(
                    TaskRecipient.task_id == task_row.id
                )
            ).all()
        )
        assert [answered[v.id] for v in volunteers] == [state[i] for i in range(4)]
        assert stored.accepted == sum(1 for s in state.values() if s in ENGAGED) <= needed
        # Each volunteer's completion counts once, however often it is sent.
        assert stored.completed == len(ever_completed)
