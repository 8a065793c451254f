"""Rules of tasks stated at the service (issue #22), over their space of inputs: every reference
of a task (place, area, team, tip, named volunteers) against grants at each level of the area
tree; the time boundaries of creating, fanning out and answering; the places a task has, over
any sequence of answers; when a task widens; what its reach withholds.

The expected answers come from the rule written out here (an oracle walking the areas' parent
links, a model of the places), not from the code under test."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from flask import current_app
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from app.areas.models import Area
from app.core.errors import Conflict, DomainError, NotFound, Unprocessable
from app.duty import service as duty_service
from app.duty.models import DutyStatus
from app.service_record.models import ServiceEntry
from app.tasks import service as tasks_service
from app.tasks.models import Task, TaskRecipient
from notifications.models import Notification
from tests.tasks.conftest import HOME, east
from tests.tasks.test_rules import _team, _tip
from tests.tips.conftest import JIANWAI, NEIGHBOUR

DISTRICT, SUBDISTRICT = "110105000000", "110105001000"
COMMUNITY, SIBLING = "110105001024", "110105001025"  # 南郎家园 (HOME, JIANWAI); NEIGHBOUR's
OTHER_SUBDISTRICT, FAR_COMMUNITY = "110105002000", "110105002024"
GRANTS = (DISTRICT, SUBDISTRICT, COMMUNITY, SIBLING, OTHER_SUBDISTRICT)
EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
T0 = dt.datetime(2026, 12, 3, 8, 0, 0, 500_000, tzinfo=dt.UTC)


def _settings() -> tasks_service.TaskSettings:
    """The task rules' settings as the application reads them."""
    return tasks_service.TaskSettings.from_config(current_app.config)


def _inside(session, area_code: str, grant_code: str) -> bool:
    """The oracle: an area is inside a grant when the grant is the area or above it."""
    area = session.scalar(select(Area).where(Area.code == area_code))
    grant = session.scalar(select(Area).where(Area.code == grant_code))
    while area is not None:
        if area.id == grant.id:
            return True
        area = session.get(Area, area.parent_id) if area.parent_id else None
    return False


def _values(**overrides):
    values = {
        "title": "南郎家园东门人员聚集",
        "kind": "event_support",
        "location": {"lon": HOME[0], "lat": HOME[1]},
        "radius_m": 500,
        "ends_at": tasks_service._now() + dt.timedelta(hours=2),
        "needed": 1,
        "targeting": {"mode": "radius"},
    }
    values.update(overrides)
    return values


def _refused(session, actor, values) -> str | None:
    """The pointer (or "404") a task of these values is refused with, None when it is taken.
    `reach` checks a task as creating it would, and stores nothing."""
    try:
        tasks_service.reach(session, actor, values, 1, _settings())
    except NotFound:
        return "404"
    except Unprocessable as refused:
        return refused.extra["errors"][0]["pointer"]
    return None


@pytest.fixture
def grantee(create_user):
    return lambda code: create_user(roles=["grid_staff"], jurisdiction=[code])


# -- references, at every level -----------------------------------------------------------------


@pytest.mark.parametrize("grant", GRANTS)
def test_a_task_is_placed_only_inside_the_jurisdiction(session, grantee, grant):
    actor = grantee(grant)
    for at, code in ((HOME, COMMUNITY), (NEIGHBOUR, SIBLING)):
        values = _values(location={"lon": at[0], "lat": at[1]})
        expected = None if _inside(session, code, grant) else "/location"
        assert _refused(session, actor, values) == expected, (grant, code)


@pytest.mark.parametrize("grant", GRANTS)
def test_a_tasks_area_is_inside_the_jurisdiction_at_every_level(session, grantee, area, grant):
    """With its place inside the grant, the area named must be inside too: an area above the
    grant (which contains the place) is refused as well as one beside it."""
    actor = grantee(grant)
    for code in (COMMUNITY, SIBLING, SUBDISTRICT, DISTRICT, OTHER_SUBDISTRICT):
        for location in (None, {"lon": HOME[0], "lat": HOME[1]}):
            values = _values(location=location, area_id=area(code).id, targeting={"mode": "area"})
            refused = _refused(session, actor, values)
            if not _inside(session, code, grant):
                assert refused in ("404", "/location"), (grant, code, location)
            elif location is not None and not _inside(session, COMMUNITY, grant):
                assert refused == "/location", (grant, code)
            else:
                assert refused is None, (grant, code, location)


