"""Rules of clue batches stated at the service (issue #22), over their space of inputs: which tips
a batch takes for grants at each level of the area tree, who opens a batch (role by role, level
by level), what its scope records, which tips move and which only get a line, what outcomes are
refused whole, and which files are handed out.

The expected answers come from the rule written out here (an oracle walking the areas' parent
links), not from the code under test."""

from __future__ import annotations

import uuid

import pytest
from flask import current_app
from sqlalchemy import func, orm, select, text

from app.areas.models import Area
from app.auth.models import User
from app.core.audit import AuditEvent
from app.core.errors import Conflict, DomainError, NotFound, Unprocessable
from app.exports import service
from app.exports.models import ClueBatch, ClueBatchItem
from app.extensions import db
from app.storage import export_store
from app.tips import service as tips_service
from app.tips.models import Tip, TipEvent
from tests.exports.test_batches import _post_tip
from tests.tips.conftest import JIANWAI, NEIGHBOUR

DISTRICT, SUBDISTRICT = "110105000000", "110105001000"
COMMUNITY, SIBLING = "110105001024", "110105001025"  # JIANWAI's; NEIGHBOUR's
OTHER_SUBDISTRICT = "110105002000"
GRANTS = (DISTRICT, SUBDISTRICT, COMMUNITY, SIBLING, OTHER_SUBDISTRICT)
FAR = (116.442801, 39.924811)  # 体东 (110105002024, WGS-84) in 朝外, another sub-district
VALUES = {"purpose": "核查辖区盗窃线索", "case_reference": "京公朝刑2026-0042"}


def _max_tips() -> int:
    return current_app.config["MAX_BATCH_TIPS"]


def _inside(session, area_id: uuid.UUID | None, grant_code: str) -> bool:
    """The oracle: inside when the grant is the area or above it, by the parent links."""
    grant = session.scalar(select(Area).where(Area.code == grant_code))
    while area_id is not None:
        if area_id == grant.id:
            return True
        area_id = session.get(Area, area_id).parent_id
    return False


def _tip_area(session, tip_id: str) -> uuid.UUID:
    tip = session.get(Tip, uuid.UUID(tip_id))
    return tip.grid_cell_id or tip.community_id or tip.subdistrict_id or tip.district_id


def _pointer(call) -> str | None:
    try:
        call()
    except Unprocessable as refused:
        return refused.extra["errors"][0]["pointer"]
    return None


def _items(session, batch) -> set[str]:
    rows = session.scalars(select(ClueBatchItem.tip_id).where(ClueBatchItem.batch_id == batch.id))
    return {str(t) for t in rows}


@pytest.fixture
def grantee(create_user):
    return lambda code, role="grid_staff": create_user(roles=[role], jurisdiction=[code])


@pytest.fixture
def tips(client, session):
    """Three tips: in 南郎家园 (JIANWAI), its neighbour community, and another sub-district."""
    made = {
        code: _post_tip(client, at=at)["id"]
        for code, at in ((COMMUNITY, JIANWAI), (SIBLING, NEIGHBOUR), ("far", FAR))
    }
    for code, grant in ((COMMUNITY, COMMUNITY), (SIBLING, SIBLING), ("far", OTHER_SUBDISTRICT)):
        assert _inside(session, _tip_area(session, made[code]), grant)
    return made


# -- which tips ----------------------------------------------------------------------------------


@pytest.mark.parametrize("grant", GRANTS)
def test_a_batch_takes_every_tip_inside_the_jurisdiction_and_only_those(
    session, grantee, tips, grant
):
    actor = grantee(grant)
    inside = {t for t in tips.values() if _inside(session, _tip_area(session, t), grant)}
    everything = {**VALUES, "filters": {"categories": ["theft"]}}
    if not inside:
        refused = _pointer(
            lambda: service.create_batch(session, actor, everything, max_tips=_max_tips())
        )
        assert refused == "/filters"
        return
    batch = service.create_batch(session, actor, everything, max_tips=_max_tips())
    assert _items(session, batch) == inside and batch.row_count == len(inside)
    # Named one by one, a tip outside refuses the whole list.
    outside = set(tips.values()) - inside
    for tip_id in outside:
        named = {**VALUES, "tip_ids": [uuid.UUID(t) for t in (*inside, tip_id)]}
        assert (
            _pointer(lambda n=named: service.create_batch(session, actor, n, max_tips=_max_tips()))
            == "/tip_ids"
        )


