"""`flask stations ...`: import and export the station registry."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.core.cli import domain_errors_as_messages
from app.extensions import db
from app.stations import transfer
from app.stations.models import Station
from geo.crs import CoordSystem

stations_cli = AppGroup("stations", help="Service stations.")


@stations_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source-crs", type=click.Choice([c.value for c in CoordSystem]), default="wgs84")
@click.option("--dry-run", is_flag=True, help="Check and report; keep nothing.")
@domain_errors_as_messages
def import_command(file: Path, source_crs: str, dry_run: bool) -> None:
    """Import stations from a .csv or .geojson file, creating or updating by external_ref."""
    fmt = "csv" if file.suffix.lower() == ".csv" else "geojson"
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file}: not UTF-8") from exc
    rows = text.count("\n") if fmt == "csv" else text.count('"Feature"')
    with click.progressbar(length=max(rows, 1), label="Importing", file=sys.stderr) as bar:
        try:
            report = transfer.import_stations(
                db.session,
                None,
                text,
                fmt=fmt,
                source_crs=CoordSystem(source_crs),
                dry_run=dry_run,
                on_progress=bar.update,
            )
        except transfer.ImportFormatError as exc:
            raise click.ClickException(f"{file}: {exc}") from exc
    db.session.commit()
    verb = "would create" if dry_run else "created"
    click.echo(f"{verb} {report.created}, updated {report.updated}, {len(report.errors)} error(s)")
    for error in report.errors:
        click.echo(f"  row {error['row']}: {error['detail']}", err=True)


@stations_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "geojson"]), default="csv")
def export_command(fmt: str) -> None:
    """Write every station to standard output as CSV or GeoJSON."""
    query = select(Station).order_by(Station.name, Station.id)
    chunks = transfer.export_csv if fmt == "csv" else transfer.export_geojson
    for chunk in chunks(db.session, query):
        click.echo(chunk, nl=False)