@pytest.mark.parametrize("grant", (SUBDISTRICT, COMMUNITY))
def test_named_volunteers_teams_and_tips_are_of_the_jurisdiction(
    session, client, token_for, grantee, area, create_user, grant
):
    actor = grantee(grant)
    for code in (COMMUNITY, SIBLING, FAR_COMMUNITY):
        expected = None if _inside(session, code, grant) else "/targeting/volunteer_ids"
        volunteer = create_user(roles=["volunteer"], home=code)
        named = {"mode": "named", "volunteer_ids": [volunteer.id]}
        assert _refused(session, actor, _values(targeting=named)) == expected, (grant, code)
    for code in (COMMUNITY, SIBLING):
        expected = None if _inside(session, code, grant) else "/targeting/team_id"
        team = {"mode": "team", "team_id": uuid.UUID(_team(client, token_for, area, code))}
        assert _refused(session, actor, _values(targeting=team)) == expected, (grant, code)
    for at, code in ((JIANWAI, COMMUNITY), (NEIGHBOUR, SIBLING)):
        expected = None if _inside(session, code, grant) else "/tip_id"
        tip_id = uuid.UUID(_tip(client, at))
        assert _refused(session, actor, _values(tip_id=tip_id)) == expected, (grant, code)


def test_named_are_only_active_volunteers_of_the_area(session, grantee, create_user):
    actor = grantee(COMMUNITY)
    ours = [create_user(roles=["volunteer"], home=COMMUNITY) for _ in range(2)]
    others = {
        "staff": create_user(roles=["grid_staff"], home=COMMUNITY),
        "disabled": create_user(roles=["volunteer"], home=COMMUNITY, status="disabled"),
        "homeless": create_user(roles=["volunteer"]),
        "unknown": None,
    }
    ids = [v.id for v in ours]
    for label, user in others.items():
        named = {"mode": "named", "volunteer_ids": [*ids, user.id if user else uuid.uuid4()]}
        refused = _refused(session, actor, _values(targeting=named))
        assert refused == "/targeting/volunteer_ids", label
    # Every one of the area's own volunteers, a name given twice too, is taken.
    named = {"mode": "named", "volunteer_ids": [*ids, ids[0]]}
    assert _refused(session, actor, _values(targeting=named)) is None


def test_each_mode_needs_what_it_targets(session, grantee, area):
    actor = grantee(COMMUNITY)
    no_place = _values(location=None, area_id=area(COMMUNITY).id)
    assert _refused(session, actor, no_place) == "/location"  # radius without a location
    assert _refused(session, actor, _values(targeting={"mode": "area"})) == "/area_id"
    assert _refused(session, actor, _values(location=None)) == "/location"


# -- time boundaries -----------------------------------------------------------------------------


@given(
    starts=st.sampled_from([None, -60, 0, 60]),
    ends=st.integers(min_value=-3, max_value=3),
)
@EXAMPLES
def test_a_task_ends_after_it_starts_and_after_now(session, grantee, monkeypatch, starts, ends):
    """ends_at must be later than both the start (when given) and now, by any amount: equal
    is refused. `ends` is microseconds from the later of the two."""
    monkeypatch.setattr(tasks_service, "_now", lambda: T0)
    actor = grantee(COMMUNITY)
    starts_at = None if starts is None else T0 + dt.timedelta(seconds=starts)
    later = max(T0, starts_at or T0)
    values = _values(starts_at=starts_at, ends_at=later + dt.timedelta(microseconds=ends))
    assert _refused(session, actor, values) == (None if ends > 0 else "/ends_at")


@pytest.fixture
def on_duty(session, create_user):
    """on_duty(metres_east): a volunteer of 南郎家园 on duty that far east of HOME."""

    def make(metres: float):
        user = create_user(roles=["volunteer"], home=COMMUNITY, location_sharing=True)
        duty_service.set_duty(session, user, True, {"lon": east(metres), "lat": HOME[1]})
        return user

    return make


