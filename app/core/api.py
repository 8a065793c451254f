"""The flask-smorest `Api`, adapted so that errors are problem+json in the code and in the spec."""

from __future__ import annotations

import http

import flask_smorest
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields

from app.core.errors import PROBLEM_MIMETYPE, register_error_handlers
from app.core.fields import document_unjudged_objects


class FieldErrorSchema(Schema):
    location = fields.String(metadata={"description": "json, query, headers, files or form"})
    pointer = fields.String(
        metadata={"description": "JSON pointer to the field, e.g. /items/0/lon"}
    )
    detail = fields.String()


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(metadata={"description": "about:blank or urn:qunfang:problem:<slug>"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    request_id = fields.String(metadata={"description": "the X-Request-ID of the failed request"})
    errors = fields.List(fields.Nested(FieldErrorSchema), metadata={"description": "422 only"})
    current_terms_version = fields.String(
        metadata={"description": "a registration refused for its terms version: the one to accept"}
    )


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ProblemSchema

    def init_app(self, app, *, spec_kwargs=None):
        super().init_app(app, spec_kwargs=spec_kwargs)
        self.ma_plugin.converter.add_attribute_function(document_unjudged_objects)
        # Ours replace flask-smorest's JSON handler of HTTPException: every error is problem+json.
        register_error_handlers(app)

    def register_blueprint(self, blp, *, parameters=None, **options):
        """As flask-smorest's, but a blueprint filing its operations under another one's tag
        (`Blueprint(doc_tag=...)`, app/core/blueprint.py) adds no tag of its own to the
        document: a listed tag with no operation shows as an empty section in the docs."""
        if getattr(blp, "doc_tag", None) is None:
            super().register_blueprint(blp, parameters=parameters, **options)
            return
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        blp.register_views_in_doc(self, self._app, self.spec, name=name, parameters=parameters)

    def _register_responses(self):
        # flask-smorest documents error responses as application/json; ours are problem+json.
        # (Private, and the one hook left: the default responses are registered by name inside
        # init_app, and a second registration of a name is refused.)
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)
