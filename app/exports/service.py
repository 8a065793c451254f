"""Clue batches: freeze a set of tips, hand them to the police as signed files, take their
feedback. Everything a batch does is on the audit trail."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import (
    Select,
    String,
    Uuid,
    and_,
    any_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.orm import Session, aliased

from app.areas.models import Area
from app.auth.jurisdiction import (
    area_path_columns,
    in_jurisdiction,
    jurisdiction_of,
    within_area,
)
from app.auth.models import User
from app.core import audit, private_files, replica
from app.core.auth import GRID_STAFF, POLICE_LIAISON, has_any_role
from app.core.errors import Conflict, NotFound, field_error
from app.core.i18n import DEFAULT_LOCALE, _, force_locale, translated, user_locale
from app.core.jobs import defer
from app.exports import files, signing
from app.exports.models import ClueBatch, ClueBatchItem
from app.extensions import db
from app.media import service as media_service
from app.media.models import Media
from app.storage import StoredObject, export_store
from app.tips.models import OPEN_STATUSES, Tip, TipCategory, TipEvent
from notifications.models import Notification

DOWNLOADABLE = ("tips.csv", "tips.geojson", "manifest.json", "batch.zip")
# What the reporter's follow view shows of a police outcome: the fact, never police detail.
PUBLIC_OUTCOME_NOTES = {
    "case_opened": "警方已受理并立案。The police opened a case.",
    "no_action": "警方已核查，无需进一步处理。The police checked it; no further action.",
    "false_report": "警方核查后认为情况不实。The police found the report unfounded.",
    "duplicate": "警方已在其他线索中处理。The police handled it with another report.",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- who may do what -----------------------------------------------------------------------------


def acting_role(user: User) -> str:
    """Batches are made as a police liaison, or else as staff (grid_staff and up)."""
    if POLICE_LIAISON in user.roles:
        return POLICE_LIAISON
    if has_any_role(user.roles, [GRID_STAFF]):
        return GRID_STAFF
    raise NotFound(_("No such batch."))  # pragma: no cover - the route's role rule comes first


def visible_query(user: User) -> Select:
    """Batches the user may open, newest first: made in a role the user holds (or one that
    includes it), for a scope whose every area the user's jurisdiction covers (an area is
    covered by itself or by an area above it). A liaison of another district sees none."""
    jurisdiction = jurisdiction_of(user)
    roles = [r for r in (POLICE_LIAISON, GRID_STAFF) if has_any_role(user.roles, [r])]
    query = select(ClueBatch).where(ClueBatch.creator_role.in_(roles))
    if not jurisdiction.everywhere:
        # A scope id with no area behind it joins to NULLs, which the rule excludes.
        scope = func.unnest(ClueBatch.scope_area_ids).table_valued("area_id").render_derived()
        uncovered = (
            select(scope.c.area_id)
            .select_from(scope.outerjoin(Area, Area.id == scope.c.area_id))
            .where(jurisdiction.excludes(area_path_columns(Area)))
        )
        query = query.where(
            ClueBatch.scope_everywhere.is_(False),
            func.cardinality(ClueBatch.scope_area_ids) > 0,
            ~exists(uncovered),
        )
    return query.order_by(ClueBatch.created_at.desc(), ClueBatch.id.desc())


def get_batch(session: Session, user: User, batch_id: uuid.UUID) -> ClueBatch:
    """A batch the user may open (the same rule as the list), else 404."""
    batch = session.scalar(visible_query(user).where(ClueBatch.id == batch_id))
    if batch is None:
        raise NotFound(_("No such batch."))
    return batch


# -- creating ------------------------------------------------------------------------------------


def _selection(actor: User, values: Mapping[str, Any]) -> Select:
    """The tips a batch takes: explicit ids or filters, always inside the actor's jurisdiction,
    never merged ones (their surviving tip is the clue). Positions go oldest first."""
    query = select(Tip.id, Tip.version, Tip.created_at).where(
        in_jurisdiction(actor, Tip), Tip.status != "merged"
    )
    if values.get("tip_ids"):
        query = query.where(Tip.id.in_(values["tip_ids"]))
    filters = values.get("filters") or {}
    if filters.get("area_ids"):
        query = query.where(or_(*(within_area(Tip, a) for a in filters["area_ids"])))
    if filters.get("from_") is not None:
        query = query.where(Tip.created_at >= filters["from_"])
    if filters.get("to") is not None:
        query = query.where(Tip.created_at < filters["to"])
    if filters.get("categories"):
        query = query.where(Tip.category_code.in_(filters["categories"]))
    if filters.get("statuses"):
        query = query.where(Tip.status.in_(filters["statuses"]))
    return query


def create_batch(
    session: Session, actor: User, values: Mapping[str, Any], *, max_tips: int
) -> ClueBatch:
    """Freeze the selection (which tips, at most `max_tips`: MAX_BATCH_TIPS), move open ones to
    `referred_to_police` with history, notify named reporters, and defer the file job, all in
    the request's transaction."""
    jurisdiction = jurisdiction_of(actor)
    filters = values.get("filters") or {}
    if filters.get("area_ids"):
        areas = session.scalars(select(Area).where(Area.id.in_(filters["area_ids"])))
        found = {a.id: a for a in areas}
        for index, area_id in enumerate(filters["area_ids"]):
            area = found.get(area_id)
            if area is None or not jurisdiction.covers(area.path_ids):
                raise field_error(
                    f"/filters/area_ids/{index}", _("No such area in your jurisdiction.")
                )
    # Too many is refused before anything is locked: locking a district's million tips only to
    # say no would outlast the request's time bounds (DB_STATEMENT_TIMEOUT_S, WEB_TIMEOUT_S).
    most = max_tips
    matching = _selection(actor, values).with_only_columns(Tip.id).limit(most + 1).subquery()
    if session.scalar(select(func.count()).select_from(matching)) > most:
        raise field_error(
            "/filters",
            _(
                "More than %(most)s tips match; a batch holds at most %(most)s: "
                "narrow the period or the areas.",
                most=most,
            ),
        )
    # Lock the chosen tips (in id order, so concurrent batches cannot deadlock): nobody moves
    # or edits them between the freeze and the status change below. Their ids then travel as
    # one array parameter (a list of 100,000 would exceed the protocol's 65,535 parameters).
    locked = session.scalars(
        _selection(actor, values).with_only_columns(Tip.id).order_by(Tip.id).with_for_update()
    ).all()
    chosen = bindparam("chosen", locked, type_=ARRAY(Uuid))
    selection = _selection(actor, values).where(Tip.id == any_(chosen)).subquery()
    count = len(locked)
    if values.get("tip_ids") and count != len(set(values["tip_ids"])):
        raise field_error(
            "/tip_ids", _("Some of these tips are not in your jurisdiction (or merged).")
        )
    if count == 0:
        raise field_error("/filters", _("No tips match: a batch must hold at least one."))
    if count > most:  # more came in since the count above
        raise field_error(
            "/filters",
            _("%(count)s tips match; a batch holds at most %(most)s.", count=count, most=most),
        )

    batch = ClueBatch(
        id=uuid.uuid4(),
        created_by=actor.id,
        creator_role=acting_role(actor),
        scope_everywhere=jurisdiction.everywhere,
        scope_area_ids=sorted(jurisdiction.area_ids),
        purpose=values["purpose"],
        case_reference=values["case_reference"],
        filters=_json_filters(values),
        status="pending",
        row_count=count,
    )
    session.add(batch)
    session.flush()
    session.execute(
        insert(ClueBatchItem).from_select(
            ["batch_id", "tip_id", "position", "tip_version"],
            select(
                literal(batch.id),
                selection.c.id,
                func.row_number().over(order_by=(selection.c.created_at, selection.c.id)),
                selection.c.version,
            ),
        )
    )
    _refer(session, actor, batch)
    audit.record(
        session,
        "clue_batch.created",
        actor=actor,
        object_type="clue_batch",
        object_ids=[batch.id],
        purpose=batch.purpose,
        details={"case_reference": batch.case_reference, "row_count": count},
    )
    # The files are built by a job: they are in the language of the request that asked for them.
    from app.exports.jobs import generate_batch  # (that module imports this one)

    defer(generate_batch, batch_id=str(batch.id), locale=user_locale())
    session.flush()
    return batch


