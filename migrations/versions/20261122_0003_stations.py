"""Stations and their materialized open periods.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography, Geometry
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_geospatial_table(
        "stations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_ref", sa.String(length=100), nullable=True),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "geog",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
            ),
            sa.Computed("geom::geography", persisted=True),
            nullable=True,
        ),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("operator", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column(
            "amenities", postgresql.ARRAY(sa.String(length=30)), server_default="{}", nullable=False
        ),
        sa.Column("opening_hours", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "hours_exceptions",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="active", nullable=False),
        sa.Column("last_verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generated", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("district_id", sa.Uuid(), nullable=True),
        sa.Column("subdistrict_id", sa.Uuid(), nullable=True),
        sa.Column("community_id", sa.Uuid(), nullable=True),
        sa.Column("grid_cell_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("visit_code", sa.String(length=32), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("status IN ('active', 'closed')", name=op.f("ck_stations_status")),
        sa.CheckConstraint(
            "type IN ('rider_station', 'volunteer_post', 'community_service_centre', "
            "'incubation_centre', 'police_post', 'other')",
            name=op.f("ck_stations_type"),
        ),
        sa.CheckConstraint("capacity IS NULL OR capacity >= 0", name=op.f("ck_stations_capacity")),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_stations_team_id_teams"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("external_ref", name=op.f("uq_stations_external_ref")),
    )
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stations_amenities", ["amenities"], unique=False, postgresql_using="gin"
        )
        batch_op.create_index(
            batch_op.f("ix_stations_community_id"), ["community_id"], unique=False
        )
        batch_op.create_geospatial_index(
            "ix_stations_geog", ["geog"], unique=False, postgresql_using="gist", postgresql_ops={}
        )
        batch_op.create_geospatial_index(
            "ix_stations_geom", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
        )
        batch_op.create_index(batch_op.f("ix_stations_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_stations_subdistrict_id"), ["subdistrict_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_stations_team_id"), ["team_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stations_type"), ["type"], unique=False)

    op.create_table(
        "station_open_periods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("during", postgresql.TSTZRANGE(), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_station_open_periods_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_open_periods")),
    )
    with op.batch_alter_table("station_open_periods", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_station_open_periods_station_id"), ["station_id"], unique=False
        )

    op.create_table(
        "station_visits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("station_id", sa.Uuid(), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("volunteer_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_station_visits_station_id_stations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["users.id"],
            name=op.f("fk_station_visits_volunteer_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_visits")),
    )
    op.create_index(
        "ix_station_visits_station_id_visited_at", "station_visits", ["station_id", "visited_at"]
    )
    op.create_index(op.f("ix_station_visits_volunteer_id"), "station_visits", ["volunteer_id"])


def downgrade():
    op.drop_table("station_visits")
    with op.batch_alter_table("station_open_periods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_station_open_periods_station_id"))

    op.drop_table("station_open_periods")
    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stations_type"))
        batch_op.drop_index(batch_op.f("ix_stations_team_id"))
        batch_op.drop_index(batch_op.f("ix_stations_subdistrict_id"))
        batch_op.drop_index(batch_op.f("ix_stations_status"))
        batch_op.drop_geospatial_index(
            "ix_stations_geom", postgresql_using="gist", column_name="geom"
        )
        batch_op.drop_geospatial_index(
            "ix_stations_geog", postgresql_using="gist", column_name="geog"
        )
        batch_op.drop_index(batch_op.f("ix_stations_community_id"))
        batch_op.drop_index("ix_stations_amenities", postgresql_using="gin")

    op.drop_geospatial_table("stations")