def test_a_filter_area_is_checked_at_every_level(session, grantee, area):
    """An area filter must lie inside the grant: the grant itself and below are taken, the
    areas above it and beside it refused (at their index), before anything is locked."""
    for grant in GRANTS:
        actor = grantee(grant)
        for code in (DISTRICT, SUBDISTRICT, COMMUNITY, SIBLING, OTHER_SUBDISTRICT):
            area_id = area(code).id
            values = {**VALUES, "filters": {"area_ids": [area(grant).id, area_id]}}
            nested = session.begin_nested()
            refused = _pointer(
                lambda v=values, a=actor: service.create_batch(session, a, v, max_tips=_max_tips())
            )
            nested.rollback()
            if _inside(session, area_id, grant):
                assert refused == "/filters", (grant, code)  # taken, and no tip there
            else:
                assert refused == "/filters/area_ids/1", (grant, code)


def test_merged_tips_are_never_taken(session, grantee, tips):
    actor = grantee(SUBDISTRICT)
    merged = tips[SIBLING]
    session.execute(
        text("UPDATE tips SET status = 'merged', merged_into_id = :into WHERE id = :id"),
        {"id": uuid.UUID(merged), "into": uuid.UUID(tips[COMMUNITY])},
    )
    named = {**VALUES, "tip_ids": [uuid.UUID(merged)]}
    assert (
        _pointer(lambda: service.create_batch(session, actor, named, max_tips=_max_tips()))
        == "/tip_ids"
    )
    batch = service.create_batch(
        session,
        actor,
        {**VALUES, "filters": {"categories": ["theft"]}},
        max_tips=_max_tips(),
    )
    assert _items(session, batch) == {tips[COMMUNITY]}


def test_status_and_category_filters_select_and_only_open_tips_move(session, grantee, tips):
    actor = grantee(SUBDISTRICT)
    resolved, submitted = uuid.UUID(tips[COMMUNITY]), uuid.UUID(tips[SIBLING])
    session.execute(text("UPDATE tips SET status = 'resolved' WHERE id = :id"), {"id": resolved})
    by_status = {**VALUES, "filters": {"statuses": ["resolved"]}}
    batch = service.create_batch(session, actor, by_status, max_tips=_max_tips())
    assert _items(session, batch) == {str(resolved)}
    # A closed tip keeps its status; it gets a `batched` line, and no transition.
    session.expire_all()
    assert session.get(Tip, resolved).status == "resolved"
    kinds = session.scalars(select(TipEvent.kind).where(TipEvent.tip_id == resolved)).all()
    assert sorted(kinds) == ["batched", "submitted"]
    none = {**VALUES, "filters": {"categories": ["noise"]}}
    assert (
        _pointer(lambda: service.create_batch(session, actor, none, max_tips=_max_tips()))
        == "/filters"
    )
    batch = service.create_batch(
        session,
        actor,
        {**VALUES, "tip_ids": [submitted]},
        max_tips=_max_tips(),
    )
    session.expire_all()
    assert session.get(Tip, submitted).status == "referred_to_police"


def test_a_batch_records_its_makers_role_and_whole_scope(session, grantee, area, tips):
    actor = grantee(SUBDISTRICT, role="community_admin")
    batch = service.create_batch(
        session,
        actor,
        {**VALUES, "tip_ids": [uuid.UUID(tips[COMMUNITY])]},
        max_tips=_max_tips(),
    )
    assert (batch.creator_role, batch.scope_everywhere) == ("grid_staff", False)
    assert batch.scope_area_ids == [area(SUBDISTRICT).id]
    assert batch.status == "pending" and batch.row_count == 1