def _json_filters(values: Mapping[str, Any]) -> dict[str, Any]:
    filters = dict(values.get("filters") or {})
    for key in ("from_", "to"):
        if filters.get(key) is not None:
            filters[key.rstrip("_")] = filters.pop(key).isoformat()
        else:
            filters.pop(key, None)
    if filters.get("area_ids"):
        filters["area_ids"] = [str(a) for a in filters["area_ids"]]
    if values.get("tip_ids"):
        filters["tip_ids"] = [str(t) for t in values["tip_ids"]]
    return filters


def _refer(session: Session, actor: User, batch: ClueBatch) -> None:
    """Set-based, whatever the batch size: every tip gets a `batched` line; open ones move to
    referred_to_police (one transition line each) and their named reporters are told."""
    items = select(ClueBatchItem.tip_id).where(ClueBatchItem.batch_id == batch.id)
    session.execute(
        insert(TipEvent).from_select(
            ["id", "tip_id", "kind", "actor_id", "public", "data"],
            select(
                func.gen_random_uuid(),
                ClueBatchItem.tip_id,
                literal("batched"),
                literal(actor.id),
                literal(False),
                func.jsonb_build_object("batch_id", cast(literal(str(batch.id)), String)),
            ).where(ClueBatchItem.batch_id == batch.id),
        )
    )
    moved = (
        update(Tip)
        .where(Tip.id.in_(items), Tip.status.in_(OPEN_STATUSES))
        .values(status="referred_to_police", status_changed_at=func.now(), version=Tip.version + 1)
        .returning(Tip.id, Tip.reporter_id)
        .execution_options(synchronize_session=False)
    )
    # The old status is needed for the history: read it before the update, in one query.
    before = dict(
        session.execute(
            select(Tip.id, Tip.status).where(Tip.id.in_(items), Tip.status.in_(OPEN_STATUSES))
        ).all()
    )
    rows = session.execute(moved).all()
    if rows:
        session.execute(
            insert(TipEvent),
            [
                {
                    "id": uuid.uuid4(),
                    "tip_id": tip_id,
                    "kind": "transition",
                    "actor_id": actor.id,
                    "from_status": before[tip_id],
                    "to_status": "referred_to_police",
                    "public": True,
                    "data": {"batch_id": str(batch.id)},
                }
                for tip_id, _reporter in rows
            ],
        )
        told = [
            {
                "id": uuid.uuid4(),
                "user_id": reporter,
                "kind": "tip_status",
                "subject_type": "tip",
                "subject_id": tip_id,
                "data": {"status": "referred_to_police", "note": None},
            }
            for tip_id, reporter in rows
            if reporter is not None
        ]
        if told:
            session.execute(insert(Notification), told)
    session.expire_all()


