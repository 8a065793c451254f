"""`flask areas ...`: import outlines, derive approximate polygons, cut grids."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from app.areas import service
from app.areas.models import AreaLevel
from app.core.cli import domain_errors_as_messages
from app.extensions import db
from geo.crs import CoordSystem, to_wgs84
from geo.geojson import GeoJSONError

areas_cli = AppGroup("areas", help="Administrative areas.")

LEVELS = click.Choice([lv.value for lv in AreaLevel])
SYSTEMS = click.Choice([c.value for c in CoordSystem])


@areas_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--level", type=LEVELS, required=True)
@click.option("--parent", "parent_code", help="Code of the parent area (all but districts).")
@click.option("--source-crs", type=SYSTEMS, default="wgs84", show_default=True)
@click.option("--code", help="Code for a file holding one bare geometry (no properties).")
@click.option("--name", help="Name for a file holding one bare geometry.")
@click.option("--source", help="Where the data comes from (kept with each area).")
@domain_errors_as_messages
def import_command(file, level, parent_code, source_crs, code, name, source):
    """Import GeoJSON polygons (FeatureCollection, Feature or bare geometry).

    Features carry `code` and `name` properties (and `urban_rural` for communities). Geometry is
    repaired (ST_MakeValid); a bad feature is reported and skipped. Re-importing updates by code.
    """
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
        features = service.features_of(document)
    except (ValueError, GeoJSONError) as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    parent = service.get_by_code(db.session, parent_code) if parent_code else None
    with click.progressbar(length=len(features), label="Importing", file=sys.stderr) as bar:
        report = service.import_features(
            db.session,
            features,
            level=AreaLevel(level),
            parent=parent,
            source_crs=CoordSystem(source_crs),
            default_code=code,
            default_name=name,
            source=source,
            on_progress=bar.update,
        )
    db.session.commit()
    click.echo(f"imported {len(report.imported)} area(s), {len(report.errors)} error(s)")
    for index, message in report.errors:
        click.echo(f"  feature {index}: {message}", err=True)
    if report.errors and not report.imported:
        raise SystemExit(1)


@areas_cli.command("derive")
@click.option("--parent", "parent_code", required=True, help="Code of the area to divide.")
@click.option("--level", type=LEVELS, required=True, help="Level of the derived children.")
@click.option(
    "--points",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="CSV with a header: code,name,lon,lat[,urban_rural]; lon/lat may be empty.",
)
@click.option("--source-crs", type=SYSTEMS, default="wgs84", show_default=True)
@click.option("--source", default="derived: Voronoi cells of centre points", show_default=True)
@domain_errors_as_messages
def derive_command(parent_code, level, points, source_crs, source):
    """Approximate child polygons: Voronoi cells of centre points, clipped to the parent."""
    parent = service.get_by_code(db.session, parent_code)
    seeds = []
    with points.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            lon, lat = (row.get("lon") or "").strip(), (row.get("lat") or "").strip()
            position = to_wgs84(float(lon), float(lat), source_crs) if lon and lat else (None, None)
            seeds.append(
                service.ChildSeed(
                    code=row["code"].strip(),
                    name=row["name"].strip(),
                    lon=position[0],
                    lat=position[1],
                    urban_rural=(row.get("urban_rural") or None),
                )
            )
    areas = service.derive_children(db.session, parent, AreaLevel(level), seeds, source=source)
    db.session.commit()
    estimated = sum(1 for a in areas if a.centre_estimated)
    click.echo(
        f"derived {len(areas)} {level} area(s) in {parent.code}; {estimated} with estimated centres"
    )


@areas_cli.command("grid")
@click.option("--community", "community_code", required=True)
@click.option("--cell-size-m", type=click.FloatRange(50, 2000), default=250, show_default=True)
@domain_errors_as_messages
def grid_command(community_code, cell_size_m):
    """Cut a community into square grid cells (where no official grid exists)."""
    community = service.get_by_code(db.session, community_code)
    cells = service.cut_grid(
        db.session, community, cell_size_m, source=f"generated {cell_size_m:g} m grid"
    )
    db.session.commit()
    click.echo(f"{len(cells)} grid cell(s) in {community.code}")
