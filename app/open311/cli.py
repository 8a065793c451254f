"""`flask open311 ...`: the client apps allowed to submit reports through Open311."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.core.cli import domain_errors_as_messages
from app.extensions import db
from app.open311 import service

open311_cli = AppGroup("open311", help="Open311 GeoReport v2 client apps.")


@open311_cli.command("add-client")
@click.argument("name")
@domain_errors_as_messages
def add_client_command(name: str) -> None:
    """Register a client app and print its api_key: shown once, only its SHA-256 is kept."""
    client, key = service.add_client(db.session, name)
    db.session.commit()
    click.echo(f"client {client.name!r} registered; its api_key (shown only now):", err=True)
    click.echo(key)


@open311_cli.command("disable-client")
@click.argument("name")
@domain_errors_as_messages
def disable_client_command(name: str) -> None:
    """Stop accepting a client app's api_key."""
    client = service.disable_client(db.session, name)
    db.session.commit()
    click.echo(f"client {client.name!r} disabled")