def _task(session, actor, **overrides) -> Task:
    return tasks_service.create(session, actor, _values(**overrides))


def _offered(session, actor, volunteers, **overrides) -> Task:
    """A task of `actor` naming `volunteers`, its first phase sent (they are asked)."""
    named = {"mode": "named", "volunteer_ids": [v.id for v in volunteers]}
    task_row = _task(session, actor, targeting=named, **overrides)
    tasks_service.fan_out(session, task_row.id, 0, tasks_service._now(), _settings())
    return task_row


def _fan_out_jobs(session, task_row) -> list[int]:
    """The phases of the task's fan-out jobs, in order."""
    rows = session.execute(
        text(
            "SELECT (args->>'phase')::int FROM procrastinate_jobs "
            "WHERE task_name LIKE '%fan_out_task' AND args->>'task_id' = :t ORDER BY id"
        ),
        {"t": str(task_row.id)},
    )
    return [phase for (phase,) in rows]


@pytest.mark.parametrize(
    ("before_end", "asked"), [(dt.timedelta(0), 0), (dt.timedelta(0, 0, 1), 1)]
)
def test_a_fan_out_at_the_tasks_end_asks_nobody(session, grantee, on_duty, before_end, asked):
    volunteer = on_duty(30)
    task_row = _task(session, grantee(COMMUNITY))
    assert (
        tasks_service.fan_out(
            session,
            task_row.id,
            0,
            task_row.ends_at - before_end,
            _settings(),
        )
        == asked
    )
    chosen = session.scalars(
        select(TaskRecipient.user_id).where(TaskRecipient.task_id == task_row.id)
    )
    assert list(chosen) == [volunteer.id] * asked


def test_a_cancelled_task_asks_nobody(session, grantee, on_duty):
    on_duty(30)
    task_row = _task(session, grantee(COMMUNITY))
    tasks_service.cancel(session, task_row, "已处置")
    assert (
        tasks_service.fan_out(
            session,
            task_row.id,
            0,
            tasks_service._now(),
            _settings(),
        )
        == 0
    )
    assert _fan_out_jobs(session, task_row) == [0]  # only the creation's


@pytest.mark.parametrize(
    ("widen_after_s", "max_radius_m", "phases"),
    [
        (60, 2000, [0, 1, 2]),  # 500, 1000, 2000: the third phase reaches the maximum
        (60, 1000, [0, 1]),
        (60, 999, [0, 1]),  # a maximum between two doublings is the last phase's radius
        (60, 500, [0]),  # at the maximum from the start: never widens
        (0, 2000, [0]),  # 0: never widen
    ],
)
def test_a_radius_task_widens_until_its_maximum(
    session, grantee, widen_after_s, max_radius_m, phases
):
    targeting = {"mode": "radius", "widen_after_s": widen_after_s, "max_radius_m": max_radius_m}
    task_row = _task(session, grantee(COMMUNITY), needed=3, targeting=targeting)
    for phase in range(4):
        tasks_service.fan_out(
            session,
            task_row.id,
            phase,
            tasks_service._now(),
            _settings(),
        )
    assert _fan_out_jobs(session, task_row) == phases
    assert tasks_service.phase_radius(task_row, phases[-1]) == min(
        500 * 2 ** phases[-1], max_radius_m
    )


def test_only_radius_tasks_widen(session, grantee, area, create_user):
    actor = grantee(COMMUNITY)
    volunteer = create_user(roles=["volunteer"], home=COMMUNITY)
    widening = {"widen_after_s": 60, "max_radius_m": 2000}
    for targeting in (
        {"mode": "area", **widening},
        {"mode": "named", "volunteer_ids": [volunteer.id], **widening},
    ):
        task_row = _task(session, actor, area_id=area(COMMUNITY).id, targeting=targeting)
        tasks_service.fan_out(
            session,
            task_row.id,
            0,
            tasks_service._now(),
            _settings(),
        )
        assert _fan_out_jobs(session, task_row) == [0], targeting["mode"]


