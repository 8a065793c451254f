"""The data inventory (PIPL Arts. 13, 17, 19, 28 to 29): every table and column that holds
personal information, why, on what legal basis, who sees it, how long it is kept and which job
enforces that. The source of truth: docs/privacy.md's table is `markdown_table()` verbatim, and
tests/privacy/test_inventory.py holds both to the models, the settings and the jobs.

Pure data and text (no Flask, no models), so that `python -m app.privacy.inventory` prints the
table for the docs.
"""

from __future__ import annotations

from dataclasses import dataclass

CONSENT = "consent (the terms, at registration)"
SEPARATE_CONSENT = "separate consent (sensitive: whereabouts)"
SEPARATE_CONSENT_ID = "separate consent (sensitive: identity number)"
LEGAL_DUTY = "legal duty (Cybersecurity Law Art. 21)"
PUBLIC_SAFETY = "consent of the named reporter; anonymous tips hold no one's identity"
POLICE = "legal duty (assisting the police: Criminal Procedure Law Art. 54)"

ACCOUNT_LIFETIME = "while the account exists; erased with it"
ERASURE_JOB = "erase_deleted_accounts"
GRACE = "ACCOUNT_DELETION_GRACE_DAYS"


@dataclass(frozen=True)
class Entry:
    """Personal columns of one table held for one purpose. `setting` names the period (a key of
    app/config.py) and `job` the periodic job that enforces it; `reason` says why a column has
    no period of its own."""

    table: str
    columns: tuple[str, ...]
    purpose: str
    legal_basis: str
    who_sees: str
    retention: str
    setting: str | None = None
    job: str | None = None
    reason: str | None = None
    sensitive: bool = False