# -- who opens it --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["grid_staff", "community_admin", "police_liaison"])
def test_a_batch_is_opened_by_its_makers_role_over_its_whole_scope(
    session, grantee, create_user, tips, role
):
    staff_batch = service.create_batch(
        session,
        grantee(COMMUNITY),
        {**VALUES, "tip_ids": [uuid.UUID(tips[COMMUNITY])]},
        max_tips=_max_tips(),
    )
    police_batch = service.create_batch(
        session,
        grantee(SUBDISTRICT, role="police_liaison"),
        {**VALUES, "tip_ids": [uuid.UUID(tips[SIBLING])]},
        max_tips=_max_tips(),
    )
    staff_like = role != "police_liaison"
    for grant in GRANTS:
        reader = grantee(grant, role=role)
        expected = set()
        if staff_like and _inside(session, staff_batch.scope_area_ids[0], grant):
            expected.add(staff_batch.id)
        if not staff_like and _inside(session, police_batch.scope_area_ids[0], grant):
            expected.add(police_batch.id)
        listed = set(session.scalars(service.visible_query(reader)))
        assert {b.id for b in listed} == expected, (role, grant)
        for batch in (staff_batch, police_batch):
            try:
                opened = service.get_batch(session, reader, batch.id) is batch
            except NotFound:
                opened = False
            assert opened == (batch.id in expected), (role, grant)
    nowhere = create_user(roles=[role])
    assert list(session.scalars(service.visible_query(nowhere))) == []


def test_a_batch_made_everywhere_is_opened_only_by_those_everywhere(
    session, create_user, grantee, tips
):
    admin = create_user(roles=["admin"])
    batch = service.create_batch(
        session,
        admin,
        {**VALUES, "tip_ids": [uuid.UUID(tips["far"])]},
        max_tips=_max_tips(),
    )
    assert batch.scope_everywhere and batch.scope_area_ids == []
    assert service.get_batch(session, create_user(roles=["admin"]), batch.id) is batch
    with pytest.raises(NotFound):
        service.get_batch(session, grantee(DISTRICT), batch.id)


# -- outcomes and files --------------------------------------------------------------------------


def _outcomes(session, batch) -> dict:
    """The batch's outcome by tip, as stored."""
    rows = session.execute(
        select(ClueBatchItem.tip_id, ClueBatchItem.outcome).where(
            ClueBatchItem.batch_id == batch.id
        )
    )
    return dict(rows.all())


def test_outcomes_are_refused_whole(session, grantee, tips, client):
    liaison = grantee(SUBDISTRICT, role="police_liaison")
    ids = [uuid.UUID(tips[COMMUNITY]), uuid.UUID(tips[SIBLING])]
    batch = service.create_batch(session, liaison, {**VALUES, "tip_ids": ids}, max_tips=_max_tips())
    stranger = uuid.UUID(_post_tip(client)["id"])
    first = {"tip_id": ids[0], "outcome": "case_opened"}

    def refused(outcomes):
        nested = session.begin_nested()
        try:
            service.record_outcomes(session, liaison, batch, outcomes)
        except DomainError as error:
            return error
        finally:
            nested.rollback()

    twice = refused([first, {"tip_id": ids[0], "outcome": "no_action"}])
    assert isinstance(twice, Unprocessable) and twice.extra["errors"][0]["pointer"] == "/items"
    other = refused([first, {"tip_id": stranger, "outcome": "no_action"}])
    assert other.extra["errors"][0]["pointer"] == "/items/1/tip_id"
    service.record_outcomes(session, liaison, batch, [first])
    changed = refused(
        [{"tip_id": ids[1], "outcome": "duplicate"}, {**first, "outcome": "no_action"}]
    )
    assert isinstance(changed, Conflict)
    session.expire_all()
    outcomes = _outcomes(session, batch)
    assert outcomes == {ids[0]: "case_opened", ids[1]: None}
    police = session.scalars(select(TipEvent.tip_id).where(TipEvent.kind == "police_outcome"))
    assert list(police) == [ids[0]]
    # The police's own words are staff only; the reporter's view gets the fixed line.
    service.record_outcomes(
        session, liaison, batch, [{"tip_id": ids[1], "outcome": "no_action", "note": "已核实"}]
    )
    lines = session.execute(
        select(TipEvent.kind, TipEvent.public, TipEvent.note)
        .where(TipEvent.tip_id == ids[1], TipEvent.kind.in_(("police_outcome", "note")))
        .order_by(TipEvent.kind)
    ).all()
    assert lines == [
        ("note", False, "已核实"),
        ("police_outcome", True, service.PUBLIC_OUTCOME_NOTES["no_action"]),
    ]
    note = session.scalar(
        select(TipEvent).where(TipEvent.tip_id == ids[1], TipEvent.kind == "note")
    )
    assert note.data == {"batch_id": str(batch.id), "police_note": True}  # whose words they are


