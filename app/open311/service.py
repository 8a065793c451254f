"""Open311 GeoReport v2 over our tips: what comes in, what goes out, and the client apps.

In: a report from a client app holding an `api_key` becomes an **anonymous** tip. Whatever the
app says about its user (email, names, phone, device or account id) is dropped: our tips have no
free-text contact fields, and a named tip needs a Qunfang account.

Out: `GET requests` is world-readable, so it shows only tips of `PUBLIC_CATEGORIES`, never merged
ones, with positions coarsened to about 100 m, a fixed sentence per status, as `description`
only the summary staff approved (never the tipster's words), and nothing at all about the
reporter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from app.areas.models import Area
from app.core.errors import Conflict, DomainError, Forbidden, NotFound
from app.core.i18n import _
from app.open311.models import ApiClient
from app.tips import service as tips_service
from app.tips.models import OPEN_STATUSES, PUBLIC_CATEGORIES, Tip, TipCategory

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When what clients see of this interface last changed (discovery's `changeset`): bump it then.
CHANGESET = "2026-12-02T00:00:00Z"
CONTACT = "Qunfang operators: the staff of the district's public-security volunteer network."
KEY_SERVICE = (
    "api_key values are issued to client apps by the operators (`flask open311 add-client`); "
    "reading needs no key."
)

# Which categories are published: app/tips/models.py explains the choice.
PUBLIC_GROUP = "城市管理"  # city management
CONFIDENTIAL_GROUP = "治安线索"  # public-security clues

# What a client app may tell us about its user, and we never keep.
CONTACT_FIELDS = ("email", "first_name", "last_name", "phone", "device_id", "account_id")
# GeoReport v2: a query spans at most 90 days (the last 90 by default) and 1000 requests.
MAX_SPAN = dt.timedelta(days=90)
MAX_RESULTS = 1000
PUBLIC_STATUS_NOTES = {
    "submitted": None,
    "triaged": "已受理 (accepted)",
    "assigned": "已派单处理 (assigned)",
    "in_progress": "正在处理 (in progress)",
    "resolved": "已处理完毕 (resolved)",
    "rejected": "经核实不予处理 (not actionable)",
    "referred_to_police": "已移交相关部门 (referred)",
}
# 3 decimals of a degree: 111 m of latitude, 85 m of longitude in Beijing.
COORDINATE_DECIMALS = 3
_SERVICE_CODE = re.compile(r"[a-z][a-z0-9_]{1,39}")


class BadRequest(DomainError):
    """A field of the request is wrong; Open311 answers 400 and names the field."""

    status = 400


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _timestamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- client apps ---------------------------------------------------------------------------------


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def add_client(session: Session, name: str) -> tuple[ApiClient, str]:
    """Register a client app; returns it and its api_key, which is kept nowhere (only a SHA-256
    of it is stored): whoever registers the app must pass the key on now."""
    name = name.strip()
    if not name or len(name) > 100:
        raise BadRequest(_("A client's name is 1 to 100 characters."))
    if session.scalar(select(ApiClient.id).where(ApiClient.name == name)) is not None:
        raise Conflict(_("A client named %(name)r exists.", name=name))
    key = secrets.token_urlsafe(32)
    client = ApiClient(name=name, key_digest=key_digest(key), active=True)
    session.add(client)
    session.flush()
    return client, key


def disable_client(session: Session, name: str) -> ApiClient:
    """The client's key stops working (for good: register the app again for a new key)."""
    client = session.scalar(select(ApiClient).where(ApiClient.name == name.strip()))
    if client is None:
        raise NotFound(_("No client named %(name)r.", name=name))
    client.active = False
    session.flush()
    return client


def client_for_key(session: Session, key: str | None) -> ApiClient:
    """The active client app holding `key`; 403 for a missing, unknown or disabled key."""
    if not key:
        raise Forbidden(
            _(
                "api_key is required: send it with the other fields, form-encoded "
                "(application/x-www-form-urlencoded or multipart/form-data)."
            )
        )
    client = session.scalar(
        select(ApiClient).where(ApiClient.key_digest == key_digest(key), ApiClient.active)
    )
    if client is None:
        raise Forbidden(_("api_key is not valid."))
    return client


# -- discovery and services ----------------------------------------------------------------------


def discovery(url: str) -> dict[str, Any]:
    """The discovery document of the one endpoint we serve, at `url` (…/open311/v2)."""
    return {
        "changeset": CHANGESET,
        "contact": CONTACT,
        "key_service": KEY_SERVICE,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


def _service(category: TipCategory) -> dict[str, Any]:
    public = category.code in PUBLIC_CATEGORIES
    description = category.description or category.name_en
    if not public:
        description += " (confidential: reports of this kind are not published)"
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": description,
        "metadata": False,
        "type": "realtime",
        "keywords": category.name_en,
        "group": PUBLIC_GROUP if public else CONFIDENTIAL_GROUP,
    }


def services(session: Session) -> list[dict[str, Any]]:
    """Our active tip categories, in display order."""
    return [_service(category) for category in tips_service.categories(session)]


def _active_category(session: Session, code: str) -> TipCategory | None:
    if not _SERVICE_CODE.fullmatch(code):
        return None
    category = session.get(TipCategory, code)
    return category if category is not None and category.active else None


def service_definition(session: Session, code: str) -> dict[str, Any]:
    """No service has attributes beyond the standard fields (hence `metadata: false`)."""
    if _active_category(session, code) is None:
        raise NotFound(_("No such service_code; see services.json."))
    return {"service_code": code, "attributes": []}


# -- submitting ----------------------------------------------------------------------------------


