#!/usr/bin/env python3
"""The migrated database a mutation run's test sessions copy (scripts/mutation.py).

    mutation_template.py build NAME MODULE_FILE   # prints the lines of MODULE_FILE run meanwhile
    mutation_template.py drop NAME

`build` makes NAME on the test server exactly as the suite's `app` fixture makes the run's
database (tests/conftest.py: the migrations, then the demo data set), and prints as JSON the lines
of MODULE_FILE that ran while doing it. When there are some, the module under mutation takes part
in building the database, and its mutants must not share one built from the original code.
Connections to NAME are then refused (ALLOW_CONNECTIONS false), so that no session is inside it
when a test session copies it (CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import coverage
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import conftest


def _admin() -> tuple[sa.Engine, sa.URL]:
    url = sa.engine.make_url(conftest.server_url())
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool), url


def drop(name: str) -> None:
    admin, _url = _admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def build(name: str, module_file: str) -> list[int]:
    drop(name)
    admin, url = _admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    owner_url = url.set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(owner_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    engine.dispose()
    app = conftest.make_app(conftest.as_app(owner_url))
    path = str(Path(module_file).resolve())
    tracer = coverage.Coverage(data_file=None, include=[path], config_file=False)
    with app.app_context():
        tracer.start()
        try:
            conftest.build_database()
        finally:
            tracer.stop()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin.dispose()
    return sorted(tracer.get_data().lines(path) or [])


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"] and len(argv) == 3:
        print(json.dumps(build(argv[1], argv[2])))
        return 0
    if argv[:1] == ["drop"] and len(argv) == 2:
        drop(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