# -- generating ----------------------------------------------------------------------------------


def batch_prefix(batch_id: uuid.UUID) -> str:
    """Where a batch's files are in the export store: `<batch id>/<name>`."""
    return f"{batch_id}/"


def _rows(session: Session, batch: ClueBatch) -> Iterator[Mapping[str, Any]]:
    """The batch's tips in order, as plain rows (no ORM objects: measured 2x faster in
    bench_clue_batch) streamed from a server-side cursor, so memory stays flat.

    Reporter identity: never for anonymous tips; for named ones only when the reporter
    consented to police contact, and then name and phone only. ID numbers never."""
    district, subdistrict, community, cell = (aliased(Area) for _ in range(4))
    photo_path = literal("photos/") + cast(Tip.id, String) + "/" + cast(Media.id, String) + ".jpg"
    photos = (
        select(
            func.string_agg(
                photo_path, aggregate_order_by(literal(";"), Media.created_at, Media.id)
            )
        )
        .where(Media.tip_id == Tip.id)
        .correlate(Tip)
        .scalar_subquery()
    )
    photo_count = (
        select(func.count()).where(Media.tip_id == Tip.id).correlate(Tip).scalar_subquery()
    )
    consented = and_(Tip.anonymous.is_(False), Tip.police_contact_consent.is_(True))
    query = (
        select(
            cast(Tip.id, String).label("tip_id"),
            Tip.code.label("code"),
            Tip.category_code.label("category"),
            TipCategory.name.label("category_name"),
            Tip.status.label("status"),
            Tip.priority.label("priority"),
            Tip.created_at.label("created_at"),
            Tip.occurred_at.label("occurred_at"),
            func.ST_X(Tip.geom).label("lon"),
            func.ST_Y(Tip.geom).label("lat"),
            Tip.accuracy_m.label("accuracy_m"),
            Tip.address_text.label("address"),
            district.name.label("district"),
            subdistrict.name.label("subdistrict"),
            community.name.label("community"),
            cell.name.label("grid_cell"),
            Tip.description.label("description"),
            Tip.anonymous.label("anonymous"),
            User.real_name.label("reporter_name"),
            User.phone.label("reporter_phone"),
            photo_count.label("photo_count"),
            photos.label("photos"),
        )
        .join(
            ClueBatchItem, and_(ClueBatchItem.tip_id == Tip.id, ClueBatchItem.batch_id == batch.id)
        )
        .join(TipCategory, TipCategory.code == Tip.category_code)
        .outerjoin(district, district.id == Tip.district_id)
        .outerjoin(subdistrict, subdistrict.id == Tip.subdistrict_id)
        .outerjoin(community, community.id == Tip.community_id)
        .outerjoin(cell, cell.id == Tip.grid_cell_id)
        .outerjoin(User, and_(User.id == Tip.reporter_id, consented))
        .order_by(ClueBatchItem.position)
        .execution_options(yield_per=2000)  # pragma: no mutate - rows a fetch: speed, no answer
    )
    yield from session.execute(query).mappings()


