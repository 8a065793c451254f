"""Qunfang: the application factory."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Config
from app.core import i18n  # first: marshmallow's messages become translatable before any schema


def create_app(config: Config | None = None) -> Flask:
    """config -> logging -> extensions -> error handlers -> blueprints -> CLI."""
    from app.areas.routes import blp as areas_blp
    from app.audit.routes import blp as audit_blp
    from app.auth.routes import auth_blp, me_blp, terms_blp, users_blp
    from app.auth.tokens import init_token_loading
    from app.cli import register_cli
    from app.console import init_console
    from app.core import caching, field_crypto, replica
    from app.core.api import Api
    from app.core.db import decide_transactions
    from app.core.docs import init_docs, openapi_settings
    from app.core.logging import configure_logging, init_request_logging
    from app.core.schema_version import MIGRATIONS_DIR
    from app.core.untrusted import init_untrusted_input
    from app.duty import jobs as _duty_jobs  # noqa: F401 - the positions' expiry (periodic)
    from app.duty import service as duty_service
    from app.duty.routes import blp as duty_blp
    from app.exports import jobs as _exports_jobs  # noqa: F401 - jobs register on import
    from app.exports import stored as exports_stored
    from app.exports.routes import blp as clue_batches_blp
    from app.extensions import db, jwt, limiter, migrate
    from app.grid.routes import blp as grid_blp
    from app.grid.routes import public_blp as public_heatmap_blp
    from app.media import jobs as _media_jobs  # noqa: F401 - jobs register on import
    from app.media import storage as media_storage
    from app.media.routes import blp as media_blp
    from app.open311 import models as _open311_models  # noqa: F401 - tables for migrations
    from app.open311.routes import blp as open311_blp
    from app.ops.routes import blp as ops_blp
    from app.patrols import jobs as _patrols_jobs  # noqa: F401 - jobs register on import
    from app.patrols.routes import checkpoints_blp, coverage_blp, patrols_blp
    from app.privacy import archive as privacy_archive
    from app.privacy import deletion as privacy_deletion
    from app.privacy import jobs as _privacy_jobs  # noqa: F401 - jobs register on import
    from app.privacy.routes import blp as privacy_blp
    from app.privacy.routes import me_deletion_blp, users_deletion_blp
    from app.service_record.routes import blp as service_record_blp
    from app.stations import jobs as _stations_jobs  # noqa: F401 - jobs register on import
    from app.stations.routes import blp as stations_blp
    from app.storage import jobs as _storage_jobs  # noqa: F401 - the orphan sweep (periodic)
    from app.tasks import access as tasks_access
    from app.tasks import jobs as _tasks_jobs  # noqa: F401 - jobs register on import
    from app.tasks import models as _tasks_models  # noqa: F401 - tables for migrations
    from app.tasks.routes import me_blp as my_tasks_blp
    from app.tasks.routes import tasks_blp
    from app.teams.routes import blp as teams_blp
    from app.tips import access as tips_access
    from app.tips.routes import categories_blp, my_tips_blp, tips_blp
    from notifications.routes import blp as notifications_blp
    from notifications.routes import devices_blp

    config = config or Config.from_env()
    app = Flask(__name__, static_folder=None)
    # UTF-8 with Chinese as it is (3 bytes a character), not \uXXXX escapes (6): every JSON
    # answer, as the orjson-written ones (app/core/fastjson.py) and problems already were.
    app.json.ensure_ascii = False
    app.config.from_mapping(config.as_flask_config())
    app.config.update(openapi_settings())
    app.config.update(
        JWT_TOKEN_LOCATION=["headers"],
        RATELIMIT_HEADERS_ENABLED=True,
        JSON_SORT_KEYS=False,
    )
    # Parameters of failed statements stay out of exception messages, and so out of logs.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        "hide_parameters": True,
    }

    if app.config["PROXY_HOPS"]:
        # Behind a load balancer: trust that many X-Forwarded-For / -Proto hops, so that
        # per-client rate limits see clients, not the balancer.
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=app.config["PROXY_HOPS"], x_proto=app.config["PROXY_HOPS"]
        )

    configure_logging(app.config["LOG_LEVEL"])
    init_request_logging(app)
    i18n.init_i18n(app)
    init_untrusted_input(app)  # after the request id is set: its problems carry it
    caching.init_app(app)

    field_crypto.install(
        field_crypto.open_or_create(
            app.config["FIELD_KEY_FILE"],
            app.config["FIELD_KEYRING_FILE"],
            create=app.config["ENV"] != "production",
        )
    )
    db.init_app(app)
    with app.app_context():
        replica.init_app(app, db.engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), compare_type=True)
    jwt.init_app(app)
    # Before the limiter's: its key function loads the caller (app/core/db.py).
    app.before_request(decide_transactions)
    limiter.init_app(app)
    _jwt_errors_as_problems()
    init_token_loading(jwt)

    api = Api(app)
    for blueprint in (
        ops_blp,
        auth_blp,
        terms_blp,
        me_blp,
        users_blp,
        areas_blp,
        teams_blp,
        stations_blp,
        media_blp,
        tips_blp,
        categories_blp,
        my_tips_blp,
        notifications_blp,
        patrols_blp,
        checkpoints_blp,
        coverage_blp,
        service_record_blp,
        tasks_blp,
        my_tasks_blp,
        duty_blp,
        devices_blp,
        grid_blp,
        public_heatmap_blp,
        clue_batches_blp,
        audit_blp,
        privacy_blp,
        me_deletion_blp,
        users_deletion_blp,
    ):
        api.register_blueprint(blueprint)
    # Hooks a lower package owns and a higher one fills, so that imports only go down the
    # layers (pyproject.toml): photos ask their tip's or task's rule who may see them, and
    # accounts tell duty when the location-sharing consent is withdrawn.
    tips_access.register_photo_rule()
    tasks_access.register_photo_rule()
    duty_service.connect_to_accounts()
    privacy_deletion.connect_to_accounts()
    # ... and the orphan sweep asks each kind of stored object's owner which ones rows still
    # point to (app/storage/owners.py).
    media_storage.register_stored_objects()
    exports_stored.register_stored_objects()
    privacy_archive.register_stored_objects()
    # Open311 follows its own specification, not our OpenAPI document (app/open311/routes.py).
    app.register_blueprint(open311_blp)
    init_console(app)  # the staff web console, /console (app/console/)
    init_docs(app)
    register_cli(app)
    return app


def _jwt_errors_as_problems() -> None:
    """flask-jwt-extended answers {"msg": ...} by default; ours are problem+json, 401."""
    from app.core.errors import problem
    from app.core.i18n import N_, _
    from app.extensions import jwt

    def unauthorized(reason: str):
        # flask-jwt-extended's own reasons (a missing header, a malformed token) stay English:
        # they name headers and token parts, for the developer.
        return problem(
            401,
            detail=_("A valid bearer token is required: %(reason)s", reason=reason),
            headers={"WWW-Authenticate": 'Bearer realm="qunfang"'},
        )

    def because(reason: str):
        return lambda _header, _payload: unauthorized(_(reason))

    jwt.unauthorized_loader(unauthorized)
    jwt.invalid_token_loader(unauthorized)
    jwt.expired_token_loader(because(N_("the token has expired")))
    jwt.revoked_token_loader(because(N_("the token was revoked")))
    jwt.needs_fresh_token_loader(because(N_("a fresh login is needed")))
    jwt.user_lookup_error_loader(because(N_("the session has ended")))
    jwt.token_verification_failed_loader(because(N_("the token's claims were refused")))