def test_a_cancelled_task_takes_no_answer(session, grantee, create_user):
    volunteer = create_user(roles=["volunteer"], home=COMMUNITY)
    task_row = _offered(session, grantee(COMMUNITY), [volunteer])
    tasks_service.cancel(session, task_row, None)
    with pytest.raises(Conflict):
        tasks_service.respond(
            session,
            volunteer,
            task_row.id,
            {"action": "accept"},
            _settings(),
        )
    session.expire_all()
    assert session.get(Task, task_row.id).accepted == 0


def test_only_a_recipient_answers_and_only_staff_of_the_area_read_it(session, grantee, create_user):
    volunteer, stranger = (create_user(roles=["volunteer"], home=COMMUNITY) for _ in range(2))
    task_row = _offered(session, grantee(COMMUNITY), [volunteer])
    with pytest.raises(NotFound):
        tasks_service.respond(
            session,
            stranger,
            task_row.id,
            {"action": "accept"},
            _settings(),
        )
    for grant in GRANTS:
        reader = grantee(grant)
        try:
            found = tasks_service.managed(session, reader, task_row.id)
        except DomainError:
            found = None
        assert (found is task_row) == _inside(session, COMMUNITY, grant), grant
    with pytest.raises(NotFound):
        tasks_service.managed(session, grantee(DISTRICT), uuid.uuid4())


# -- reach ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shown_from", [1, 2, 3, 4])
def test_reach_withholds_a_radius_count_below_the_threshold(session, grantee, on_duty, shown_from):
    for metres in (20, 40, 60):
        on_duty(metres)
    actor = grantee(COMMUNITY)
    answer = tasks_service.reach(
        session,
        actor,
        _values(needed=3, radius_m=100),
        shown_from,
        _settings(),
    )
    if shown_from <= 3:
        assert answer == {"count": 3, "below": None, "mode": "radius"}
    else:
        assert answer == {"count": None, "below": shown_from, "mode": "radius"}


def test_reach_counts_the_first_phase_only(session, grantee, on_duty):
    """Those within the radius, not those the task would reach once it widened."""
    for metres in (90, 110, 190):
        on_duty(metres)
    values = _values(needed=3, radius_m=100)
    answer = tasks_service.reach(session, grantee(COMMUNITY), values, 1, _settings())
    assert answer == {"count": 1, "below": None, "mode": "radius"}


def test_reach_counts_other_modes_whatever_the_threshold(session, grantee, create_user):
    volunteer = create_user(roles=["volunteer"], home=COMMUNITY)
    named = {"mode": "named", "volunteer_ids": [volunteer.id]}
    answer = tasks_service.reach(
        session,
        grantee(COMMUNITY),
        _values(targeting=named),
        5,
        _settings(),
    )
    assert answer == {"count": 1, "below": None, "mode": "named"}


def test_stale_positions_expire_at_their_age(session, on_duty):
    volunteer = on_duty(30)
    duty = session.get(DutyStatus, volunteer.id)
    at = duty.position_at
    assert duty_service.expire_positions(session, at + dt.timedelta(minutes=10), 10) == 0
    later = at + dt.timedelta(minutes=10, microseconds=1)
    assert duty_service.expire_positions(session, later, 10) == 1
    session.expire_all()
    assert session.get(DutyStatus, volunteer.id).position_at is None


# -- service hours -------------------------------------------------------------------------------

HOUR = 3600


@st.composite
def _answer_times(draw):
    """(task length, acceptance, arrival or None, completion): seconds from the task's start,
    each answer while the task runs."""
    length_s = draw(st.integers(10 * 60, 20 * HOUR))
    accepted = draw(st.integers(-3 * HOUR, length_s - 3))
    arrived = draw(st.none() | st.integers(accepted, length_s - 2))
    completed = draw(st.integers(accepted if arrived is None else arrived, length_s - 1))
    return length_s, accepted, arrived, completed