def _photos(session: Session, batch: ClueBatch) -> Iterator[Media]:
    """The batch's photos in the ZIP's order; after each one is written, the build's progress
    moves through the second half by the photos' count (a percent written when it changes: at
    most 49 commits, however many photos). The count comes with the rows, from the same
    statement: read apart on the primary (no single snapshot there), a photo added between
    them would make more rows than counted."""
    query = (
        select(Media, func.count().over())
        .join(ClueBatchItem, ClueBatchItem.tip_id == Media.tip_id)
        .where(ClueBatchItem.batch_id == batch.id)
        .order_by(ClueBatchItem.position, Media.created_at, Media.id)
        .execution_options(yield_per=500)  # pragma: no mutate - rows a fetch: speed, no answer
    )
    reported = 50  # the tips' pass
    for done, (media, count) in enumerate(session.execute(query), 1):
        yield media
        session.expunge(media)
        percent = 50 + done * 49 // count  # 99 after the last: 100 is the batch ready
        if percent > reported:
            _progress(batch.id, percent=percent)
            reported = percent


def _progress(batch_id: uuid.UUID, **values: Any) -> None:
    """Progress is committed at once, outside the job's transaction, so pollers see it."""
    with db.engine.begin() as connection:
        connection.execute(update(ClueBatch).where(ClueBatch.id == batch_id).values(**values))


def _work_dir(batch_id: uuid.UUID, scratch_root: Path) -> Path:
    return scratch_root / f".{batch_id}.partial"


def discard_files(batch_id: uuid.UUID, scratch_root: Path) -> None:
    """Remove whatever an unfinished build left: this host's partial folder (in `scratch_root`,
    where a worker builds files before storing them: EXPORT_ROOT) and the objects
    stored by a run that died before the batch was recorded ready (either may hold consenting
    reporters' names). A partial folder on another host is that host's next build's to remove;
    objects are shared, and go here."""
    shutil.rmtree(_work_dir(batch_id, scratch_root), ignore_errors=True)
    export_store().delete_prefix(batch_prefix(batch_id))


