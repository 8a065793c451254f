"""The schema as migrations see it: the head revision(s), and what autogenerate compares."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from flask import Flask
from geoalchemy2 import alembic_helpers

from app.config import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def expected_heads(app: Flask) -> set[str]:
    """The heads of migrations/ (read once per application, then cached)."""
    heads = app.extensions.get("qunfang.migration_heads")
    if heads is None:
        heads = set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
        app.extensions["qunfang.migration_heads"] = heads
    return heads


# Tables that live in our database but are not described by our models: PostGIS's, and
# procrastinate's (its schema is applied from its own SQL by migration 0001).
FOREIGN_TABLE_PREFIXES = ("procrastinate_", "spatial_ref_sys", "topology", "layer")
# The monthly partitions of `checkins` (app/patrols/partitions.py): made and dropped by a job,
# not by migrations; the partitioned table itself is compared like any other.
PARTITION_PREFIXES = ("checkins_p",)


def include_object(obj, name, obj_type, reflected, compare_to) -> bool:
    """Alembic's filter: compare our models' objects, never PostGIS's or procrastinate's."""
    table = obj if obj_type == "table" else getattr(obj, "table", None)
    table_name = name if obj_type == "table" else getattr(table, "name", "")
    if table_name and table_name.startswith(FOREIGN_TABLE_PREFIXES + PARTITION_PREFIXES):
        return False
    return alembic_helpers.include_object(obj, name, obj_type, reflected, compare_to)