@given(times=_answer_times())
@example(times=(20 * HOUR, 0, None, 19 * HOUR))  # more than 12 hours: 12
@example(times=(20 * HOUR, -2 * HOUR, 30, 12 * HOUR + 31))  # 12 hours and a second: 12
@example(times=(5 * HOUR, -2 * HOUR, -HOUR, 3 * HOUR))  # arrived before the start: from it
@example(times=(5 * HOUR, HOUR, 2 * HOUR, 2 * HOUR))  # completed on arrival: nothing
@EXAMPLES
def test_service_hours_run_from_arrival_or_acceptance_to_completion(
    session, app, grantee, create_user, monkeypatch, times
):
    """Credited: from arrival (else acceptance), but not before the task's start, to completion;
    never negative, at most the task's length and 12 hours; on the local day of completion."""
    length_s, accepted, arrived, completed = times
    since = accepted if arrived is None else arrived
    clock = {"now": T0 - dt.timedelta(hours=4)}
    monkeypatch.setattr(tasks_service, "_now", lambda: clock["now"])
    volunteer = create_user(roles=["volunteer"], home=COMMUNITY)
    named = {"mode": "named", "volunteer_ids": [volunteer.id]}
    ends_at = T0 + dt.timedelta(seconds=length_s)
    task_row = _task(session, grantee(COMMUNITY), starts_at=T0, ends_at=ends_at, targeting=named)
    tasks_service.fan_out(
        session,
        task_row.id,
        0,
        clock["now"],
        _settings(),
    )
    here = {"lon": HOME[0], "lat": HOME[1]}
    for action, offset in (("accept", accepted), ("arrive", arrived), ("complete", completed)):
        if offset is not None:
            clock["now"] = T0 + dt.timedelta(seconds=offset)
            tasks_service.respond(
                session,
                volunteer,
                task_row.id,
                {"action": action, "location": here},
                _settings(),
            )
    begun = max(since, 0)
    seconds = max(0, min(completed - begun, length_s, 12 * HOUR))
    local = ZoneInfo(app.config["SERVICE_TIMEZONE"])
    day = (T0 + dt.timedelta(seconds=completed)).astimezone(local).date()
    credited = session.execute(
        select(ServiceEntry.day, ServiceEntry.seconds, ServiceEntry.kind).where(
            ServiceEntry.volunteer_id == volunteer.id
        )
    ).all()
    assert credited == ([(day, seconds, "task:event_support")] if seconds else [])


@pytest.mark.parametrize(("completed_utc", "local_day"), [("15:59:59", 3), ("16:00:00", 4)])
def test_service_hours_go_to_the_local_day_of_completion(
    session, grantee, create_user, monkeypatch, completed_utc, local_day
):
    """Asia/Shanghai is UTC+8: 16:00 UTC is the next local day."""
    clock = {"now": T0}
    monkeypatch.setattr(tasks_service, "_now", lambda: clock["now"])
    volunteer = create_user(roles=["volunteer"], home=COMMUNITY)
    named = {"mode": "named", "volunteer_ids": [volunteer.id]}
    task_row = _task(
        session,
        grantee(COMMUNITY),
        starts_at=T0,
        ends_at=T0 + dt.timedelta(hours=10),
        targeting=named,
    )
    tasks_service.fan_out(session, task_row.id, 0, T0, _settings())
    tasks_service.respond(
        session,
        volunteer,
        task_row.id,
        {"action": "accept"},
        _settings(),
    )
    hours, minutes, seconds = map(int, completed_utc.split(":"))
    clock["now"] = T0.replace(hour=hours, minute=minutes, second=seconds, microsecond=0)
    tasks_service.respond(
        session,
        volunteer,
        task_row.id,
        {"action": "complete"},
        _settings(),
    )
    days = session.scalars(
        select(ServiceEntry.day).where(ServiceEntry.volunteer_id == volunteer.id)
    )
    assert list(days) == [dt.date(2026, 12, local_day)]


# -- arrival, widening, the offer's text ---------------------------------------------------------


def _metres_east_of_home(session, metres: float) -> dict[str, float]:
    """The point `metres` east of HOME on the spheroid, as PostGIS measures distances."""
    lon, lat = session.execute(
        text(
            "SELECT ST_X(p::geometry), ST_Y(p::geometry) FROM (SELECT ST_Project("
            "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :metres, pi() / 2) AS p) s"
        ),
        {"lon": HOME[0], "lat": HOME[1], "metres": metres},
    ).one()
    return {"lon": lon, "lat": lat}


