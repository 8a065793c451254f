"""`flask users ...`: operators bootstrap the first accounts."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.areas import service as areas
from app.auth import service
from app.core.auth import ROLES
from app.core.cli import domain_errors_as_messages
from app.extensions import db

users_cli = AppGroup("users", help="Accounts.")


@users_cli.command("create")
@click.option("--role", "roles", type=click.Choice(ROLES), multiple=True, required=True)
@click.option("--phone", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", "real_name", required=True, help="Real name.")
@click.option("--id-number", help="Resident ID number (volunteers need one to be verified).")
@click.option(
    "--id-number-consent",
    is_flag=True,
    help="The person consented to processing their ID number (required with --id-number).",
)
@click.option("--area", "area_codes", multiple=True, help="Jurisdiction area code (repeatable).")
@click.option("--home-community", help="Code of the home community.")
@domain_errors_as_messages
def create_command(
    roles, phone, password, real_name, id_number, id_number_consent, area_codes, home_community
):
    """Create an account, with the same validation as the API."""
    values = {
        "phone": phone,
        "password": password,
        "real_name": real_name,
        "id_number": id_number,
        "id_number_consent": id_number_consent,
        "roles": list(roles),
        "jurisdiction": [areas.get_by_code(db.session, code).id for code in area_codes],
        "home_community_id": areas.get_by_code(db.session, home_community).id
        if home_community
        else None,
    }
    settings = service.AuthSettings.from_config(current_app.config)
    user = service.create_account(db.session, None, values, settings)
    db.session.commit()
    click.echo(f"created {user.id} ({', '.join(user.roles)})")
