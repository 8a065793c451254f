"""The data inventory (app/privacy/inventory.py) against the models, the settings, the jobs
and docs/privacy.md."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from app.config import Config
from app.core import jobs as jobs_module
from app.extensions import db
from app.privacy import inventory
from app.privacy.inventory import INVENTORY, NOT_PERSONAL, OTHER_COLUMNS

DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"
SETTINGS = {f.name for f in dataclasses.fields(Config)}


def _periodic_ids() -> set[str]:
    return {p.periodic_id for p in jobs_module.jobs.periodic_registry.periodic_tasks.values()}


def test_every_table_of_the_models_is_in_the_inventory_or_says_why_not(app):
    listed = {entry.table for entry in INVENTORY}
    tables = set(db.metadata.tables)
    assert tables - listed - set(NOT_PERSONAL) == set()
    assert listed & set(NOT_PERSONAL) == set()
    # Nothing listed that the models do not have (alembic_version is the migrations' own).
    assert listed | set(NOT_PERSONAL) - {"alembic_version"} <= tables


def test_every_listed_column_exists(app):
    for entry in INVENTORY:
        columns = set(db.metadata.tables[entry.table].columns.keys())
        assert set(entry.columns) <= columns, (entry.table, set(entry.columns) - columns)


def test_every_column_of_a_listed_table_is_personal_or_said_not_to_be(app):
    """A column added to a table that holds personal information fails here until it is put
    in an entry (with its period) or among the table's other columns."""
    personal: dict[str, set[str]] = {}
    for entry in INVENTORY:
        personal.setdefault(entry.table, set()).update(entry.columns)
    assert set(OTHER_COLUMNS) == set(personal)
    for table, columns in personal.items():
        other = set(OTHER_COLUMNS[table])
        assert columns & other == set(), (table, columns & other)
        actual = set(db.metadata.tables[table].columns.keys())
        assert columns | other == actual, (
            table,
            actual - columns - other,
            columns | other - actual,
        )


def test_every_personal_column_has_a_retention_job_or_a_reason(app):
    periodic = _periodic_ids()
    for entry in INVENTORY:
        assert entry.job or entry.reason, entry
        if entry.job:
            assert entry.job in periodic, entry.job
        if entry.setting:
            assert entry.setting in SETTINGS, entry.setting
            assert entry.job, f"{entry.setting} is enforced by no job"


def test_the_periods_the_issue_names_are_all_enforced():
    enforced = {entry.setting: entry.job for entry in INVENTORY if entry.setting}
    for setting in (
        "TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE",
        "CLOSED_TIP_PHOTO_DAYS",
        "DEVICE_INACTIVE_DAYS",
        "NOTIFICATION_RETENTION_DAYS",
        "SESSION_RETENTION_DAYS",
        "IDEMPOTENCY_TTL_DAYS",
        "BATCH_FILE_DAYS_AFTER_ACK",
        "AUDIT_RETENTION_DAYS",
        "CHECKIN_RETENTION_DAYS",
        "DUTY_POSITION_MINUTES",
    ):
        assert enforced.get(setting), setting


def _doc_table() -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- inventory:start -->\n(.*?)<!-- inventory:end -->", text, re.S)
    assert found, "docs/privacy.md lost its inventory markers"
    return found.group(1)


def test_docs_privacy_md_carries_the_inventory_verbatim():
    assert _doc_table() == inventory.markdown_table(), (
        "docs/privacy.md differs from app/privacy/inventory.py: "
        "paste `.venv/bin/python -m app.privacy.inventory` between the markers"
    )


@pytest.mark.parametrize("entry", INVENTORY, ids=lambda e: f"{e.table}:{e.columns[0]}")
def test_each_entry_reads_in_the_docs_with_its_period(entry):
    rows = [line for line in _doc_table().splitlines() if line.startswith(f"| `{entry.table}` |")]
    row = next(r for r in rows if all(f"`{c}`" in r for c in entry.columns))
    if entry.setting:
        assert f"`{entry.setting}`" in row
    if entry.job:
        assert f"`{entry.job}`" in row
    # Every job the doc names in its list of jobs is in the inventory too.
    assert entry.job is None or f"| `{entry.job}` |" in DOC.read_text(encoding="utf-8")


def test_the_docs_give_the_inventorys_size():
    entries, tables, columns = inventory.size()
    size = f"Size: {entries} entries over {tables} tables, {columns} personal columns."
    assert size in " ".join(DOC.read_text(encoding="utf-8").split())
