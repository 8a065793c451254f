"""Set-up for tests whose requests commit for real, so cannot run inside the suite's rolled-back
test transaction: a database of their own, and the application served by gunicorn on it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import flask_migrate

from app import demo
from app.core.schema_version import MIGRATIONS_DIR
from app.extensions import db
from tests.conftest import as_app, make_app, server_url, throwaway_database
from tests.ops.processes import base_environment, gunicorn


@contextlib.contextmanager
def demo_database() -> Iterator[str]:
    """A throw-away database (its owner's URL), migrated, with the demo data; dropped after."""
    with throwaway_database(server_url()) as owner_url:
        app = make_app(owner_url)
        with app.app_context():
            flask_migrate.upgrade(directory=str(MIGRATIONS_DIR))
            demo.load(db.session, log=lambda _line: None)
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
        yield owner_url


@contextlib.contextmanager
def served(owner_url: str, log_dir: Path, **settings: str) -> Iterator[str]:
    """gunicorn (one worker) on `owner_url`'s database as the application's role: its base URL.
    `settings` are more environment settings of the app (MAP_TILE_URL=..., say)."""
    env = base_environment(
        QF_ENV="testing",
        DATABASE_URL=as_app(owner_url),
        RATELIMIT_STORAGE_URI="memory://",
        **settings,
    )
    with gunicorn(env, log_dir / "gunicorn.log", workers=1) as base:
        yield base
