"""Console triage queue: a filter change answered among 1,000,000 tips, /console/tips.json vs SQL.

Runs on a throw-away database of the dev cluster's server (made and dropped here), migrated and
loaded with the demo data, then filled with bench_tips_list's 1,000,000 tips (a year of them,
evenly over Chaoyang's communities; status by age).

The project side is what the console's queue page asks when someone changes a filter: `GET
/console/tips.json?<filters>` under gunicorn (1 worker), signed in through the console's own form
(session cookie), one sequential client, each request a filter set drawn at random from the
queue form's choices (status, category, priority, period 24h/7d/30d, an area) in two
scenarios: the demo community admin (sub-district 建外, about 1/43 of the tips) and the
administrator (the whole district, all 1,000,000). The reference is the statement the queue sends
to PostgreSQL for the same filters (`staff_query` with `listing_columns()`, first page of 25 and
its total by `count(*) OVER ()`, compiled with literal values), one pgbench script per filter set,
picked at random, one client, per-transaction latencies. Target: the project's p50 under 300 ms
(issue 17), absolute; the ratio says what HTTP, the session and JSON add.
"""

from __future__ import annotations

import datetime as dt
import http.cookiejar
import json
import os
import random
import re
import statistics
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

import sqlalchemy as sa

from bench.common import (
    ROOT,
    BenchConfig,
    Result,
    Target,
    bench_app,
    database_url,
    drop_database,
    gunicorn,
    make_database,
    migrate_and_load_demo,
    percentile,
    pgbench_latencies,
)
from tests.support.tips import TIPS, fill_tips

TARGET_MS = 300
PAGE_SIZE = 25  # the console's page (app/console/views.py)
FILTER_SETS = 40
ACCOUNTS = {"community admin (建外)": "13800000002", "administrator (district)": "13800000001"}
WARM_UP = 50
WORKDIR = ROOT / "bench" / "results"
JIANWAI = "110105001000"


def _filter_sets(app, count: int, seed: int) -> dict[str, list[dict]]:
    """Query strings the queue form makes, per account: a random choice of its fields."""
    from app.areas.models import Area
    from app.extensions import db
    from app.tips.models import PRIORITIES, STATUSES

    with app.app_context():
        categories = list(db.session.scalars(sa.text("SELECT code FROM tip_categories")))
        jianwai = list(
            db.session.scalars(
                sa.select(Area.id).where(Area.code.like("1101050010%"), Area.level == "community")
            )
        )
        subdistricts = list(
            db.session.scalars(sa.select(Area.id).where(Area.level == "subdistrict"))
        )
        db.session.remove()
    rng = random.Random(seed)
    sets: dict[str, list[dict]] = {}
    for name in ACCOUNTS:
        areas = jianwai if JIANWAI in name or "建外" in name else subdistricts
        chosen = []
        for _ in range(count):
            query: dict = {}
            if rng.random() < 0.7:
                query["status"] = rng.sample(
                    ["submitted", "triaged", "assigned"], rng.randint(1, 2)
                )
            elif rng.random() < 0.3:
                query["status"] = [rng.choice(STATUSES)]
            if rng.random() < 0.6:
                query["category"] = rng.sample(categories, rng.randint(1, 2))
            if rng.random() < 0.3:
                query["priority"] = [rng.choice(PRIORITIES)]
            if rng.random() < 0.7:
                query["since"] = rng.choice(["24h", "7d", "30d"])
            if rng.random() < 0.3:
                query["area_id"] = str(rng.choice(areas))
            chosen.append(query)
        sets[name] = chosen
    return sets


def _reference_sql(app, phone: str, queries: list[dict]) -> list[str]:
    """The statement the queue sends for each query string, with literal values."""
    from app.auth.models import User, phone_lookup
    from app.console.views import SINCE
    from app.core.pagination import page_statement
    from app.extensions import db
    from app.tips import service
    from app.tips.schemas import TipListArgsSchema

    scripts = []
    now = dt.datetime.now(dt.UTC)
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.phone_hmac == phone_lookup(phone)))
        dialect = db.engine.dialect
        for query in queries:
            args = {k: v for k, v in query.items() if k != "since"}
            filters = TipListArgsSchema().load(args)
            if "since" in query:
                filters["from_"] = now - SINCE[query["since"]]
            statement = page_statement(
                service.staff_query(user, filters, columns=service.listing_columns()),
                page=1,
                page_size=PAGE_SIZE,
            )
            sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            scripts.append(" ".join(sql.split()) + ";\n")
        db.session.remove()
    return scripts


