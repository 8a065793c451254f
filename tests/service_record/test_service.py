"""Service-hour rules, called on the service: a source's credit replaces its earlier one, the
daily cap applies to the whole day across sources and each keeps its share, the period is
inclusive, and staff see only the records of volunteers living in their jurisdiction."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.core.errors import NotFound
from app.service_record import service

NANLANG, CHAOWAI_COMMUNITY = "110105001024", "110105002024"
DAY = dt.date(2026, 11, 3)
HOUR = 3600


@pytest.fixture
def volunteer(create_user):
    return create_user(home=NANLANG)


@pytest.fixture
def cap(app) -> int:
    return app.config["SERVICE_DAILY_CAP_HOURS"]


@pytest.fixture
def credit(session, volunteer):
    def add(seconds_by_day, kind="walk_along", source_id=None, who=None):
        source_id = source_id or uuid.uuid4()
        service.replace_entries(
            session,
            volunteer_id=(who or volunteer).id,
            source_type="patrol",
            source_id=source_id,
            kind=kind,
            seconds_by_day=seconds_by_day,
        )
        return source_id

    return add


def record(session, volunteer, first=dt.date(2026, 11, 1), last=dt.date(2026, 11, 30)):
    # The service's settings as the application's defaults give them (8 hours, Beijing).
    return service.record(session, volunteer, first, last, cap_hours=8, timezone="Asia/Shanghai")


def test_a_source_credited_again_replaces_what_it_credited_before(session, volunteer, credit):
    patrol = credit({DAY: 2 * HOUR, DAY + dt.timedelta(days=1): HOUR})
    credit({DAY: 3 * HOUR}, source_id=patrol)
    assert record(session, volunteer)["total_hours"] == 3


def test_days_with_no_time_credit_nothing(session, volunteer, credit):
    credit({DAY: 0})
    assert record(session, volunteer)["by_month"] == []


def test_the_cap_applies_to_the_day_across_sources_and_each_keeps_its_share(
    session, volunteer, credit, cap
):
    credit({DAY: 3 * cap * HOUR // 2}, kind="walk_along")
    credit({DAY: cap * HOUR // 2}, kind="team_patrol")
    answer = record(session, volunteer)
    assert answer["total_hours"] == cap
    assert answer["uncapped_hours"] == 2 * cap
    assert answer["by_kind"] == {"team_patrol": cap / 4, "walk_along": 3 * cap / 4}


def test_the_cap_is_per_day_not_per_period(session, volunteer, credit, cap):
    hours = cap - 1
    credit({DAY + dt.timedelta(days=n): hours * HOUR for n in range(3)})
    answer = record(session, volunteer)
    assert answer["total_hours"] == answer["uncapped_hours"] == 3 * hours


def test_the_period_includes_its_first_and_last_day_only(session, volunteer, credit):
    first, last = dt.date(2026, 11, 2), dt.date(2026, 11, 4)
    credit({first - dt.timedelta(days=1): HOUR, first: HOUR, last: HOUR})
    credit({last + dt.timedelta(days=1): HOUR})
    assert record(session, volunteer, first, last)["total_hours"] == 2


def test_hours_are_split_by_month_in_order(session, volunteer, credit):
    credit({dt.date(2026, 10, 31): HOUR, dt.date(2026, 11, 1): 2 * HOUR})
    answer = record(session, volunteer, dt.date(2026, 10, 1), dt.date(2026, 11, 30))
    assert [(m["month"], m["hours"]) for m in answer["by_month"]] == [
        ("2026-10", 1),
        ("2026-11", 2),
    ]


def test_another_volunteers_hours_are_not_counted(session, volunteer, credit, create_user):
    credit({DAY: 5 * HOUR}, who=create_user(home=NANLANG))
    assert record(session, volunteer)["total_hours"] == 0


def test_staff_find_a_volunteer_living_in_their_jurisdiction(session, volunteer, create_user):
    staff = create_user(roles=["grid_staff"], jurisdiction=[NANLANG])
    assert service.volunteer_for_staff(session, staff, volunteer.id) is volunteer


@pytest.mark.parametrize("home", [CHAOWAI_COMMUNITY, None])
def test_a_volunteer_living_elsewhere_or_nowhere_is_not_found_for_staff(session, create_user, home):
    staff = create_user(roles=["grid_staff"], jurisdiction=[NANLANG])
    with pytest.raises(NotFound):
        service.volunteer_for_staff(session, staff, create_user(home=home).id)
