"""`flask keys ...`: rotate the keys that encrypt phone numbers and real names at rest."""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.core import field_crypto

keys_cli = AppGroup("keys", help="Keys of the fields encrypted at rest.")


@keys_cli.command("rotate")
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the new master key (must not exist).",
)
def rotate(new_key_file: str) -> None:
    """Re-wrap every data key and the lookup key with a new master key; no row changes.

    Then point FIELD_KEY_FILE at the new file on every host and restart; destroy the old file
    once no host reads it.
    """
    config = current_app.config
    old = field_crypto.read_master_key(config["FIELD_KEY_FILE"])
    if Path(new_key_file).exists():
        raise click.ClickException(f"{new_key_file} exists already")
    new = field_crypto.new_master_key(new_key_file)
    count = field_crypto.rewrap(old, new, config["FIELD_KEYRING_FILE"])
    click.echo(f"keys: {count} keys re-wrapped with the master key in {new_key_file}")
    click.echo(f"keys: set FIELD_KEY_FILE={os.path.abspath(new_key_file)} and restart")


@keys_cli.command("new-data-key")
def new_data_key() -> None:
    """Make a new data key, used for new writes from the next start; old ones still decrypt."""
    config = current_app.config
    master = field_crypto.read_master_key(config["FIELD_KEY_FILE"])
    version = field_crypto.add_data_key(master, config["FIELD_KEYRING_FILE"])
    click.echo(f"keys: data key version {version} is current from the next start")