def test_files_are_handed_out_only_when_ready_and_kept(session, grantee, tips):
    liaison = grantee(SUBDISTRICT, role="police_liaison")
    ids = [uuid.UUID(tips[COMMUNITY])]
    batch = service.create_batch(session, liaison, {**VALUES, "tip_ids": ids}, max_tips=_max_tips())
    export_store().put(service.batch_prefix(batch.id) + "tips.csv", b"tip_id\r\n")
    for status in ("pending", "running", "failed"):
        batch.status = status
        with pytest.raises(Conflict):
            service.open_file(session, liaison, batch, "tips.csv")
    batch.status = "ready"
    with pytest.raises(NotFound):
        service.open_file(session, liaison, batch, "secrets.txt")
    with pytest.raises(NotFound):  # ready, but nothing stored under that name
        service.open_file(session, liaison, batch, "batch.zip")
    assert service.open_file(session, liaison, batch, "tips.csv").read() == b"tip_id\r\n"
    downloads = session.scalars(
        select(AuditEvent.details).where(AuditEvent.action == "clue_batch.downloaded")
    ).all()
    assert downloads == [{"file": "tips.csv"}]
    batch.files_deleted_at = batch.created_at
    with pytest.raises(NotFound):
        service.open_file(session, liaison, batch, "tips.csv")


def test_the_first_acknowledgement_stands(session, grantee, tips):
    liaison, colleague = (grantee(SUBDISTRICT, role="police_liaison") for _ in range(2))
    ids = [uuid.UUID(tips[COMMUNITY])]
    batch = service.create_batch(session, liaison, {**VALUES, "tip_ids": ids}, max_tips=_max_tips())
    service.acknowledge(session, liaison, batch)
    first = (batch.acknowledged_at, batch.acknowledged_by)
    assert first[0] is not None and first[1] == liaison.id
    service.acknowledge(session, colleague, batch)
    assert (batch.acknowledged_at, batch.acknowledged_by) == first
    acknowledged = session.scalars(
        select(AuditEvent.actor_id).where(AuditEvent.action == "clue_batch.acknowledged")
    ).all()
    assert acknowledged == [liaison.id]


def test_only_a_scope_of_real_areas_all_covered_opens_a_batch(session, grantee, create_user, tips):
    """Over every scope a stored row can hold, not only those create_batch writes today: a
    batch marked everywhere, or with no area in its scope, or with an area id that names no
    area, opens only for those everywhere, whatever else its scope lists."""
    maker = grantee(COMMUNITY)
    batch = service.create_batch(
        session,
        maker,
        {**VALUES, "tip_ids": [uuid.UUID(tips[COMMUNITY])]},
        max_tips=_max_tips(),
    )
    community = batch.scope_area_ids[0]
    district_staff, admin = grantee(DISTRICT), create_user(roles=["admin"])
    for everywhere, scope, opens in (
        (False, [community], True),
        (True, [community], False),
        (True, [], False),
        (False, [], False),
        (False, [community, uuid.uuid4()], False),
    ):
        batch.scope_everywhere, batch.scope_area_ids = everywhere, scope
        session.flush()
        listed = set(session.scalars(service.visible_query(district_staff)))
        assert (batch in listed) == opens, (everywhere, scope)
        assert batch in set(session.scalars(service.visible_query(admin))), (everywhere, scope)


def test_a_tip_referred_by_a_batch_moves_to_a_version_it_never_had(session, grantee, tips):
    """Referring is a write: the tip's version (its ETag) moves past every one it had, so no
    ETag read before (even two writes before) passes a precondition again."""
    tip_id = uuid.UUID(tips[COMMUNITY])
    session.execute(text("UPDATE tips SET version = version + 1 WHERE id = :id"), {"id": tip_id})
    session.expire_all()
    had = session.get(Tip, tip_id).version
    service.create_batch(
        session, grantee(SUBDISTRICT), {**VALUES, "tip_ids": [tip_id]}, max_tips=_max_tips()
    )
    session.expire_all()
    tip = session.get(Tip, tip_id)
    assert tip.status == "referred_to_police" and tip.version > had


