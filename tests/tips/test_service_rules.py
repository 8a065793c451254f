"""Rules of the tips' service that the mutants of app/tips/service.py showed no test stating
(issue #22), at the service: "is this what you saw?" answers about the category asked, in
distance bands that include their ends; at most twenty duplicate candidates; who approved a
public summary, and when; codes of ten characters; an address-only anonymous tip reaching the
sole district; a merge moving the versions of the tips it re-points forward and telling the
merged tip's reporter."""

from __future__ import annotations

import uuid

import pytest
from flask import current_app
from geoalchemy2 import WKTElement
from psycopg.errors import LockNotAvailable
from sqlalchemy import orm, select, text
from sqlalchemy.exc import OperationalError

from app.areas.models import Area, AreaLevel
from app.auth.models import User
from app.extensions import db
from app.tips import service as tips_service
from app.tips.models import TipCategory
from notifications.models import Notification
from tests.tips.conftest import JIANWAI


def _metres_north(session, metres: float) -> tuple[float, float]:
    """The point `metres` north of JIANWAI on the spheroid, as PostGIS measures distances."""
    return tuple(
        session.execute(
            text(
                "SELECT ST_X(p::geometry), ST_Y(p::geometry) FROM (SELECT ST_Project("
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :metres, 0) AS p) AS s"
            ),
            {"lon": JIANWAI[0], "lat": JIANWAI[1], "metres": metres},
        ).one()
    )


def _tip(session, category: str, lon: float, lat: float):
    values = {
        "category": category,
        "description": "楼道里堆满了纸箱",
        "location": {"lon": lon, "lat": lat, "accuracy_m": 5},
    }
    return tips_service.submit(session, None, values)


@pytest.fixture
def wide_fire_hazards(session):
    """Fire hazards compared within 5 km (the largest radius a category may have)."""
    category = session.get(TipCategory, "fire_hazard")
    category.duplicate_radius_m = 5000
    session.flush()
    return category


def test_nearby_tips_are_answered_in_bands_that_include_their_ends(session, wide_fire_hazards):
    bands = tips_service.DISTANCE_BANDS_M
    assert bands == (50, 100, 250, 500, 1000, 2500, 5000)
    expected = []
    for band in bands:
        for metres in (band - 0.5, band, band + 0.5):
            if metres >= bands[-1]:
                continue  # the category's radius: its end is PostGIS' ST_DWithin's to judge
            _tip(session, "fire_hazard", *_metres_north(session, metres))
            expected.append(next(b for b in bands if metres <= b))
    answer = tips_service.nearby_open(
        session, *JIANWAI, "fire_hazard", signed_in=False, limit=len(expected) + 1
    )
    assert [row["within_m"] for row in answer] == expected


def test_at_most_twenty_duplicate_candidates_are_offered(session, create_user):
    staff = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    tips = [_tip(session, "fire_hazard", *JIANWAI) for _ in range(22)]
    found = tips_service.duplicates(session, staff, tips[0])
    assert len(found["candidates"]) == 20
    assert tips[0] not in found["candidates"]


def test_an_approved_summary_names_its_approver_and_time_and_a_withdrawal_clears_them(
    session, create_user
):
    staff = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    tip = _tip(session, "fire_hazard", *JIANWAI)
    tips_service.set_public_summary(session, staff, tip, "楼道杂物已清理")
    assert (tip.public_summary, tip.public_summary_by) == ("楼道杂物已清理", staff.id)
    assert tip.public_summary_at is not None
    tips_service.set_public_summary(session, staff, tip, None)
    assert (tip.public_summary, tip.public_summary_by, tip.public_summary_at) == (None,) * 3


def test_nearby_answers_only_about_the_category_asked(session):
    _tip(session, "theft", *JIANWAI)
    assert tips_service.nearby_open(session, *JIANWAI, "fire_hazard", signed_in=True) == []
    _tip(session, "fire_hazard", *JIANWAI)
    answer = tips_service.nearby_open(session, *JIANWAI, "fire_hazard", signed_in=True)
    assert [row["category"] for row in answer] == ["fire_hazard"]


def test_a_tips_code_is_ten_characters_of_crockfords_alphabet(session):
    code = _tip(session, "fire_hazard", *JIANWAI).code
    assert len(code) == 10 and set(code) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_an_anonymous_tip_with_only_an_address_reaches_the_sole_district(session):
    districts = session.scalars(select(Area.id).where(Area.level == AreaLevel.DISTRICT)).all()
    assert len(districts) == 1  # the demo data: 朝阳区
    values = {"category": "theft", "description": "车棚里有人撬锁", "address_text": "建外街道"}
    assert tips_service.submit(session, None, values).district_id == districts[0]