@pytest.mark.parametrize(
    ("radius", "metres", "arrives"),
    [
        (None, 499.9, True),
        (None, 500.1, False),
        (50, 49.9, True),
        (50, 50.1, False),
    ],
)
def test_arriving_is_within_the_tasks_radius_of_500_m_unless_it_says(
    session, grantee, create_user, radius, metres, arrives
):
    volunteer = create_user(roles=["volunteer"], home=COMMUNITY)
    task_row = _offered(session, grantee(COMMUNITY), [volunteer], radius_m=radius)
    tasks_service.respond(session, volunteer, task_row.id, {"action": "accept"}, _settings())
    there = {"action": "arrive", "location": _metres_east_of_home(session, metres)}
    if arrives:
        tasks_service.respond(session, volunteer, task_row.id, there, _settings())
    else:
        with pytest.raises(Unprocessable):
            tasks_service.respond(session, volunteer, task_row.id, there, _settings())
    mine = session.scalar(select(TaskRecipient).where(TaskRecipient.user_id == volunteer.id))
    assert mine.response == ("arrived" if arrives else "accepted")


@pytest.mark.parametrize(("radius", "widest"), [(1000, 4000), (4999, 19_996), (6000, 20_000)])
def test_a_task_widens_to_four_times_its_radius_and_20_km_at_most(session, grantee, radius, widest):
    """Unless told otherwise: radius tasks widen after two minutes, up to four times their
    radius or 20 km; a limit given is kept, from the radius itself up, and one short of the
    radius is refused. A task without a place never widens."""
    task_row = _task(session, grantee(COMMUNITY), radius_m=radius)
    assert task_row.phase == 0  # not asked yet: the first phase comes next
    assert task_row.targeting["max_radius_m"] == widest
    assert task_row.targeting["widen_after_s"] == 120
    for limit in (radius, 20_000):
        asked = {"mode": "radius", "max_radius_m": limit, "widen_after_s": 0}
        told = _task(session, grantee(COMMUNITY), radius_m=radius, targeting=asked)
        assert (told.targeting["max_radius_m"], told.targeting["widen_after_s"]) == (limit, 0)
    short = {"mode": "radius", "max_radius_m": radius - 1}
    values = _values(radius_m=radius, targeting=short)
    assert _refused(session, grantee(COMMUNITY), values) == "/targeting/max_radius_m"
    placeless = _task(
        session,
        grantee(COMMUNITY),
        location=None,
        area_id=session.scalar(select(Area.id).where(Area.code == COMMUNITY)),
        targeting={"mode": "area"},
    )
    assert placeless.targeting["max_radius_m"] is None


@pytest.mark.parametrize("length", [119, 120, 121, 500])
def test_an_offer_shows_the_first_120_characters_of_the_description(
    session, grantee, create_user, length
):
    volunteer = create_user(roles=["volunteer"], home=COMMUNITY)
    description = "".join("东西南北中"[n % 5] for n in range(length))
    _offered(session, grantee(COMMUNITY), [volunteer], description=description)
    offered = session.scalar(
        select(Notification).where(
            Notification.user_id == volunteer.id, Notification.kind == "task_offered"
        )
    )
    assert offered.data["summary"] == description[:120]


def test_the_staff_list_filters_by_kind_and_area(session, grantee):
    actor = grantee(SUBDISTRICT)
    patrol = _task(session, actor, kind="patrol")
    support = _task(session, actor, kind="event_support")
    there = {"lon": NEIGHBOUR[0], "lat": NEIGHBOUR[1]}
    elsewhere = _task(session, actor, kind="patrol", location=there)

    def listed(**args) -> set[uuid.UUID]:
        return {t.id for t in session.scalars(tasks_service.list_query(actor, args))}

    assert {patrol.id, support.id, elsewhere.id} <= listed()
    by_kind = listed(kind="patrol")
    assert {patrol.id, elsewhere.id} <= by_kind and support.id not in by_kind
    patrols = session.scalars(tasks_service.list_query(actor, {"kind": "patrol"})).all()
    assert {t.kind for t in patrols} == {"patrol"}
    community = session.scalar(select(Area.id).where(Area.code == COMMUNITY))
    by_area = listed(kind="patrol", area_id=community)
    assert patrol.id in by_area and elsewhere.id not in by_area


