"""The staff web console, served by the API's own application under /console.

Server-rendered pages (Jinja, zh-CN first through the API's catalogs) with a little script for
the map and for new tips arriving; Leaflet is vendored under static/vendor (nothing comes from
a CDN: district offices run on intranets). Sign-in, CSRF and the session cookie:
app/console/access.py. Every page reads and writes through the API's services, on the same
jurisdiction rules; see docs/console.md.
"""

from __future__ import annotations

from flask import Flask

from app.core.blueprint import TransactionalBlueprint, declare_public_endpoint

bp = TransactionalBlueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)


def init_console(app: Flask) -> None:
    from app.console import (  # noqa: F401 - routes and handlers on `bp`
        access,
        admin,
        dispatch,
        errors,
        grid,
        liaison,
        organisations,
        patrols,
        views,
    )

    app.session_interface = access.ConsoleSessionInterface()
    app.register_blueprint(bp)
    declare_public_endpoint("console.static")  # the vendored script and styles