def test_with_two_districts_an_address_only_anonymous_tip_reaches_no_district_yet(session):
    """Only a sole district is a safe guess; with two, staff find the tip among the unplaced."""
    other = uuid.uuid4()
    session.add(
        Area(
            id=other,
            code="990100",
            name="另一个区",
            level=AreaLevel.DISTRICT,
            district_id=other,
            geom=WKTElement("MULTIPOLYGON(((0 0,0 1,1 1,1 0,0 0)))", srid=4326),
        )
    )
    session.flush()
    values = {"category": "theft", "description": "车棚里有人撬锁", "address_text": "建外街道"}
    assert tips_service.submit(session, None, values).district_id is None


def test_a_merge_moves_the_tips_it_re_points_to_a_newer_version(session, create_user):
    """Tips merged into a tip follow it when it is merged in turn, and their versions (ETags)
    move forward: never back to one a client may hold from before."""
    staff = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    first, second, third = (_tip(session, "fire_hazard", *JIANWAI) for _ in range(3))
    tips_service.merge(session, staff, first, second.id)
    session.refresh(first)
    seen = first.version
    tips_service.merge(session, staff, second, third.id)
    session.refresh(first)
    assert first.merged_into_id == third.id and first.version > seen


def test_the_merged_tips_reporter_is_told_of_the_merge(session, create_user):
    staff = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    merged, kept = _tip(session, "fire_hazard", *JIANWAI), _tip(session, "fire_hazard", *JIANWAI)
    tips_service.merge(session, staff, merged, kept.id)
    lines = tips_service.public_history(session, merged)
    assert [(e.kind, e.to_status) for e in lines][-1] == ("merged", "merged")


def test_a_merged_tip_is_offered_no_duplicate_candidates(session, create_user):
    staff = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    merged, kept, _other = (_tip(session, "fire_hazard", *JIANWAI) for _ in range(3))
    assert tips_service.duplicates(session, staff, merged)["candidates"]
    tips_service.merge(session, staff, merged, kept.id)
    assert tips_service.duplicates(session, staff, merged)["candidates"] == []


def test_a_follow_secret_is_120_bits_in_24_base32_characters(session):
    secret = tips_service.follow_secret(uuid.uuid4(), current_app.config["TIP_FOLLOW_KEY"])
    assert len(secret) == 24 and set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def test_nearby_answers_at_most_five_tips_by_default(session):
    for _ in range(6):
        _tip(session, "fire_hazard", *JIANWAI)
    assert len(tips_service.nearby_open(session, *JIANWAI, "fire_hazard", signed_in=True)) == 5


def test_nearby_answers_tips_newer_than_the_window_by_the_databases_clock(session):
    """The window ends where the tip's created_at comes from: the database's clock (an app host
    whose clock runs ahead or behind would move it). A tip made exactly one window before now
    is out, one a microsecond later in. `now()` is the transaction's start: fixed inside it."""
    hours = session.get(TipCategory, "fire_hazard").duplicate_window_hours
    out, inside = _tip(session, "fire_hazard", *JIANWAI), _tip(session, "fire_hazard", *JIANWAI)
    for tip, later in ((out, "0"), (inside, "1 microsecond")):
        session.execute(
            text(
                "UPDATE tips SET created_at = now() - make_interval(hours => :hours) "
                "+ CAST(:later AS interval) WHERE id = :id"
            ),
            {"hours": hours, "later": later, "id": tip.id},
        )
    session.expire_all()
    answer = tips_service.nearby_open(session, *JIANWAI, "fire_hazard", signed_in=True)
    hour = inside.created_at.replace(minute=0, second=0, microsecond=0)
    assert [row["hour"] for row in answer] == [hour]


@pytest.mark.parametrize("lock", [True, False, None])
def test_a_tip_read_for_a_change_is_locked_until_the_change_commits(session, lock):
    """Staff writes read the tip with `lock`: a second writer waits for the first (its version
    check then sees the first one's change) instead of both passing it. A plain read locks
    nothing. (Sessions of their own: the rows must be committed for another to see them.)"""
    with orm.Session(db.engine) as setup:
        tip_id = _tip(setup, "fire_hazard", *JIANWAI).id
        setup.commit()
    try:
        with orm.Session(db.engine) as writer, db.engine.connect() as other:
            staff = User(roles=["grid_staff"], status="active")
            staff.jurisdiction = [writer.scalar(select(Area).where(Area.code == "110105001024"))]
            asked = {} if lock is None else {"lock": lock}  # None: a plain read
            tips_service.get_for_staff(writer, staff, tip_id, **asked)
            other.execute(text("SET lock_timeout = '100ms'"))
            try:
                other.execute(text("SELECT 1 FROM tips WHERE id = :id FOR UPDATE"), {"id": tip_id})
                locked = False
            except OperationalError as error:
                assert isinstance(error.orig, LockNotAvailable), error
                locked = True
            writer.rollback()
    finally:
        with db.engine.begin() as cleanup:
            cleanup.execute(text("DELETE FROM tips WHERE id = :id"), {"id": tip_id})
    assert locked is bool(lock)


