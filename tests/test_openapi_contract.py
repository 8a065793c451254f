"""The app developer's contract: /api/v1/openapi.json is a valid OpenAPI 3 document that a
client generator takes whole, and the client it generates works against a real server.

The document is checked by openapi-spec-validator and by the rules the generators need (no
`formData`, a schema for every body, multipart bodies as multipart/form-data, no two models of
one name); then openapi-python-client generates a client (into a temporary folder, without
warnings), and a volunteer's journey runs through that client against gunicorn.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from openapi_spec_validator import validate
from PIL import Image

from app import demo
from tests.conftest import make_app
from tests.live import demo_database, served
from tests.ops.processes import VENV_BIN

MULTIPART = "multipart/form-data"
PACKAGE = "qunfang_client"


@pytest.fixture(scope="module")
def spec(app) -> dict:
    with app.test_client() as client:
        return client.get("/api/v1/openapi.json").get_json()


def _operations(spec: dict) -> Iterator[tuple[str, str, dict]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                yield path, method, operation


def test_document_is_valid_openapi(spec):
    validate(spec)


def test_no_form_data_parameters(spec):
    for path, method, operation in _operations(spec):
        places = {p.get("in") for p in operation.get("parameters", []) if "in" in p}
        assert places <= {"query", "path", "header", "cookie"}, f"{method} {path}: {places}"


def test_every_body_has_a_schema(spec):
    for path, method, operation in _operations(spec):
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += [(status, r) for status, r in operation["responses"].items()]
        for what, body in bodies:
            for content_type, content in body.get("content", {}).items():
                assert content.get("schema"), f"{method} {path} {what} {content_type}"


def test_uploads_are_multipart_bodies(spec):
    uploads = {
        (path, method): operation["requestBody"]["content"]
        for path, method, operation in _operations(spec)
        if "requestBody" in operation
        and any(
            prop.get("format") == "binary"
            for content in operation["requestBody"]["content"].values()
            for prop in _properties(spec, content["schema"]).values()
        )
    }
    assert set(uploads) == {("/api/v1/media", "post"), ("/api/v1/stations/import", "post")}
    for content in uploads.values():
        assert list(content) == [MULTIPART]


def _properties(spec: dict, schema: dict) -> dict:
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema.get("properties", {})


def test_no_two_schemas_resolve_to_one_name(database_url):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_app(database_url)
    assert not [w for w in caught if "Multiple schemas resolved" in str(w.message)]


def _request_schemas(spec: dict) -> set[str]:
    """Names of the component schemas a request body reaches, through any nesting."""
    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                name = ref.rsplit("/", 1)[1]
                if name not in found:
                    found.add(name)
                    walk(spec["components"]["schemas"][name])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for _path, _method, operation in _operations(spec):
        walk(operation.get("requestBody", {}))
    return found


def test_a_point_in_a_request_body_has_one_shape(spec):
    """Issue 15: stations and check-ins took flat lon/lat, tips and tasks a nested location.
    Now every request body's point is `location`: Location, or Fix (a Location with accuracy)."""
    schemas = spec["components"]["schemas"]
    reached = _request_schemas(spec)
    assert {"Location", "Fix", "CheckInItem"} <= reached
    with_coordinates = {
        name for name in reached if {"lon", "lat"} & set(schemas[name].get("properties", {}))
    }
    assert with_coordinates == {"Location", "Fix"}
    assert set(schemas["Location"]["properties"]) == {"lon", "lat", "coord_system"}
    assert set(schemas["Fix"]["properties"]) == {"lon", "lat", "coord_system", "accuracy_m"}
    holders = {
        (name, field): prop
        for name in reached
        for field, prop in schemas[name].get("properties", {}).items()
        if "Location" in json.dumps(prop) or '/Fix"' in json.dumps(prop)
    }
    assert holders, "no body holds a point"
    assert {field for _name, field in holders} == {"location"}, holders


def test_free_text_in_a_request_body_has_the_agreed_names(spec):
    """Issue 15: tip notes took `note`, a tipster's added information `text`. Added text is
    `note`, why an action was taken `reason`, why protected details are read `purpose`
    (docs/api.md, Free text); none of the other usual names appears in a request body."""
    schemas = spec["components"]["schemas"]
    reached = _request_schemas(spec)
    names = {field for name in reached for field in schemas[name].get("properties", {})}
    assert "note" in names and "reason" in names
    assert not names & {"text", "comment", "comments", "remark", "remarks", "memo", "message"}


def test_one_module_names_the_geojson_media_type():
    """Issue 15: four modules each defined it, each answering GeoJSON its own way. Now
    app/core/geojson.py names it and makes every GeoJSON answer (`answer`)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    naming = sorted(
        str(path.relative_to(root))
        for path in (root / "app").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value == "application/geo+json"
    )
    assert naming == ["app/core/geojson.py"]


def test_no_module_reads_marshmallow_or_flask_smorest_internals_for_its_answers():
    """Five routes listed fields from `Schema._declared_fields` and tasks checked If-Match with
    flask-smorest's `_generate_etag`; public APIs only (`Schema().fields`; app/core/
    preconditions.py for ETags)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    private = {"_declared_fields", "_generate_etag"}
    used = sorted(
        f"{path.relative_to(root)}:{node.lineno}"
        for path in (root / "app").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in private
    )
    assert used == []