def test_a_repeated_outcome_is_recorded_once_and_the_rest_of_the_request_still_is(
    session, grantee, tips
):
    """A retried request may repeat outcomes already recorded beside new ones: the repeat
    changes nothing (no second line), the new ones are recorded."""
    liaison = grantee(SUBDISTRICT, role="police_liaison")
    ids = [uuid.UUID(tips[COMMUNITY]), uuid.UUID(tips[SIBLING])]
    batch = service.create_batch(session, liaison, {**VALUES, "tip_ids": ids}, max_tips=_max_tips())
    first = {"tip_id": ids[0], "outcome": "case_opened"}
    service.record_outcomes(session, liaison, batch, [first])
    again = [first, {"tip_id": ids[1], "outcome": "duplicate"}]
    service.record_outcomes(session, liaison, batch, again)
    session.expire_all()
    outcomes = _outcomes(session, batch)
    assert outcomes == {ids[0]: "case_opened", ids[1]: "duplicate"}
    police = session.scalars(select(TipEvent.tip_id).where(TipEvent.kind == "police_outcome"))
    assert sorted(police) == sorted(ids)


@pytest.mark.parametrize(("most", "taken"), [(2, False), (3, True)])
def test_a_batch_holds_at_most_max_tips(session, grantee, tips, most, taken):
    """Three tips match a district-wide batch: refused whole (nothing moves) when at most two
    may be taken, taken when three may."""
    actor = grantee(DISTRICT)
    everything = {**VALUES, "filters": {}}
    if taken:
        batch = service.create_batch(session, actor, everything, max_tips=most)
        assert set(tips.values()) <= _items(session, batch)
        return
    before = session.scalar(select(func.count()).select_from(ClueBatch))
    assert _pointer(lambda: service.create_batch(session, actor, everything, max_tips=most)) == (
        "/filters"
    )
    assert session.scalar(select(func.count()).select_from(ClueBatch)) == before
    session.expire_all()
    assert {session.get(Tip, uuid.UUID(t)).status for t in tips.values()} == {"submitted"}


def test_a_referred_tips_reporter_sees_it_was_referred(session, grantee, tips):
    """The move to `referred_to_police` is a public line of the tip's history (the batch's own
    line, `batched`, is staff only)."""
    tip_id = uuid.UUID(tips[COMMUNITY])
    service.create_batch(
        session, grantee(SUBDISTRICT), {**VALUES, "tip_ids": [tip_id]}, max_tips=_max_tips()
    )
    session.expire_all()
    seen = tips_service.public_history(session, session.get(Tip, tip_id))
    assert [(e.kind, e.to_status) for e in seen][-1] == ("transition", "referred_to_police")
    assert "batched" not in {e.kind for e in seen}


def _tip_values() -> dict:
    return {
        "category": "theft",
        "description": "两个人在撬电动车的锁",
        "location": {"lon": JIANWAI[0], "lat": JIANWAI[1], "accuracy_m": 8},
    }


def test_too_many_tips_are_refused_before_any_is_locked(session):
    """Locking a district's tips only to refuse them would hold them (and outlast the
    request's bounds): the count comes first. Here one matching tip is held by another
    transaction; a batch over the cap is refused at once, not made to wait for it."""
    with orm.Session(db.engine) as setup:
        made = [tips_service.submit(setup, None, _tip_values()).id for _ in range(3)]
        setup.commit()
    try:
        with db.engine.connect() as holder, orm.Session(db.engine) as maker:
            holder.execute(text("SELECT 1 FROM tips WHERE id = :id FOR UPDATE"), {"id": made[0]})
            maker.execute(text("SET lock_timeout = '2s'"))
            actor = User(id=uuid.uuid4(), roles=["grid_staff"], status="active")
            actor.jurisdiction = [maker.scalar(select(Area).where(Area.code == SUBDISTRICT))]
            values = {**VALUES, "tip_ids": made}
            refused = _pointer(lambda: service.create_batch(maker, actor, values, max_tips=2))
            maker.rollback()
            holder.rollback()
    finally:
        with db.engine.begin() as cleanup:
            cleanup.execute(text("DELETE FROM tips WHERE id = ANY(:ids)"), {"ids": made})
    assert refused == "/filters"