INVENTORY: tuple[Entry, ...] = (
    Entry(
        "users",
        ("phone", "real_name", "password_hash", "volunteer_types", "skills", "home_community_id"),
        "the account: signing in, real-name volunteering, dispatch",
        CONSENT,
        "the person; staff of their community",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "users",
        ("id_number_digest", "id_number_masked"),
        "one account per resident ID (digest, keyed); verification (mask)",
        SEPARATE_CONSENT_ID,
        "the person; staff of their community (mask only)",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
        sensitive=True,
    ),
    Entry(
        "users",
        ("location_sharing", "sms_consent", "terms_version", "verified_by"),
        "consents in force and who verified the account",
        CONSENT,
        "the person; staff of their community",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "user_areas",
        ("user_id", "area_id"),
        "a staff member's jurisdiction",
        CONSENT,
        "the person; administrators",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "consent_events",
        ("user_id", "kind", "value", "recorded_at"),
        "proof of each consent given and withdrawn",
        CONSENT,
        "the person",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "account_deletions",
        ("user_id", "requested_at", "erase_after"),
        "a deletion waiting out its grace period",
        CONSENT,
        "nobody (the job)",
        "until the erasure (or a sign-in cancels it)",
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "data_archives",
        ("user_id", "byte_size"),
        "a copy of the person's data (ZIP file on disk)",
        CONSENT,
        "the person",
        "7 days after it was made",
        None,
        "prune_data_archives",
    ),
    Entry(
        "auth_sessions",
        ("user_id", "created_at", "refreshed_at", "revoked_at"),
        "signing in: revoking a session, detecting a reused refresh token",
        CONSENT,
        "nobody (the server)",
        "days after the session ended (revoked, or its last refresh token expired)",
        "SESSION_RETENTION_DAYS",
        "delete_ended_sessions",
    ),
    Entry(
        "refresh_tokens",
        ("jti", "issued_at", "expires_at", "used_at"),
        "signing in (rotating refresh tokens)",
        CONSENT,
        "nobody (the server)",
        "with their session",
        "SESSION_RETENTION_DAYS",
        "delete_ended_sessions",
    ),
    Entry(
        "devices",
        ("user_id", "token", "platform", "provider", "app_version", "last_seen_at"),
        "pushing tasks and notifications to the person's phones",
        CONSENT,
        "the person (token masked)",
        "days after the phone last registered its token",
        "DEVICE_INACTIVE_DAYS",
        "delete_inactive_devices",
    ),
    Entry(
        "notifications",
        ("user_id", "kind", "subject_id", "data", "read_at", "received_at"),
        "the person's feed; whether an urgent task's push arrived",
        CONSENT,
        "the person; staff see counts only",
        "days after it was made",
        "NOTIFICATION_RETENTION_DAYS",
        "delete_old_notifications",
    ),
    Entry(
        "deliveries",
        ("notification_id", "device_id", "status", "sent_at"),
        "what each push or SMS provider answered",
        CONSENT,
        "staff see counts only",
        "with their notification",
        "NOTIFICATION_RETENTION_DAYS",
        "delete_old_notifications",
    ),
    Entry(
        "duty_status",
        ("user_id", "since", "geom", "position_at"),
        "dispatching on-duty volunteers nearby",
        SEPARATE_CONSENT,
        "nobody directly: a task's targeting",
        "the position minutes after its last report; the row while on duty",
        "DUTY_POSITION_MINUTES",
        "expire_duty_positions",
        sensitive=True,
    ),
    Entry(
        "checkins",
        ("volunteer_id", "geom", "recorded_at", "accuracy_m", "checkpoint_id"),
        "a patrol's raw fixes: its track, distance and service time",
        SEPARATE_CONSENT,
        "the person; staff of the area",
        "days (whole monthly partitions dropped)",
        "CHECKIN_RETENTION_DAYS",
        "maintain_checkin_partitions",
        sensitive=True,
    ),
    Entry(
        "checkpoint_visits",
        ("volunteer_id", "visited_at", "distance_m"),
        "proof that a checkpoint was visited",
        SEPARATE_CONSENT,
        "the person; staff of the area",
        "days, as raw fixes",
        "CHECKIN_RETENTION_DAYS",
        "maintain_checkin_partitions",
        sensitive=True,
    ),
    Entry(
        "patrols",
        ("volunteer_id", "track", "last_lon", "last_lat", "started_at", "ended_at"),
        "the service record: a patrol's simplified track and totals",
        SEPARATE_CONSENT,
        "the person; staff of the area (each read audited)",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
        sensitive=True,
    ),
    Entry(
        "service_entries",
        ("volunteer_id", "day", "seconds"),
        "credited service hours (the volunteer's record)",
        CONSENT,
        "the person; staff of their community",
        ACCOUNT_LIFETIME + " (anonymous totals stay)",
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "team_members",
        ("user_id", "team_id", "joined_at", "left_at"),
        "team membership",
        CONSENT,
        "the team's leader; staff of its area",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "task_recipients",
        ("user_id", "distance_m", "response", "note", "media_ids", "arrived_at"),
        "who a task reached and what they answered",
        CONSENT,
        "the person; the task's dispatchers",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "station_visits",
        ("volunteer_id", "visited_at"),
        "a station's use, and the visitor's service record",
        CONSENT,
        "the person; staff see counts only",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "tips",
        ("reporter_id", "police_contact_consent"),
        "telling staff and, with consent, the police who to ask about a named tip",
        PUBLIC_SAFETY,
        "staff of the area (each read audited); the police when consented",
        "days after the tip closed (no longer disclosed; the reporter keeps their tip)",
        "TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE",
        "expire_reporter_contacts",
    ),
    Entry(
        "tips",
        ("description", "address_text", "geom", "occurred_at"),
        "the report itself; its words may name people",
        PUBLIC_SAFETY,
        "staff of the area; the reporter; Open311 only a staff-written summary",
        "kept as a public-safety record",
        reason="public-safety records (ARCHITECTURE §6): the report outlives its reporter's "
        "link, contact and photos, which expire",
    ),
    Entry(
        "tip_events",
        ("note", "actor_id", "data"),
        "the tip's history (staff notes, added information)",
        PUBLIC_SAFETY,
        "staff of the area; public lines the reporter",
        "with the tip",
        reason="part of the tip's public-safety record",
    ),
    Entry(
        "media",
        ("storage_key", "thumbnail_key", "owner_id"),
        "photos of a tip (re-encoded, no EXIF, XMP or ICC metadata)",
        PUBLIC_SAFETY,
        "the uploader; the reporter; staff of the area",
        "days after the tip closed",
        "CLOSED_TIP_PHOTO_DAYS",
        "delete_closed_tip_photos",
    ),
    Entry(
        "media",
        ("expires_at",),
        "uploads never attached to a tip",
        PUBLIC_SAFETY,
        "the uploader",
        "hours after the upload",
        "UNATTACHED_MEDIA_HOURS",
        "expire_unattached_media",
    ),
    Entry(
        "clue_batches",
        ("files",),
        "files handed to the police (they may name consenting reporters)",
        POLICE,
        "the police liaison; staff of the batch's areas",
        "days after the police acknowledged them (the record and digest stay)",
        "BATCH_FILE_DAYS_AFTER_ACK",
        "delete_acknowledged_batch_files",
    ),
    Entry(
        "clue_batches",
        ("created_by", "acknowledged_by", "purpose", "case_reference"),
        "the record of what was handed to the police, by whom and why",
        POLICE,
        "the police liaison; staff of the batch's areas",
        "kept as evidence",
        reason="evidence in police cases (docs/privacy.md, Kept by law)",
    ),
    Entry(
        "clue_batch_items",
        ("outcome_note", "outcome_by"),
        "the police's outcome per tip",
        POLICE,
        "the police liaison; staff of the batch's areas",
        "kept as evidence",
        reason="evidence in police cases (docs/privacy.md, Kept by law)",
    ),
    Entry(
        "tasks",
        ("targeting", "description", "created_by"),
        "a request to volunteers (named volunteers' ids when targeted by name)",
        CONSENT,
        "the task's dispatchers",
        "kept as the dispatch record; erased persons' ids removed",
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "teams",
        ("leader_id",),
        "who leads a team",
        CONSENT,
        "anyone who reads the team",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "checkpoints",
        ("responsible_id", "created_by"),
        "who answers for a checkpoint",
        CONSENT,
        "staff of the area",
        ACCOUNT_LIFETIME,
        GRACE,
        ERASURE_JOB,
    ),
    Entry(
        "stations",
        ("operator", "phone"),
        "how to reach a service station (an organisation's contact)",
        "publicly listed by the station's operator",
        "anyone",
        "while the station is listed",
        reason="a station's published contact, kept up to date by staff; no person's account",
    ),
    Entry(
        "idempotency_records",
        ("scope", "body"),
        "answering a phone's retried write with its first answer",
        CONSENT,
        "nobody (the server)",
        "days after the write (at least 30: phones stay offline for days)",
        "IDEMPOTENCY_TTL_DAYS",
        "prune_idempotency_records",
    ),
    Entry(
        "audit_events",
        ("actor_id", "object_ids", "purpose", "request_id", "details"),
        "who read or changed what, and why",
        LEGAL_DUTY,
        "administrators; the person their own access log",
        "days (at least 183; the database refuses younger)",
        "AUDIT_RETENTION_DAYS",
        "purge_audit_events",
    ),
)

