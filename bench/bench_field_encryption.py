"""Encrypted phones and names (#21 item 6): sign-in and the staff user list, with the fields
encrypted vs the same code storing them in clear.

Two throw-away databases of the dev cluster's server (made and dropped here), each migrated with
the demo data and filled through the model with `USERS` volunteers in one community: one by the
real keyring (AES-256-GCM, HMAC-SHA256 lookups), one by a keyring that keeps the text as it is
in the same envelope format (no cipher, no HMAC: the lookup digest is the phone's bytes). The
same application code answers both, in process through Flask's test client (no HTTP server: the
figure is the application's own work), rounds interleaved:

- sign-in: `POST /api/v1/auth/login` of a random filled volunteer (the phone found by its
  keyed hash; argon2 at the configured cost, which dominates);
- staff list: `GET /api/v1/users?page_size=100` as the demo admin, a random page (100 rows, each
  phone and name decrypted).

The figure is the p50 latency (ms) over `BENCH_REQUESTS` requests per side and round; the ratio
is encrypted / clear. No target: the issue asks for the cost, measured.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid

from bench.common import (
    BenchConfig,
    Result,
    bench_app,
    database_url,
    drop_database,
    make_database,
    migrate_and_load_demo,
    percentile,
)
from tests.support.people import bearer_for_phone

USERS = 10_000
PAGE_SIZE = 100
ADMIN_PHONE = "13800000001"


class ClearKeyring:
    """The envelope without the cipher: what storing in clear would cost through the same
    code (the version bytes and a zero nonce kept, so the rows have the same shape)."""

    current = 1

    def encrypt(self, value: str) -> bytes:
        return b"\x01" + (1).to_bytes(4, "big") + bytes(12) + value.encode()

    def decrypt(self, blob: bytes) -> str:
        return blob[17:].decode()

    def lookup(self, value: str) -> bytes:
        return value.encode()


def _requests() -> int:
    import os

    return int(os.environ.get("BENCH_REQUESTS", 200))


def _fill(app, keyring, community_code: str = "110105001024") -> list[str]:
    """`USERS` volunteers through the model (so through the column type); their phones."""
    from argon2 import PasswordHasher

    from app.areas import service as areas
    from app.auth.models import User
    from app.core import field_crypto
    from app.extensions import db

    field_crypto.install(keyring)
    hasher = PasswordHasher(
        time_cost=app.config["ARGON2_TIME_COST"], memory_cost=app.config["ARGON2_MEMORY_KIB"]
    )
    password_hash = hasher.hash("Bench-Password-2026")
    phones = [f"137{n:08d}" for n in range(USERS)]
    with app.app_context():
        home = areas.get_by_code(db.session, community_code).id
        for start in range(0, USERS, 1000):
            db.session.add_all(
                User(
                    id=uuid.uuid4(),
                    phone=phone,
                    password_hash=password_hash,
                    real_name=f"压测用户{start + i}",
                    roles=["volunteer"],
                    volunteer_types=[],
                    skills=[],
                    status="active",
                    home_community_id=home,
                )
                for i, phone in enumerate(phones[start : start + 1000])
            )
            db.session.commit()
    return phones


def _round(app, keyring, phones, headers, count: int) -> tuple[list[float], list[float]]:
    from app.core import field_crypto

    field_crypto.install(keyring)
    client = app.test_client()
    pages = max(1, (USERS + 5) // PAGE_SIZE)
    logins, lists = [], []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.post(
            "/api/v1/auth/login",
            json={"phone": random.choice(phones), "password": "Bench-Password-2026"},
        )
        logins.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.get_json()
        started = time.perf_counter()
        answer = client.get(
            "/api/v1/users",
            query_string={"page_size": PAGE_SIZE, "page": random.randint(1, pages)},
            headers=headers,
        )
        lists.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.get_json()
    return logins, lists


def run(config: BenchConfig) -> list[Result]:
    from app.core import field_crypto
    from app.extensions import limiter

    base = database_url()
    urls = {"encrypted": make_database(base), "clear": make_database(base)}
    try:
        apps, keyrings, phones, headers = {}, {}, {}, {}
        for side, url in urls.items():
            app = bench_app(url)
            keyrings[side] = field_crypto.installed() if side == "encrypted" else ClearKeyring()
            field_crypto.install(keyrings[side])
            migrate_and_load_demo(app)
            phones[side] = _fill(app, keyrings[side])
            headers[side] = bearer_for_phone(app, ADMIN_PHONE)
            apps[side] = app
        # Hundreds of sign-ins a minute from one client are the point here (init_app set it).
        limiter.enabled = False
        count = _requests()
        p50 = {(side, what): [] for side in urls for what in ("login", "list")}
        p99 = {(side, what): [] for side in urls for what in ("login", "list")}
        for _ in range(config.rounds):
            for side in urls:
                logins, lists = _round(
                    apps[side], keyrings[side], phones[side], headers[side], count
                )
                for what, values in (("login", logins), ("list", lists)):
                    p50[side, what].append(round(statistics.median(values), 2))
                    p99[side, what].append(round(percentile(values, 0.99), 2))
        field_crypto.install(keyrings["encrypted"])
        return [
            Result(
                name=f"{title}: p50 latency, encrypted vs clear ({count} requests a round)",
                unit="ms",
                project=p50["encrypted", what],
                reference=p50["clear", what],
                project_command=command,
                reference_command=command + " (fields kept in clear)",
                notes={
                    "p99 encrypted": p99["encrypted", what],
                    "p99 clear": p99["clear", what],
                    "users": USERS,
                },
                higher_is_better=False,
                key=f"field_encryption.{what}",
            )
            for what, title, command in (
                ("login", "sign-in", "POST /api/v1/auth/login (test client)"),
                ("list", "staff list", f"GET /api/v1/users?page_size={PAGE_SIZE} (test client)"),
            )
        ]
    finally:
        for url in urls.values():
            drop_database(url)