def test_check_in_items_are_documented(spec):
    items = spec["components"]["schemas"]["CheckInBatch"]["properties"]["items"]["items"]
    assert items == {"$ref": "#/components/schemas/CheckInItem"}


# -- the generated client ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(spec, tmp_path_factory):
    """openapi-python-client's package for the document, imported; generation warns of nothing."""
    folder = tmp_path_factory.mktemp("client")
    document = folder / "openapi.json"
    document.write_text(json.dumps(spec))
    config = folder / "config.yml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n")
    run = subprocess.run(  # noqa: S603 - the pinned generator
        [
            str(VENV_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(folder / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Warning" not in output and "WARNING" not in output, output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_generation_keeps_every_model(generated, spec):
    models = importlib.import_module(f"{PACKAGE}.models")
    for name in spec["components"]["schemas"]:
        assert hasattr(models, name.replace("_", "")), name


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """gunicorn on a throw-away database, migrated and demo-loaded."""
    with (
        demo_database() as owner_url,
        served(owner_url, tmp_path_factory.mktemp("gunicorn")) as base,
    ):
        yield base


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def volunteer(generated, server) -> SimpleNamespace:
    """A volunteer registered through the generated client, and the client signed in as them
    (a volunteer's journey: each test below is one step of it)."""
    from qunfang_client import AuthenticatedClient, Client
    from qunfang_client.api.auth import post_api_v1_auth_register
    from qunfang_client.models import Register

    anonymous = Client(base_url=server, raise_on_unexpected_status=True)
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    password = "Walk-the-dog-at-dusk-2026"
    registered = post_api_v1_auth_register.sync_detailed(
        client=anonymous,
        body=Register.from_dict(
            {
                "phone": phone,
                "password": password,
                "real_name": "李娜",
                "id_number": demo.demo_id_number(901),
                "consents": {"terms_version": "2026-11", "id_number": True},
            }
        ),
    )
    assert registered.status_code == 201, registered.content
    client = AuthenticatedClient(
        base_url=server, token=registered.parsed.access_token, raise_on_unexpected_status=True
    )
    return SimpleNamespace(
        anonymous=anonymous, phone=phone, password=password, registered=registered, client=client
    )


def _upload_photo(client):
    from qunfang_client.api.media import post_api_v1_media
    from qunfang_client.models import MediaUpload
    from qunfang_client.types import File

    return post_api_v1_media.sync(
        client=client,
        body=MediaUpload(file=File(payload=io.BytesIO(_jpeg()), file_name="p.jpg")),
    )


def test_registration_answers_the_account_and_sign_in_gives_another_session(volunteer):
    from qunfang_client.api.auth import post_api_v1_auth_login
    from qunfang_client.models import Login

    assert volunteer.registered.parsed.user.real_name == "李娜"
    # Registration signs in too; signing in again gives another session.
    signed_in = post_api_v1_auth_login.sync(
        client=volunteer.anonymous, body=Login(phone=volunteer.phone, password=volunteer.password)
    )
    assert signed_in.access_token != volunteer.registered.parsed.access_token


def test_a_photo_upload_answers_its_size_and_type(volunteer):
    photo = _upload_photo(volunteer.client)
    assert (photo.width, photo.height) == (64, 48)
    assert photo.content_type == "image/jpeg"


def test_a_tip_with_a_photo_is_submitted(volunteer):
    from qunfang_client.api.tip_categories import get_api_v1_tip_categories
    from qunfang_client.api.tips import post_api_v1_tips
    from qunfang_client.models import TipCreate

    photo = _upload_photo(volunteer.client)
    categories = get_api_v1_tip_categories.sync(client=volunteer.client)
    category = categories.items[0].code
    tip = post_api_v1_tips.sync(
        client=volunteer.client,
        body=TipCreate.from_dict(
            {
                "category": category,
                "description": "路口的井盖松动了",
                "location": {"lon": 116.4854, "lat": 39.9484},
                "media_ids": [str(photo.id)],
            }
        ),
    )
    assert tip.id and tip.status


def test_a_patrols_check_in_is_accepted(volunteer):
    from qunfang_client.api.patrols import (
        post_api_v1_patrols,
        post_api_v1_patrols_patrol_id_checkins,
    )
    from qunfang_client.models import CheckInBatch, PatrolCreate

    patrol = post_api_v1_patrols.sync(
        client=volunteer.client, body=PatrolCreate.from_dict({"kind": "walk_along"})
    )
    fix = {
        "client_id": str(uuid.uuid4()),
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(),
        "location": {"lon": 116.4854, "lat": 39.9484},
    }
    result = post_api_v1_patrols_patrol_id_checkins.sync(
        patrol_id=patrol.id, client=volunteer.client, body=CheckInBatch.from_dict({"items": [fix]})
    )
    assert [(str(o.client_id), o.outcome) for o in result.items] == [(fix["client_id"], "accepted")]


def test_nearby_stations_come_nearest_first_within_the_radius(volunteer):
    from qunfang_client.api.stations import get_api_v1_stations_nearby

    nearby = get_api_v1_stations_nearby.sync(
        client=volunteer.client, lon=116.4854, lat=39.9484, radius_m=20_000
    )
    assert nearby.items
    distances = [s.distance_m for s in nearby.items]
    assert distances == sorted(distances) and distances[-1] <= 20_000