def submit(
    session: Session,
    values: Mapping[str, Any],
    *,
    contact_sent: bool = False,
    media_sent: bool = False,
) -> dict[str, Any]:
    """File a report as an anonymous tip. `values`: service_code, description, and lat + long
    (WGS-84) and/or address_string. Returns the answer for the client app."""
    category = _active_category(session, values["service_code"])
    if category is None:
        raise BadRequest(_("service_code: no such service; see services.json."))
    location = None
    if values.get("lat") is not None:
        location = {"lon": values["long"], "lat": values["lat"], "accuracy_m": None}
    tip = tips_service.submit(
        session,
        None,
        {
            "category": category.code,
            "description": values["description"],
            "location": location,
            "address_text": values.get("address_string"),
        },
    )
    if tip.district_id is None:
        raise BadRequest(_("lat/long: the place is outside the area this service covers."))
    notices = ["Filed as an anonymous report for the district's staff."]
    if category.code not in PUBLIC_CATEGORIES:
        notices.append("Reports of this kind are confidential: GET requests does not list them.")
    if contact_sent:
        notices.append(
            "Contact details (email, names, phone, device and account ids) were not kept: "
            "reports sent through Open311 are anonymous."
        )
    if media_sent:
        notices.append("media_url was ignored: this service does not fetch remote files.")
    return {
        "service_request_id": str(tip.id),
        "service_notice": " ".join(notices),
        "account_id": None,
    }


# -- reading -------------------------------------------------------------------------------------


def window(
    start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """The creation-time window of a query: at most 90 days; the last 90 when neither bound is
    given, 90 days from or up to the one that is."""
    try:
        if start is None and end is None:
            end = now or _now()
        if start is None:
            start = end - MAX_SPAN
        elif end is None:
            end = start + MAX_SPAN
    except OverflowError as exc:
        raise BadRequest(_("start_date/end_date: out of range.")) from exc
    if end < start:
        raise BadRequest(_("end_date: before start_date."))
    if end - start > MAX_SPAN:
        raise BadRequest(_("start_date/end_date: a query may not span more than 90 days."))
    return start, end


def _public_query() -> Select:
    district = aliased(Area)
    return (
        select(
            Tip.id,
            Tip.status,
            Tip.category_code,
            TipCategory.name.label("service_name"),
            Tip.public_summary,
            Tip.created_at,
            Tip.status_changed_at,
            func.ST_X(Tip.geom).label("lon"),
            func.ST_Y(Tip.geom).label("lat"),
            district.name.label("agency"),
        )
        .join(TipCategory, TipCategory.code == Tip.category_code)
        .outerjoin(district, district.id == Tip.district_id)
        .where(Tip.category_code.in_(PUBLIC_CATEGORIES), Tip.status != "merged")
    )


def _coarse(degrees: float | None) -> float | None:
    return None if degrees is None else round(degrees, COORDINATE_DECIMALS)


def _public_request(row: Any) -> dict[str, Any]:
    return {
        "service_request_id": str(row.id),
        "status": "open" if row.status in OPEN_STATUSES else "closed",
        # Staff notes are written to the reporter (they may name them): the world gets a fixed
        # sentence per status.
        "status_notes": PUBLIC_STATUS_NOTES.get(row.status),
        "service_name": row.service_name,
        "service_code": row.category_code,
        # The tipster's own words are never published, anonymous tip or not: only a summary
        # staff approved (PUT /api/v1/tips/{id}/public-summary), else nothing.
        "description": row.public_summary,
        "agency_responsible": row.agency,
        "service_notice": None,
        "requested_datetime": _timestamp(row.created_at),
        "updated_datetime": _timestamp(row.status_changed_at),
        "expected_datetime": None,
        # The address text is the reporter's own words (often their door): not published.
        "address": None,
        "address_id": None,
        "zipcode": None,
        "lat": _coarse(row.lat),
        "long": _coarse(row.lon),
        "media_url": None,
    }


def _uuids(values: Collection[str]) -> list[uuid.UUID]:
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue  # no request has this id
    return ids


def public_requests(
    session: Session,
    *,
    ids: Collection[str] | None = None,
    service_codes: Collection[str] | None = None,
    statuses: Collection[str] | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Published requests, newest first, at most 1000. `ids` (request ids) overrides the other
    filters, as the specification says; otherwise the creation time lies in `window(start,
    end)`, and `service_codes` and `statuses` (open, closed) narrow it."""
    query = _public_query()
    if ids is not None:
        query = query.where(Tip.id.in_(_uuids(ids)[:MAX_RESULTS]))
    else:
        start, end = window(start, end)
        query = query.where(Tip.created_at >= start, Tip.created_at <= end)
        if service_codes is not None:
            query = query.where(Tip.category_code.in_(PUBLIC_CATEGORIES & set(service_codes)))
        if statuses and set(statuses) != {"open", "closed"}:
            in_open = Tip.status.in_(OPEN_STATUSES)
            query = query.where(in_open if "open" in statuses else ~in_open)
    rows = session.execute(
        query.order_by(Tip.created_at.desc(), Tip.id.desc()).limit(MAX_RESULTS)
    ).all()
    return [_public_request(row) for row in rows]


def public_request(session: Session, request_id: str) -> dict[str, Any]:
    """One published request; unknown, unpublished and malformed ids are the same 404."""
    ids = _uuids([request_id])
    row = session.execute(_public_query().where(Tip.id == ids[0])).one_or_none() if ids else None
    if row is None:
        raise NotFound(_("No such service request."))
    return _public_request(row)


def token(session: Session, token_id: str) -> dict[str, Any]:
    """Requests get their id at once, so a token is the request id it stands for."""
    request = public_request(session, token_id)
    return {"service_request_id": request["service_request_id"], "token": token_id}
