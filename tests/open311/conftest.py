"""Open311 helpers: client keys, tips filed by the tips service, the GeoReport v2 JSON Schemas
(tests/open311/schemas, resolved locally) and an XML reader."""

from __future__ import annotations

import functools
import json
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema_rs
import pytest
from sqlalchemy import func, select

from app.open311 import service as open311
from app.tips import service as tips
from app.tips.models import Tip

SCHEMAS = Path(__file__).parent / "schemas"
# Inside community 110105001024 (Jianwai), in WGS-84; 5 decimals, so coarsening shows.
JIANWAI = (116.45664, 39.90978)


def _retrieve(uri: str) -> dict:
    return json.loads((SCHEMAS / uri.rpartition("/")[2]).read_text())


@functools.cache
def validator(name: str) -> jsonschema_rs.Draft4Validator:
    return jsonschema_rs.Draft4Validator(
        _retrieve(name),
        retriever=_retrieve,
        validate_formats=True,
        base_uri=f"file:///georeport-v2/{name}",
    )


def schema_errors(name: str, document) -> list[str]:
    """Where `document` breaks the GeoReport v2 schema `name` (empty: it conforms)."""
    return [
        f"{error.instance_path}: {error.message}" for error in validator(name).iter_errors(document)
    ]


def parse_xml(body: bytes) -> ET.Element:
    return ET.fromstring(body)  # noqa: S314 - our own server's answer, no entities to expand


def xml_items(body: bytes, root: str, item: str) -> list[dict[str, str | None]]:
    """The flat items of an Open311 XML list (`<root><item><field>…`), as dicts of texts."""
    element = parse_xml(body)
    assert element.tag == root
    assert all(child.tag == item for child in element)
    return [{field.tag: field.text for field in child} for child in element]


def as_text(value) -> str | None:
    """A JSON value as its XML element's text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def assert_open311_error(response, status: int, fmt: str = "json") -> str:
    """The response is GeoReport v2's error list with one error of `status`; its description."""
    assert response.status_code == status, response.get_data(as_text=True)
    if fmt == "xml":
        assert response.mimetype == "text/xml"
        errors = xml_items(response.data, "errors", "error")
    else:
        assert response.mimetype == "application/json"
        errors = response.get_json()
    assert len(errors) == 1
    assert set(errors[0]) == {"code", "description"}
    assert str(errors[0]["code"]) == str(status)
    assert errors[0]["description"]
    return errors[0]["description"]


@pytest.fixture
def api_key(session) -> str:
    """The key of a new, active client app."""
    _client, key = open311.add_client(session, f"test-app-{uuid.uuid4().hex[:8]}")
    session.commit()
    return key


@pytest.fixture
def make_tip(session):
    """File a tip through the tips service: make_tip(category=..., at=(lon, lat) or None,
    address_text=..., reporter=..., status=..., created_at=...)."""

    def make(
        category="environment_sanitation",
        at=JIANWAI,
        description="楼道里堆满了垃圾",
        address_text=None,
        reporter=None,
        status=None,
        created_at=None,
    ) -> Tip:
        values = {
            "category": category,
            "description": description,
            "location": {"lon": at[0], "lat": at[1], "accuracy_m": 6.0} if at else None,
            "address_text": address_text,
        }
        tip = tips.submit(session, reporter, values)
        if status is not None:
            tip.status = status
        if created_at is not None:
            tip.created_at = created_at
        session.commit()
        return tip

    return make


@pytest.fixture
def stored_position(session):
    """The stored (lon, lat) of a tip."""
    return lambda tip_id: session.execute(
        select(func.ST_X(Tip.geom), func.ST_Y(Tip.geom)).where(Tip.id == tip_id)
    ).one()


@pytest.fixture
def tip_count(session):
    return lambda: session.scalar(select(func.count()).select_from(Tip))
