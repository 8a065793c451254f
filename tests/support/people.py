"""Users, sessions and tokens, written with SQL as the models write them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any
from urllib.request import Request, urlopen

import sqlalchemy as sa

from app.core import field_crypto


def insert_user(conn: sa.Connection, *, phone: str, name: str, **columns: Any) -> None:
    """INSERT INTO users the `columns` (id, roles, status, ...), the phone and name encrypted."""
    keyring = field_crypto.installed()
    values = {
        "password_hash": "x",
        **columns,
        "phone_ciphertext": keyring.encrypt(phone),
        "phone_hmac": keyring.lookup(phone),
        "real_name_ciphertext": keyring.encrypt(name),
    }
    conn.execute(sa.insert(sa.table("users", *(sa.column(k) for k in values))), values)


def encrypted_identities(prefix: str, count: int, name: str) -> dict[str, list[bytes]]:
    """Phones `prefix` + 8 digits (1..count) and names `name` + n as the model stores them, as
    arrays for one INSERT ... SELECT to take the n-th of (`(CAST(:phone_ct AS bytea[]))[n]`).
    Needs the application's keyring installed (inside its app context)."""
    keyring = field_crypto.installed()
    phones = [f"{prefix}{n:08d}" for n in range(1, count + 1)]
    return {
        "phone_ct": [keyring.encrypt(p) for p in phones],
        "phone_hmac": [keyring.lookup(p) for p in phones],
        "name_ct": [keyring.encrypt(f"{name}{n}") for n in range(1, count + 1)],
    }


def signed_in(
    conn: sa.Connection, app: Any, user_id: Any, expires: dt.timedelta | None = None
) -> str:
    """A login session of `user_id` (committed with `conn`) and an access token naming it;
    `expires` outlives the configured lifetime for a long benchmark."""
    from flask_jwt_extended import create_access_token

    session_id = uuid.uuid4()
    conn.execute(
        sa.text("INSERT INTO auth_sessions (id, user_id, created_at) VALUES (:s, :u, now())"),
        {"s": session_id, "u": user_id},
    )
    with app.app_context():
        return create_access_token(
            identity=str(user_id),
            additional_claims={"sid": str(session_id)},
            **({"expires_delta": expires} if expires is not None else {}),
        )


def add_staff(
    conn: sa.Connection, *, phone: str, name: str, roles: list[str], area_codes: list[str]
) -> uuid.UUID:
    """A staff account whose jurisdiction is the areas of `area_codes`; its id."""
    user_id = uuid.uuid4()
    insert_user(conn, phone=phone, name=name, id=user_id, roles=roles, status="active")
    conn.execute(
        sa.text(
            "INSERT INTO user_areas (user_id, area_id) "
            "SELECT :u, id FROM areas WHERE code = ANY(:codes)"
        ),
        {"u": user_id, "codes": area_codes},
    )
    return user_id


def add_volunteer(conn: sa.Connection, *, phone: str, name: str, home_code: str) -> uuid.UUID:
    """An active volunteer living in the community of `home_code`; its id."""
    user_id = uuid.uuid4()
    home = conn.execute(
        sa.text("SELECT id FROM areas WHERE code = :c"), {"c": home_code}
    ).scalar_one()
    insert_user(
        conn,
        phone=phone,
        name=name,
        id=user_id,
        roles=["volunteer"],
        status="active",
        home_community_id=home,
    )
    return user_id


def bearer(app: Any, user_id: Any) -> dict[str, str]:
    """Authorization headers of `user_id` with a new session, committed."""
    from app.extensions import db

    with app.app_context():
        token = signed_in(db.session.connection(), app, user_id)
        db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def bearer_for_phone(app: Any, phone: str) -> dict[str, str]:
    """Authorization headers of the existing account of `phone` (a demo account), with a new
    session committed: a caller without a password round trip."""
    from app.auth.models import phone_lookup
    from app.extensions import db

    with app.app_context():
        user_id = db.session.execute(
            sa.text("SELECT id FROM users WHERE phone_hmac = :h"), {"h": phone_lookup(phone)}
        ).scalar_one()
    return bearer(app, user_id)


def login(base: str, phone: str, password: str | None = None) -> str:
    """An access token from `POST /api/v1/auth/login` of the server at `base` (the demo
    password unless `password`)."""
    from app.demo import DEMO_PASSWORD

    body = json.dumps({"phone": phone, "password": password or DEMO_PASSWORD}).encode()
    headers = {"Content-Type": "application/json"}
    request = Request(f"{base}/api/v1/auth/login", data=body, headers=headers)  # noqa: S310
    with urlopen(request, timeout=30) as response:  # noqa: S310 - a server of the caller's
        return json.loads(response.read())["access_token"]


_ON_DUTY_SQL = """
WITH spot AS MATERIALIZED (
    SELECT row_number() OVER () AS n, geom FROM (
        SELECT ST_SetSRID(ST_MakePoint(:lon + (random() - 0.5) * :dlon,
                                       :lat + (random() - 0.5) * :dlat), 4326) AS geom
        FROM generate_series(1, 2 * :count)) candidate
    WHERE EXISTS (  -- inside the district: radius tasks reach their creator's areas only
        SELECT 1 FROM area_pieces pc JOIN areas a ON a.id = pc.area_id
        WHERE a.code = :district AND ST_Intersects(pc.geom, candidate.geom))
    LIMIT :count
), made AS (
    INSERT INTO users (id, phone_ciphertext, phone_hmac, real_name_ciphertext,
                       password_hash, roles, status, location_sharing, home_community_id)
    SELECT gen_random_uuid(), (CAST(:phone_ct AS bytea[]))[n],
           (CAST(:phone_hmac AS bytea[]))[n], (CAST(:name_ct AS bytea[]))[n], 'x',
           ARRAY['volunteer'], 'active', true,
           (SELECT id FROM areas WHERE code = :home)
    FROM spot
    RETURNING id, phone_hmac
), duty AS (
    INSERT INTO duty_status (user_id, geom, position_at)
    SELECT made.id, spot.geom, now()
    FROM made JOIN spot ON made.phone_hmac = (CAST(:phone_hmac AS bytea[]))[spot.n]
)
INSERT INTO devices (id, user_id, token, platform, app_version)
SELECT gen_random_uuid(), id, 'bench-' || id, 'android', 'bench' FROM made
"""


def fill_on_duty_volunteers(
    conn: sa.Connection,
    count: int,
    *,
    near: tuple[float, float],
    district_code: str,
    home_code: str,
    phone_prefix: str = "155",
    spread: tuple[float, float] = (0.02, 0.015),
) -> None:
    """`count` on-duty volunteers with consent to location sharing, a fresh position within
    `spread` degrees (lon, lat) of `near` and inside the district, and an Android phone;
    one INSERT ... SELECT. Needs the application's keyring installed."""
    conn.execute(
        sa.text(_ON_DUTY_SQL),
        {
            "count": count,
            "lon": near[0],
            "lat": near[1],
            "dlon": spread[0],
            "dlat": spread[1],
            "district": district_code,
            "home": home_code,
            **encrypted_identities(phone_prefix, count, "压测志愿者"),
        },
    )