def _sign_in(base: str, phone: str):
    """An opener holding the console's session cookie, signed in through its form."""
    from app.demo import DEMO_PASSWORD

    opener = build_opener(HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect())
    with opener.open(f"{base}/console/login", timeout=30) as response:
        form = response.read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    body = urlencode({"phone": phone, "password": DEMO_PASSWORD, "csrf_token": token}).encode()
    login = Request(f"{base}/console/login", data=body)  # noqa: S310 - loopback
    try:
        opener.open(login, timeout=30)
    except HTTPError as answer:  # the 303 to the queue, not followed: only the cookie counts
        if answer.code != 303 or "/console/login" in answer.headers.get("Location", ""):
            raise SystemExit(f"console sign-in as {phone} failed ({answer.code})") from answer
    return opener


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *_args, **_kwargs):
        return None


def _console_latencies(opener, base: str, queries: list[dict], requests: int, seed: int):
    rng = random.Random(seed)
    latencies = []
    for i in range(requests + WARM_UP):
        query = rng.choice(queries)
        url = f"{base}/console/tips.json?{urlencode(query, doseq=True)}"
        started = time.perf_counter()
        with opener.open(url, timeout=30) as response:
            body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if i == 0:
            json.loads(body)["items"]
        if i >= WARM_UP:
            latencies.append(elapsed)
    return latencies


def run(config: BenchConfig) -> list[Result]:
    requests = int(os.environ.get("BENCH_REQUESTS", 300))
    bench_url = make_database(database_url())
    WORKDIR.mkdir(exist_ok=True)
    try:
        app = bench_app(bench_url)
        migrate_and_load_demo(app)
        fill_seconds, _vacuum_seconds = fill_tips(app)
        print(f"   filled {TIPS:,} tips in {fill_seconds:.1f} s", flush=True)
        sets = _filter_sets(app, FILTER_SETS, seed=17)
        scripts: dict[str, list[Path]] = {}
        for number, (name, phone) in enumerate(ACCOUNTS.items(), start=1):
            scripts[name] = []
            for index, text in enumerate(_reference_sql(app, phone, sets[name]), start=1):
                path = WORKDIR / f"console-queue-{number}-{index}.sql"
                path.write_text(text)
                scripts[name].append(path)
        project = {name: [] for name in ACCOUNTS}
        reference = {name: [] for name in ACCOUNTS}
        os.environ["DATABASE_URL"] = bench_url
        try:
            with gunicorn(workers=1) as base:
                openers = {name: _sign_in(base, phone) for name, phone in ACCOUNTS.items()}
                for round_no in range(config.rounds):
                    for name in ACCOUNTS:
                        project[name].append(
                            _console_latencies(
                                openers[name], base, sets[name], requests, seed=round_no
                            )
                        )
                        reference[name].append(
                            pgbench_latencies(
                                scripts[name], bench_url, requests, "console_queue", WARM_UP
                            )
                        )
        finally:
            del os.environ["DATABASE_URL"]
    finally:
        drop_database(bench_url)
    notes = {
        "requests per round": requests,
        "tips": f"{TIPS:,}",
        "filter sets": FILTER_SETS,
        "fill s": round(fill_seconds),
    }
    results = []
    for name in ACCOUNTS:
        command_p = (
            f"GET /console/tips.json?<filters> as the {name} (session cookie; gunicorn, 1 worker, "
            f"1 sequential client, {WARM_UP} warm-up requests left out)"
        )
        command_r = (
            f"pgbench -n -c 1 -t {requests + WARM_UP} -f {scripts[name][0]} ... "
            f"({len(scripts[name])} scripts) --log"
        )
        pairs = [
            (statistics.median(p), statistics.median(r))
            for p, r in zip(project[name], reference[name], strict=True)
        ]
        results += [
            Result(
                name=f"console queue among {TIPS:,}, {name}, a filter change: p50 latency",
                unit="ms",
                project=[round(p, 2) for p, _ in pairs],
                reference=[round(r, 2) for _, r in pairs],
                project_command=command_p,
                reference_command=command_r,
                notes={**notes, "ratio per round": [round(p / r, 2) for p, r in pairs]},
                higher_is_better=False,
                target=Target("project", "<", TARGET_MS),
            ),
            Result(
                name=f"console queue among {TIPS:,}, {name}, a filter change: p99 latency",
                unit="ms",
                project=[round(percentile(r, 0.99), 2) for r in project[name]],
                reference=[round(percentile(r, 0.99), 2) for r in reference[name]],
                project_command=command_p,
                reference_command=command_r,
                notes=notes,
                higher_is_better=False,
            ),
        ]
    return results