def csv_header(locale: str) -> list[str]:
    """The CSV's header row in `locale` (zh_CN or en)."""
    with force_locale(locale):
        return [translated(files.CSV_HEADINGS[name]) for name in files.COLUMN_NAMES]


def build_files(
    session: Session,
    batch: ClueBatch,
    locale: str = DEFAULT_LOCALE,
    *,
    scratch_root: Path,
    signing_key: Ed25519PrivateKey,
) -> None:
    """Write tips.csv, tips.geojson, the ZIP (both, the photos, a signed manifest.json) and the
    manifest on its own; record their sizes and digests and the batch's signature.

    Everything is written in a local partial folder (files 0640, folders 0750 from their
    creation), then stored in the export store (a rename on the local backend, an upload on
    S3) before the job records the batch ready: a run that dies in between leaves objects of
    a batch not ready, which the next run (or `fail_orphaned_batches`) removes. The output
    depends on the batch and its tips only (the ZIP's dates are the batch's creation time), so
    building again makes the same bytes.
    The CSV's header row is in `locale`; the partial folder is in `scratch_root` (EXPORT_ROOT),
    and `signing_key` signs the manifest."""
    work = _work_dir(batch.id, scratch_root)
    private_files.ensure_dir(work.parent)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(private_files.DIR_MODE)
    total_steps = 2 * batch.row_count  # a batch has a tip at least (create_batch)

    def counted(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for index, row in enumerate(rows, 1):
            if index % 5000 == 0:
                _progress(batch.id, percent=index * 100 // total_steps)  # at most 50
            yield row

    # The tips and photos are read from the replica when it has replayed the batch's creation
    # (app/core/replica.py), in one snapshot; the batch row stays the primary's.
    with replica.reading_session(session, "clue batch") as reader:
        # One pass over one server-side cursor writes both files.
        with (
            private_files.open_new(work / "tips.csv") as csv_out,
            private_files.open_new(work / "tips.geojson") as geo_out,
        ):
            files.write_csv_and_geojson(
                counted(_rows(reader, batch)), csv_out, geo_out, csv_header=csv_header(locale)
            )
        _progress(batch.id, percent=50)

        store = media_service.storage()

        def photo_members() -> Iterator[tuple[str, bytes]]:
            for media in _photos(reader, batch):
                yield f"photos/{media.tip_id}/{media.id}.jpg", store.get(media.storage_key)

        header = {
            "id": str(batch.id),
            "created_at": batch.created_at.isoformat(),
            "purpose": batch.purpose,
            "case_reference": batch.case_reference,
            "row_count": batch.row_count,
        }
        signed: dict[str, Any] = {}

        def manifest(entries: list[dict]) -> bytes:
            signed.update(signing.build_manifest(header, entries, signing_key))
            return signing.manifest_json(signed)

        members = itertools.chain(
            [("tips.csv", work / "tips.csv"), ("tips.geojson", work / "tips.geojson")],
            photo_members(),
        )
        summary = files.write_zip(work / "batch.zip", members, manifest, date_time=batch.created_at)
        private_files.write_new(work / "manifest.json", summary.manifest)
    batch.digest, batch.signature, batch.key_id = (
        signed["digest"],
        signed["signature"],
        signed["key_id"],
    )
    store = export_store()
    for name in DOWNLOADABLE:
        # Moved rather than copied: a 1 GB ZIP is not written twice (what a copy would leave,
        # the rmtree below removes: no other difference).
        store.put_file(batch_prefix(batch.id) + name, work / name, move=True)  # pragma: no mutate
    shutil.rmtree(work, ignore_errors=True)  # a failed clean-up does not fail a built batch
    # Sizes and digests were taken while writing: a 1 GB ZIP is not read again.
    hashed = {entry["name"]: entry for entry in summary.files}
    batch.files = [
        hashed["tips.csv"],
        hashed["tips.geojson"],
        {
            "name": "manifest.json",
            "size": len(summary.manifest),
            "sha256": files.sha256_bytes(summary.manifest),
        },
        {"name": "batch.zip", "size": summary.size, "sha256": summary.sha256},
    ]


# -- using ---------------------------------------------------------------------------------------


def open_file(session: Session, user: User, batch: ClueBatch, name: str) -> StoredObject:
    """A file of a ready batch, opened for streaming; the download goes on the audit trail."""
    if name not in DOWNLOADABLE:
        raise NotFound(_("No such file."))
    if batch.status != "ready":
        raise Conflict(_("The batch is %(status)s; its files are not ready.", status=batch.status))
    if batch.files_deleted_at is not None:
        raise NotFound(_("The batch's files were deleted after their retention period."))
    try:
        stored = export_store().open(batch_prefix(batch.id) + name)
    except KeyError:
        raise NotFound(_("No such file.")) from None
    audit.record(
        session,
        "clue_batch.downloaded",
        actor=user,
        object_type="clue_batch",
        object_ids=[batch.id],
        purpose=batch.purpose,
        details={"file": name},
    )
    return stored


def acknowledge(session: Session, user: User, batch: ClueBatch) -> ClueBatch:
    if batch.acknowledged_at is None:
        batch.acknowledged_at, batch.acknowledged_by = _now(), user.id
        audit.record(
            session,
            "clue_batch.acknowledged",
            actor=user,
            object_type="clue_batch",
            object_ids=[batch.id],
        )
        session.flush()
    return batch


def record_outcomes(
    session: Session, user: User, batch: ClueBatch, outcomes: list[dict[str, Any]]
) -> list[ClueBatchItem]:
    """Police outcomes per tip: into the batch, into the tip's history (the police's note for
    staff only; a fixed public line for the reporter's follow view), and on the audit trail."""
    ids = [o["tip_id"] for o in outcomes]
    if len(set(ids)) != len(ids):
        raise field_error("/items", _("A tip is listed twice."))
    items = {
        item.tip_id: item
        for item in session.scalars(
            select(ClueBatchItem)
            .where(ClueBatchItem.batch_id == batch.id, ClueBatchItem.tip_id.in_(ids))
            .with_for_update()
        )
    }
    for index, outcome in enumerate(outcomes):
        if outcome["tip_id"] not in items:
            raise field_error(f"/items/{index}/tip_id", _("This tip is not in the batch."))
        recorded = items[outcome["tip_id"]].outcome
        if recorded is not None and recorded != outcome["outcome"]:
            raise Conflict(
                _(
                    "Tip %(value)s already has the outcome %(recorded)s; outcomes are final.",
                    value=outcome["tip_id"],
                    recorded=recorded,
                )
            )
    now = _now()
    for outcome in outcomes:
        item = items[outcome["tip_id"]]
        if item.outcome == outcome["outcome"]:
            continue  # a repeat (a retried request): recorded once
        item.outcome, item.outcome_note = outcome["outcome"], outcome.get("note")
        item.outcome_at, item.outcome_by = now, user.id
        session.add(
            TipEvent(
                tip_id=item.tip_id,
                kind="police_outcome",
                actor_id=user.id,
                note=PUBLIC_OUTCOME_NOTES[outcome["outcome"]],
                public=True,
                data={"outcome": outcome["outcome"]},
            )
        )
        if outcome.get("note"):  # the police's own words: staff only
            session.add(
                TipEvent(
                    tip_id=item.tip_id,
                    kind="note",
                    actor_id=user.id,
                    note=outcome["note"],
                    public=False,
                    data={"batch_id": str(batch.id), "police_note": True},
                )
            )
    audit.record(
        session,
        "clue_batch.outcomes",
        actor=user,
        object_type="tip",
        object_ids=ids,
        details={"batch_id": str(batch.id), "outcomes": [o["outcome"] for o in outcomes]},
    )
    session.flush()
    return [items[i] for i in ids]
