"""Open311 writes: POST requests files an anonymous tip for a client app holding an api_key."""

from __future__ import annotations

import uuid

import pytest
from geoalchemy2.shape import to_shape
from sqlalchemy import select, text

from app.open311 import service as open311
from app.open311.models import ApiClient
from app.tips.models import Tip, TipCategory
from tests.open311.conftest import JIANWAI, assert_open311_error, xml_items

URL = "/open311/v2/requests"
CONTACT = {
    "email": "zhang.wei.7788@example.com",
    "first_name": "Wei7788",
    "last_name": "Zhang7788",
    "phone": "13912347788",
    "device_id": "device-7788-abcdef",
    "account_id": "account-7788",
}


def report(api_key: str | None, **overrides) -> dict[str, str]:
    lon, lat = JIANWAI
    form = {
        "api_key": api_key,
        "service_code": "environment_sanitation",
        "lat": str(lat),
        "long": str(lon),
        "description": "小区门口的垃圾桶已经三天没人清理",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def rows_text(session, tip_id) -> str:
    """Everything stored for a tip and its history, as text."""
    tip = session.execute(text("SELECT t::text FROM tips t WHERE id = :id"), {"id": tip_id})
    events = session.execute(
        text("SELECT e::text FROM tip_events e WHERE tip_id = :id"), {"id": tip_id}
    )
    return "\n".join([*tip.scalars(), *events.scalars()])


def test_a_report_becomes_an_anonymous_tip_without_contact_details(client, session, api_key):
    form = report(api_key, jurisdiction_id="beijing.chaoyang", **CONTACT)
    response = client.post(f"{URL}.json", data=form)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    (answer,) = response.get_json()
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    assert answer["account_id"] is None
    assert "anonymous" in answer["service_notice"]
    assert "Contact details" in answer["service_notice"]

    tip = session.get(Tip, uuid.UUID(answer["service_request_id"]))
    assert tip.anonymous is True
    assert tip.reporter_id is None
    assert tip.category_code == "environment_sanitation"
    assert tip.description == form["description"]
    point = to_shape(tip.geom)
    assert (point.x, point.y) == pytest.approx(JIANWAI)
    assert tip.community_id is not None

    stored = rows_text(session, tip.id)
    assert tip.description in stored  # the search does see the rows' contents
    for value in CONTACT.values():
        assert value not in stored
    assert "7788" not in stored


def test_multipart_forms_and_addresses_without_coordinates_are_accepted(client, session, api_key):
    form = report(api_key, lat=None, long=None, address_string="  朝阳区建外街道南郎家园  ")
    response = client.post(f"{URL}.json", data=form, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_data(as_text=True)
    tip = session.get(Tip, uuid.UUID(response.get_json()[0]["service_request_id"]))
    assert tip.geom is None
    assert tip.address_text == "朝阳区建外街道南郎家园"
    assert tip.district_id is not None


def test_empty_optional_fields_count_as_missing(client, api_key):
    form = report(api_key, address_string="", media_url="", email="", attribute="")
    response = client.post(f"{URL}.json", data=form)
    assert response.status_code == 200, response.get_data(as_text=True)
    notice = response.get_json()[0]["service_notice"]
    assert "Contact details" not in notice
    assert "media_url" not in notice


def test_the_answer_in_xml(client, session, api_key):
    response = client.post(f"{URL}.xml", data=report(api_key))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    (answer,) = xml_items(response.data, "service_requests", "request")
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    assert answer["account_id"] is None
    assert session.get(Tip, uuid.UUID(answer["service_request_id"])).anonymous


def test_media_urls_are_ignored_and_said_so(client, session, api_key):
    form = report(api_key, media_url="https://example.com/photo-7788.jpg")
    response = client.post(f"{URL}.json", data=form)
    assert response.status_code == 200
    (answer,) = response.get_json()
    assert "media_url was ignored" in answer["service_notice"]
    assert "photo-7788" not in rows_text(session, answer["service_request_id"])


def test_reports_of_confidential_kinds_are_filed_but_never_published(client, api_key):
    response = client.post(f"{URL}.json", data=report(api_key, service_code="drugs"))
    assert response.status_code == 200
    (answer,) = response.get_json()
    assert "confidential" in answer["service_notice"]
    request_id = answer["service_request_id"]
    assert_open311_error(client.get(f"{URL}/{request_id}.json"), 404)
    assert_open311_error(client.get(f"/open311/v2/tokens/{request_id}.json"), 404)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("key", [None, "", "not-a-key", "x" * 43])
def test_a_missing_or_wrong_api_key_is_a_403_and_nothing_is_stored(client, tip_count, fmt, key):
    before = tip_count()
    response = client.post(f"{URL}.{fmt}", data=report(key, **CONTACT))
    description = assert_open311_error(response, 403, fmt)
    assert "api_key" in description
    assert tip_count() == before


def test_a_disabled_clients_key_is_a_403(client, session, tip_count, api_key):
    client_app = session.scalar(
        select(ApiClient).where(ApiClient.key_digest == open311.key_digest(api_key))
    )
    open311.disable_client(session, client_app.name)
    session.commit()
    before = tip_count()
    assert_open311_error(client.post(f"{URL}.json", data=report(api_key)), 403)
    assert tip_count() == before


def test_a_json_body_is_refused_with_a_hint(client, tip_count, api_key):
    before = tip_count()
    response = client.post(f"{URL}.json", json=report(api_key))
    assert "form-encoded" in assert_open311_error(response, 403)
    assert tip_count() == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"description": None}, "description"),
        ({"description": "   "}, "description"),
        ({"description": "长" * 4001}, "description"),
        ({"description": "NUL\x00here"}, "description"),
        ({"service_code": None}, "service_code"),
        ({"service_code": "no_such_service"}, "service_code"),
        ({"service_code": "Traffic!"}, "service_code"),
        ({"long": None}, "long"),
        ({"lat": None}, "lat"),
        ({"lat": None, "long": None}, "lat/long"),
        ({"lat": "91"}, "lat"),
        ({"long": "abc"}, "long"),
        ({"lat": "nan"}, "lat"),
        ({"address_string": "路" * 301}, "address_string"),
        ({"lat": "0", "long": "0"}, "lat/long"),  # far outside the area we serve
    ],
)
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_invalid_reports_are_a_400_naming_the_field(
    client, tip_count, api_key, overrides, field, fmt
):
    before = tip_count()
    response = client.post(f"{URL}.{fmt}", data=report(api_key, **overrides))
    assert assert_open311_error(response, 400, fmt).startswith(field)
    assert tip_count() == before


def test_a_retired_category_cannot_be_reported(client, session, tip_count, api_key):
    session.get(TipCategory, "traffic").active = False
    session.commit()
    before = tip_count()
    response = client.post(f"{URL}.json", data=report(api_key, service_code="traffic"))
    assert "service_code" in assert_open311_error(response, 400)
    assert tip_count() == before


def test_each_client_app_is_rate_limited_on_its_own(client, app, session, api_key, monkeypatch):
    monkeypatch.setitem(app.config, "OPEN311_RATE_LIMIT", "2 per minute")
    for _ in range(2):
        assert client.post(f"{URL}.json", data=report(api_key)).status_code == 200
    for fmt in ("json", "xml"):
        response = client.post(f"{URL}.{fmt}", data=report(api_key))
        assert_open311_error(response, 429, fmt)
        assert int(response.headers["Retry-After"]) > 0
    _other, other_key = open311.add_client(session, f"other-{uuid.uuid4().hex[:8]}")
    session.commit()
    assert client.post(f"{URL}.json", data=report(other_key)).status_code == 200
    assert client.get(f"{URL}.json").status_code == 200  # reads are not counted
