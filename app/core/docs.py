"""Interactive API docs served from local files: the staff network may have no internet.

flask-smorest renders the Swagger UI page; its JavaScript and CSS come from the swagger-ui-bundle
package installed with the app, under /api/docs/assets/.
"""

from __future__ import annotations

from flask import Blueprint, Flask, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from app.core import caching
from app.core.blueprint import declare_public_endpoint

ASSETS_URL = "/api/docs/assets/"

assets = Blueprint("docs_assets", __name__)


@assets.route(ASSETS_URL + "<path:filename>")
def asset(filename: str):
    return send_from_directory(swagger_ui_path, filename, max_age=86400)


# Endpoints outside our smorest blueprints: the spec, the docs page and its assets are public.
PUBLIC_INFRASTRUCTURE = (
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
    "docs_assets.asset",
)


def openapi_settings() -> dict:
    return {
        "API_TITLE": "Qunfang API",
        "API_VERSION": "v1",
        # 3.0.3: the Swagger UI bundled with swagger-ui-bundle (4.x) renders only 3.0 documents.
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "v1/openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": ASSETS_URL,
        # No call to validator.swagger.io: the staff network may have no internet.
        "OPENAPI_SWAGGER_UI_CONFIG": {"validatorUrl": None},
        "API_SPEC_OPTIONS": {
            "info": {
                "description": "Qunfang: patrols, tips, stations and tasks for neighbourhood "
                "volunteers, grid staff and police liaisons. Errors are RFC 9457 problem+json."
            },
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
        },
    }


def init_docs(app: Flask) -> None:
    app.register_blueprint(assets)
    for endpoint in PUBLIC_INFRASTRUCTURE:
        declare_public_endpoint(endpoint)
        caching.declare_endpoint(endpoint, caching.PUBLIC_DATA)