# Tables without personal information, and why.
NOT_PERSONAL: dict[str, str] = {
    "alembic_version": "the schema's version",
    "anonymous_service_totals": "sums across everyone erased, per community and month",
    "api_clients": "client applications, not people",
    "area_pieces": "geometry of administrative areas",
    "areas": "administrative areas",
    "checkpoint_windows": "a checkpoint's schedule and visit counts",
    "station_open_periods": "a station's opening hours",
    "tip_categories": "the list of categories",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The inventory as the Markdown table docs/privacy.md carries."""
    lines = [
        "| table | columns | purpose | legal basis | who sees it | kept | setting | job |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in INVENTORY:
        columns = ", ".join(f"`{c}`" for c in e.columns)
        kept = e.retention if e.reason is None else f"{e.retention} ({e.reason})"
        cells = [
            f"`{e.table}`",
            columns,
            e.purpose,
            e.legal_basis + (" **sensitive**" if e.sensitive else ""),
            e.who_sees,
            kept,
            f"`{e.setting}`" if e.setting else "",
            f"`{e.job}`" if e.job else "",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def size() -> tuple[int, int, int]:
    """Entries, tables and columns listed."""
    tables = {e.table for e in INVENTORY}
    columns = {(e.table, c) for e in INVENTORY for c in e.columns}
    return len(INVENTORY), len(tables), len(columns)


if __name__ == "__main__":
    print(markdown_table(), end="")