@pytest.mark.parametrize(
    ("named", "consent", "stored"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_only_a_named_reporter_who_says_so_consents_to_police_contact(
    session, create_user, named, consent, stored
):
    """Consent is the reporter's own word: never assumed for a named reporter, and meaningless
    (so not stored) for an anonymous tip, which has no one to contact."""
    reporter = create_user() if named else None
    values = {
        "category": "fire_hazard",
        "description": "楼道里堆满了纸箱",
        "location": {"lon": JIANWAI[0], "lat": JIANWAI[1], "accuracy_m": 5},
        "police_contact_consent": consent,
    }
    tip = tips_service.submit(session, reporter, values)
    assert tip.police_contact_consent is stored


def test_the_categories_offered_leave_out_retired_ones(session):
    """What reporters and Open311 clients are offered; staff ask for the retired ones too."""
    retired = session.get(TipCategory, "fire_hazard")
    retired.active = False
    session.flush()
    offered = {c.code for c in tips_service.categories(session)}
    assert "fire_hazard" not in offered and "theft" in offered
    everything = {c.code for c in tips_service.categories(session, include_inactive=True)}
    assert everything == offered | {"fire_hazard"}


def test_a_reporters_added_information_is_in_their_own_history(session, create_user):
    reporter = create_user()
    values = {
        "category": "fire_hazard",
        "description": "楼道里堆满了纸箱",
        "location": {"lon": JIANWAI[0], "lat": JIANWAI[1], "accuracy_m": 5},
    }
    tip = tips_service.submit(session, reporter, values)
    tips_service.add_information(session, tip, "纸箱还在", [], reporter)
    lines = tips_service.public_history(session, tip)
    assert [(e.kind, e.note) for e in lines][-1] == ("info_added", "纸箱还在")


def _at_distance_from_the_district(session, metres: float) -> tuple[float, float]:
    """A point east of the demo district, `metres` from it to a tenth of a metre (ST_Distance
    on the spheroid, as the service measures)."""
    lon, lat = 117.2, 39.9
    for _ in range(20):
        distance = session.execute(
            text(
                "SELECT min(ST_Distance(geography(geom), "
                "geography(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)))) "
                "FROM areas WHERE level = 'district'"
            ),
            {"lon": lon, "lat": lat},
        ).scalar_one()
        if abs(distance - metres) < 0.1:
            return lon, lat
        lon += (metres - distance) / 85_000.0
    raise AssertionError(f"no point {metres} m from the district found")


def test_a_place_outside_every_area_reaches_a_district_within_50_km(session):
    """Inside the areas a tip takes its areas; outside them, up to 50 km from a district (the
    end included), that district, and it is marked outside the areas; beyond, no area."""
    inside = _tip(session, "fire_hazard", *JIANWAI)
    assert inside.district_id is not None and inside.outside_areas is False
    near = _tip(session, "fire_hazard", *_at_distance_from_the_district(session, 49_999.5))
    assert (near.district_id, near.outside_areas) == (inside.district_id, True)
    far = _tip(session, "fire_hazard", *_at_distance_from_the_district(session, 50_000.5))
    assert far.district_id is None


@pytest.mark.parametrize("public", [True, False])
def test_a_public_note_is_told_to_the_reporter_and_a_staff_note_is_not(
    session, create_user, public
):
    reporter = create_user()
    staff = create_user(roles=["grid_staff"], jurisdiction=["110105001024"])
    values = {
        "category": "fire_hazard",
        "description": "楼道里堆满了纸箱",
        "location": {"lon": JIANWAI[0], "lat": JIANWAI[1], "accuracy_m": 5},
    }
    tip = tips_service.submit(session, reporter, values)
    tips_service.add_note(session, staff, tip, "已联系物业", public)
    told = session.scalars(
        select(Notification.data).where(
            Notification.user_id == reporter.id, Notification.kind == "tip_note"
        )
    ).all()
    assert [d["note"] for d in told] == (["已联系物业"] if public else [])
