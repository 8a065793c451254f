"""Open311 reads: discovery, services, service definitions, published requests and tokens."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from app.open311 import service as open311
from app.tips import service as tips
from app.tips.models import TipCategory
from tests.open311.conftest import (
    as_text,
    assert_open311_error,
    parse_xml,
    schema_errors,
    xml_items,
)

BASE = "/open311/v2"
NOW = dt.datetime.now(dt.UTC)
HOUR = dt.timedelta(hours=1)


def requests_of(client, **query) -> list[dict]:
    response = client.get(f"{BASE}/requests.json", query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert schema_errors("requests.json", response.get_json()) == []
    return response.get_json()


def ids_of(client, **query) -> list[str]:
    return [item["service_request_id"] for item in requests_of(client, **query)]


def decimals(value) -> int:
    text = repr(value)
    return len(text.partition(".")[2])


@pytest.fixture
def staff(create_user):
    return create_user(roles=["grid_staff"], jurisdiction=["110105001024"])


# -- discovery -----------------------------------------------------------------------------------


def test_discovery_describes_this_endpoint_in_both_formats(client):
    body = client.get(f"{BASE}/discovery.json").get_json()
    assert set(body) == {"changeset", "contact", "key_service", "endpoints"}
    assert dt.datetime.fromisoformat(body["changeset"])
    (endpoint,) = body["endpoints"]
    assert endpoint == {
        "specification": "http://wiki.open311.org/GeoReport_v2",
        "url": "http://localhost/open311/v2",
        "changeset": body["changeset"],
        "type": "production",
        "formats": ["text/xml", "application/json"],
    }

    response = client.get(f"{BASE}/discovery.xml")
    assert response.mimetype == "text/xml"
    root = parse_xml(response.data)
    assert root.tag == "discovery"
    assert root.findtext("changeset") == body["changeset"]
    assert root.findtext("contact") == body["contact"]
    assert root.findtext("key_service") == body["key_service"]
    (xml_endpoint,) = root.find("endpoints")
    assert xml_endpoint.tag == "endpoint"
    assert xml_endpoint.findtext("url") == endpoint["url"]
    assert xml_endpoint.findtext("specification") == endpoint["specification"]
    assert xml_endpoint.findtext("type") == "production"
    assert [f.text for f in xml_endpoint.find("formats")] == endpoint["formats"]
    assert [f.tag for f in xml_endpoint.find("formats")] == ["format", "format"]


# -- services ------------------------------------------------------------------------------------


def test_services_are_the_active_categories_and_conform(client, session):
    session.get(TipCategory, "fraud").active = False
    session.commit()
    active = session.scalars(
        select(TipCategory).where(TipCategory.active).order_by(TipCategory.sort_order)
    ).all()

    response = client.get(f"{BASE}/services.json")
    assert response.mimetype == "application/json"
    services = response.get_json()
    assert schema_errors("services.json", services) == []
    assert [s["service_code"] for s in services] == [c.code for c in active]
    assert "fraud" not in [s["service_code"] for s in services]
    by_code = {s["service_code"]: s for s in services}
    assert by_code["environment_sanitation"] == {
        "service_code": "environment_sanitation",
        "service_name": "环境卫生",
        "description": "Environment and sanitation",
        "metadata": False,
        "type": "realtime",
        "keywords": "Environment and sanitation",
        "group": open311.PUBLIC_GROUP,
    }
    assert by_code["theft"]["group"] == open311.CONFIDENTIAL_GROUP
    assert "not published" in by_code["theft"]["description"]


def test_services_xml_carries_the_same_values(client):
    services = client.get(f"{BASE}/services.json").get_json()
    response = client.get(f"{BASE}/services.xml")
    assert response.mimetype == "text/xml"
    items = xml_items(response.data, "services", "service")
    assert items == [{key: as_text(value) for key, value in s.items()} for s in services]


def test_a_service_definition_conforms_and_unknown_codes_are_404(client, session):
    response = client.get(f"{BASE}/services/traffic.json")
    assert response.status_code == 200
    assert response.get_json() == {"service_code": "traffic", "attributes": []}
    assert schema_errors("service-definition.json", response.get_json()) == []

    xml = parse_xml(client.get(f"{BASE}/services/traffic.xml").data)
    assert xml.tag == "service_definition"
    assert xml.findtext("service_code") == "traffic"
    assert list(xml.find("attributes")) == []

    session.get(TipCategory, "fraud").active = False
    session.commit()
    for code in ("no_such_code", "fraud", "Bad%00Code"):
        assert_open311_error(client.get(f"{BASE}/services/{code}.json"), 404)
    assert_open311_error(client.get(f"{BASE}/services/no_such_code.xml"), 404, "xml")


# -- published requests --------------------------------------------------------------------------


def test_requests_conform_and_carry_only_public_fields(client, make_tip):
    tip = make_tip(address_text="建外街道南郎家园12号楼")
    (item,) = [r for r in requests_of(client) if r["service_request_id"] == str(tip.id)]
    assert item["status"] == "open"
    assert item["service_code"] == "environment_sanitation"
    assert item["service_name"] == "环境卫生"
    assert item["description"] is None  # the tipster's words: only a staff summary is shown
    assert item["address"] is None  # the reporter's own words (often their door): never shown
    assert item["agency_responsible"] == "朝阳区"
    assert item["status_notes"] is None
    assert item["media_url"] is None
    requested = dt.datetime.fromisoformat(item["requested_datetime"])
    assert requested == tip.created_at.replace(microsecond=0)
    updated = dt.datetime.fromisoformat(item["updated_datetime"])
    assert updated == tip.status_changed_at.replace(microsecond=0)


def test_requests_carry_nothing_about_the_reporter(client, make_tip, create_user):
    reporter = create_user(roles=["volunteer"])
    tip = make_tip(reporter=reporter)
    response = client.get(f"{BASE}/requests/{tip.id}.json")
    (item,) = response.get_json()
    assert set(item) == {
        "service_request_id",
        "status",
        "status_notes",
        "service_name",
        "service_code",
        "description",
        "agency_responsible",
        "service_notice",
        "requested_datetime",
        "updated_datetime",
        "expected_datetime",
        "address",
        "address_id",
        "zipcode",
        "lat",
        "long",
        "media_url",
    }
    for secret in (str(reporter.id), reporter.phone, reporter.real_name, tip.code):
        assert secret not in response.get_data(as_text=True)
        assert secret not in client.get(f"{BASE}/requests/{tip.id}.xml").get_data(as_text=True)


def test_coordinates_are_coarsened_to_about_100_m(client, make_tip, stored_position):
    tip = make_tip()
    lon, lat = stored_position(tip.id)
    (item,) = client.get(f"{BASE}/requests/{tip.id}.json").get_json()
    assert abs(item["lat"] - lat) < 0.0006
    assert abs(item["long"] - lon) < 0.0006
    assert decimals(item["lat"]) <= 3
    assert decimals(item["long"]) <= 3
    (xml_item,) = xml_items(
        client.get(f"{BASE}/requests/{tip.id}.xml").data, "service_requests", "request"
    )
    assert xml_item["lat"] == str(item["lat"])
    assert xml_item["long"] == str(item["long"])


def test_a_tip_with_only_an_address_has_no_coordinates(client, make_tip):
    tip = make_tip(at=None, address_text="朝阳区建外街道")
    (item,) = client.get(f"{BASE}/requests/{tip.id}.json").get_json()
    assert item["lat"] is None
    assert item["long"] is None
    assert schema_errors("requests.json", [item]) == []


@pytest.mark.parametrize(
    "category",
    ["suspicious_person_vehicle", "theft", "drugs", "fraud", "neighbour_dispute", "other"],
)
def test_tips_of_sensitive_categories_are_never_published(client, make_tip, category):
    hidden = make_tip(category=category, description="敏感线索")
    shown = make_tip()
    listed = ids_of(client)
    assert str(shown.id) in listed
    assert str(hidden.id) not in listed
    assert ids_of(client, service_request_id=f"{hidden.id},{shown.id}") == [str(shown.id)]
    assert ids_of(client, service_code=category) == []
    for fmt in ("json", "xml"):
        assert_open311_error(client.get(f"{BASE}/requests/{hidden.id}.{fmt}"), 404, fmt)
        assert_open311_error(client.get(f"{BASE}/tokens/{hidden.id}.{fmt}"), 404, fmt)
    assert "敏感线索" not in client.get(f"{BASE}/requests.xml").get_data(as_text=True)


def test_public_categories_are_those_of_places_and_things():
    assert {
        "environment_sanitation",
        "traffic",
        "illegal_construction",
        "fire_hazard",
    } == open311.PUBLIC_CATEGORIES


@pytest.mark.parametrize(
    ("status", "open311_status"),
    [
        ("submitted", "open"),
        ("triaged", "open"),
        ("assigned", "open"),
        ("in_progress", "open"),
        ("resolved", "closed"),
        ("rejected", "closed"),
        ("referred_to_police", "closed"),
    ],
)
def test_statuses_map_to_open_and_closed(client, make_tip, status, open311_status):
    tip = make_tip(status=status)
    (item,) = client.get(f"{BASE}/requests/{tip.id}.json").get_json()
    assert item["status"] == open311_status
    other = "closed" if open311_status == "open" else "open"
    assert str(tip.id) in ids_of(client, status=open311_status)
    assert str(tip.id) not in ids_of(client, status=other)
    assert str(tip.id) in ids_of(client, status="open,closed")
    assert str(tip.id) in ids_of(client, status=",")


def test_merged_tips_are_not_published(client, make_tip, staff, session):
    target = make_tip()
    merged = make_tip()
    tips.merge(session, staff, merged, target.id)
    session.commit()
    assert str(merged.id) not in ids_of(client)
    assert str(target.id) in ids_of(client)
    assert_open311_error(client.get(f"{BASE}/requests/{merged.id}.json"), 404)


def test_status_notes_are_fixed_sentences_never_staff_or_reporter_text(
    client, make_tip, staff, session
):
    tip = make_tip()
    tips.transition(session, staff, tip, "triaged", note="王先生您好，已通知物业清运", public=True)
    tips.add_note(session, staff, tip, "内部：物业经理电话 13900000000", public=False)
    tips.add_information(session, tip, "我住在3单元502，电话13811112222", [], None)
    session.commit()
    (item,) = client.get(f"{BASE}/requests/{tip.id}.json").get_json()
    assert item["status_notes"] == open311.PUBLIC_STATUS_NOTES["triaged"]
    tips.transition(session, staff, tip, "resolved", note="已清理完毕", public=True)
    session.commit()
    (item,) = client.get(f"{BASE}/requests/{tip.id}.json").get_json()
    assert item["status"] == "closed"
    assert item["status_notes"] == open311.PUBLIC_STATUS_NOTES["resolved"]
    xml = client.get(f"{BASE}/requests/{tip.id}.xml").data.decode()
    json_text = client.get(f"{BASE}/requests/{tip.id}.json").get_data(as_text=True)
    for private in ("王先生", "13900000000", "13811112222", "已清理完毕"):
        assert private not in xml and private not in json_text.encode().decode("unicode_escape")


def test_requests_filter_by_service_code(client, make_tip):
    traffic = make_tip(category="traffic")
    sanitation = make_tip()
    assert ids_of(client, service_code="traffic") == [str(traffic.id)]
    assert set(ids_of(client, service_code="traffic,environment_sanitation")) == {
        str(traffic.id),
        str(sanitation.id),
    }
    assert ids_of(client, service_code="no_such_code") == []


def test_requests_filter_by_creation_time(client, make_tip):
    old = make_tip(created_at=NOW - dt.timedelta(days=120))
    recent = make_tip(created_at=NOW - dt.timedelta(days=10))
    newest = make_tip(created_at=NOW - dt.timedelta(hours=1))

    by_default = ids_of(client)
    assert str(recent.id) in by_default
    assert str(newest.id) in by_default
    assert str(old.id) not in by_default  # the last 90 days

    window = {
        "start_date": (NOW - dt.timedelta(days=130)).isoformat(),
        "end_date": (NOW - dt.timedelta(days=100)).isoformat(),
    }
    assert ids_of(client, **window) == [str(old.id)]
    assert ids_of(client, start_date=(NOW - dt.timedelta(days=11)).isoformat()) == [
        str(newest.id),
        str(recent.id),
    ]
    end = (NOW - dt.timedelta(days=5)).astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert ids_of(client, end_date=end.isoformat()) == [str(recent.id)]
    # Without an offset, a time is UTC.
    naive_end = (NOW - dt.timedelta(days=5)).replace(tzinfo=None).isoformat()
    assert ids_of(client, end_date=naive_end) == [str(recent.id)]


def test_requests_newest_first_and_capped(client, make_tip, monkeypatch):
    monkeypatch.setattr(open311, "MAX_RESULTS", 2)
    made = [make_tip(created_at=NOW - dt.timedelta(minutes=m)) for m in (30, 20, 10)]
    assert ids_of(client) == [str(made[2].id), str(made[1].id)]


def test_request_ids_override_the_other_filters(client, make_tip):
    old_closed = make_tip(status="resolved", created_at=NOW - dt.timedelta(days=400))
    recent = make_tip(category="traffic")
    query = {
        "service_request_id": f"{old_closed.id},not-a-uuid,{uuid.uuid4()},{recent.id}",
        "status": "open",
        "service_code": "traffic",
    }
    assert set(ids_of(client, **query)) == {str(old_closed.id), str(recent.id)}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "pending"}, "status"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2026-13-01"}, "end_date"),
        ({"start_date": "2026-01-01", "end_date": "2026-06-01"}, "90 days"),
        ({"start_date": "2026-06-01", "end_date": "2026-05-01"}, "end_date"),
        ({"start_date": "9999-12-31T00:00:00"}, "start_date"),
    ],
)
def test_bad_filters_are_a_400_naming_the_field(client, query, field):
    for fmt in ("json", "xml"):
        response = client.get(f"{BASE}/requests.{fmt}", query_string=query)
        assert field in assert_open311_error(response, 400, fmt)


def test_one_request_is_a_one_element_list_in_both_formats(client, make_tip, staff, session):
    tip = make_tip(address_text="东大桥路")
    tips.transition(session, staff, tip, "triaged", note="已派单 <城管> & 物业", public=True)
    session.commit()
    response = client.get(f"{BASE}/requests/{tip.id}.json")
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert schema_errors("requests.json", body) == []
    assert len(body) == 1
    assert schema_errors("request.json", body[0]) == []

    response = client.get(f"{BASE}/requests/{tip.id}.xml")
    assert response.mimetype == "text/xml"
    (xml_item,) = xml_items(response.data, "service_requests", "request")
    assert xml_item == {key: as_text(value) for key, value in body[0].items()}


def test_unknown_and_malformed_request_ids_are_404(client):
    for request_id in (uuid.uuid4(), "123", "not-a-uuid"):
        assert_open311_error(client.get(f"{BASE}/requests/{request_id}.json"), 404)
        assert_open311_error(client.get(f"{BASE}/requests/{request_id}.xml"), 404, "xml")


def test_xml_lists_carry_the_same_values_as_json(client, session, make_tip, staff):
    summarised = make_tip()
    tips.set_public_summary(session, staff, summarised, "控制字符\x01和 <标签> & 符号")
    session.commit()
    make_tip(category="traffic", at=None, address_text="光华路")
    body = requests_of(client)
    response = client.get(f"{BASE}/requests.xml")
    items = xml_items(response.data, "service_requests", "request")
    expected = [{key: as_text(value) for key, value in item.items()} for item in body]
    for item in expected:  # XML 1.0 cannot carry control characters
        if item["description"] is not None:
            item["description"] = item["description"].replace("\x01", "\ufffd")
    assert items == expected


# -- tokens --------------------------------------------------------------------------------------


def test_a_token_is_the_request_id(client, make_tip):
    tip = make_tip()
    response = client.get(f"{BASE}/tokens/{tip.id}.json")
    assert response.status_code == 200
    assert response.get_json() == [{"service_request_id": str(tip.id), "token": str(tip.id)}]
    response = client.get(f"{BASE}/tokens/{tip.id}.xml")
    assert xml_items(response.data, "service_requests", "request") == [
        {"service_request_id": str(tip.id), "token": str(tip.id)}
    ]
    assert_open311_error(client.get(f"{BASE}/tokens/{uuid.uuid4()}.json"), 404)
    assert_open311_error(client.get(f"{BASE}/tokens/nonsense.xml"), 404, "xml")