@pytest.mark.parametrize(("needed", "offered"), [(1, 3), (3333, 9999), (3334, 10_000)])
def test_a_phase_offers_three_times_the_places_and_10000_at_most(session, grantee, needed, offered):
    task_row = _task(session, grantee(COMMUNITY), needed=needed)
    assert task_row.targeting["max_recipients"] == offered


def test_a_full_task_is_offered_to_nobody_even_in_its_first_phase(session, grantee, create_user):
    """A first fan-out run again (its job retried) after the places were taken asks nobody."""
    first, second = (create_user(roles=["volunteer"], home=COMMUNITY) for _ in range(2))
    named = {"mode": "named", "volunteer_ids": [first.id, second.id]}
    task_row = _task(session, grantee(COMMUNITY), targeting=named)
    now = tasks_service._now()
    assert tasks_service.fan_out(session, task_row.id, 0, now, _settings()) == 2
    tasks_service.respond(session, first, task_row.id, {"action": "accept"}, _settings())
    assert tasks_service.fan_out(session, task_row.id, 0, now, _settings()) == 0


@pytest.mark.parametrize("reason", ["活动因天气取消", None])
def test_those_engaged_are_told_of_a_cancellation_and_its_reason(
    session, grantee, create_user, reason
):
    volunteer = create_user(roles=["volunteer"], home=COMMUNITY)
    task_row = _offered(session, grantee(COMMUNITY), [volunteer])
    tasks_service.respond(session, volunteer, task_row.id, {"action": "accept"}, _settings())
    tasks_service.cancel(session, task_row, reason)
    told = session.scalar(
        select(Notification).where(
            Notification.user_id == volunteer.id, Notification.kind == "task_cancelled"
        )
    )
    assert (told.data["title"], told.data["reason"]) == (task_row.title, reason or "")


@pytest.mark.parametrize(
    ("kind", "on_duty_at", "checks"),
    [
        ("urgent_assist", 30, 1),
        ("urgent_assist", None, 0),
        ("event_support", 30, 0),
    ],
)
def test_an_urgent_offer_schedules_its_sms_check(
    session, grantee, on_duty, kind, on_duty_at, checks
):
    """Urgent kinds fall back to SMS for those whose phone did not report the push: a check is
    scheduled when someone was asked, and none when nobody was or the kind never falls back."""
    if on_duty_at is not None:
        on_duty(on_duty_at)
    task_row = _task(session, grantee(COMMUNITY), kind=kind, radius_m=100)
    tasks_service.fan_out(session, task_row.id, 0, tasks_service._now(), _settings())
    scheduled = session.scalar(
        text(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name LIKE '%sms_fallback' "
            "AND args->>'task_id' = :t"
        ),
        {"t": str(task_row.id)},
    )
    assert scheduled == checks


def test_each_phase_doubles_the_radius_up_to_the_limit(session, grantee):
    widening = {"mode": "radius", "max_radius_m": 1000}
    task_row = _task(session, grantee(COMMUNITY), radius_m=100, targeting=widening)
    radii = [tasks_service.phase_radius(task_row, phase) for phase in range(6)]
    assert radii == [100, 200, 400, 800, 1000, 1000]


@pytest.mark.parametrize(("widen_after_s", "widens"), [(0, False), (1, True), (120, True)])
def test_a_task_widens_after_the_delay_it_was_given_and_never_with_0(
    session, grantee, widen_after_s, widens
):
    targeting = {"mode": "radius", "widen_after_s": widen_after_s}
    task_row = _task(session, grantee(COMMUNITY), radius_m=100, targeting=targeting)
    tasks_service.fan_out(session, task_row.id, 0, tasks_service._now(), _settings())
    assert _fan_out_jobs(session, task_row) == ([0, 1] if widens else [0])
