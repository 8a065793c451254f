"""Console first page: /console/tips in Chromium (Performance API) vs its JSON through curl.

Runs against the dev database as `make run` leaves it: the demo data and its simulated week
(`flask demo simulate`; `make bench` runs `make db`, which loads both). gunicorn (2 workers) on
loopback serves the app; Debian's Chromium, headless, driven by Selenium through Debian's
chromedriver (as tests/console/browser.py does), signs in through the console's form as the
demo grid staff (南郎家园) and then loads /console/tips `BENCH_REQUESTS` times a round with its
cache disabled (every load fetches the page, its scripts, styles and the area outlines: the
first visit's cost, the worst case). Each load's PerformanceNavigationTiming gives
`domInteractive` (the page can be used: the list is in the HTML) and `loadEventEnd` (scripts,
styles and images loaded, the map's data asked for), in ms from the navigation's start.

The reference is the queue's own data without a browser: `GET /console/tips.json` (the same
first page, the same session cookie) timed by curl (`%{time_total}`), as many times, interleaved
round by round. Target: domInteractive's p50 under 1.5 s (issue 17), absolute; the ratios say what
rendering and the page's other requests add to the data itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
from collections.abc import Iterator

import sqlalchemy as sa

from bench.common import BenchConfig, Result, Target, gunicorn, percentile, require_tool

TARGET_MS = 1500
WARM_UP = 3
GRID_STAFF = "13800000003"  # the demo grid staff of 南郎家园 (110105001024)
NAVIGATION = (
    "const n = performance.getEntriesByType('navigation')[0];"
    "return n && n.loadEventEnd > 0 ? [n.domInteractive, n.loadEventEnd, n.transferSize] : null;"
)


def _simulated_tips() -> int:
    from app import create_app
    from app.extensions import db

    app = create_app()
    with app.app_context():
        count = db.session.scalar(sa.text("SELECT count(*) FROM tips WHERE generated"))
        db.session.remove()
        db.engine.dispose()
    return count


@contextlib.contextmanager
def _chromium() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = shutil.which("chromium") or require_tool("chromium", "chromium")
    driver = shutil.which("chromedriver") or require_tool("chromedriver", "chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=zh-CN"):
        options.add_argument(flag)
    options.add_argument("--window-size=1440,960")
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield chrome
    finally:
        chrome.quit()


def _sign_in(chrome, base: str) -> str:
    """Sign in through the form; the session cookie as a `Cookie:` value for curl."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from app.demo import DEMO_PASSWORD

    chrome.get(f"{base}/console/login")
    chrome.find_element(By.NAME, "phone").send_keys(GRID_STAFF)
    chrome.find_element(By.NAME, "password").send_keys(DEMO_PASSWORD)
    chrome.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    WebDriverWait(chrome, 15).until(ec.presence_of_element_located((By.ID, "logout")))
    return "; ".join(f"{c['name']}={c['value']}" for c in chrome.get_cookies())


def _page_loads(chrome, base: str, loads: int) -> tuple[list[float], list[float], int]:
    from selenium.webdriver.support.ui import WebDriverWait

    interactive, loaded, size = [], [], 0
    for i in range(loads + WARM_UP):
        chrome.get(f"{base}/console/tips")
        timing = WebDriverWait(chrome, 30).until(lambda c: c.execute_script(NAVIGATION))
        if i >= WARM_UP:
            interactive.append(timing[0])
            loaded.append(timing[1])
            size = int(timing[2])
    return interactive, loaded, size


def _curl_latencies(base: str, cookie: str, requests: int) -> list[float]:
    curl = require_tool("curl", "curl")
    times = []
    headers, url = ["-H", f"Cookie: {cookie}"], f"{base}/console/tips.json"
    for i in range(requests + WARM_UP):
        out = subprocess.run(
            [curl, "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", *headers, url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        if out[0] != "200":
            raise SystemExit(f"/console/tips.json answered {out[0]}")
        if i >= WARM_UP:
            times.append(float(out[1]) * 1000)
    return times


def run(config: BenchConfig) -> list[Result]:
    requests = int(os.environ.get("BENCH_REQUESTS", 20))
    simulated = _simulated_tips()
    if not simulated:
        raise SystemExit(
            "no simulated week in the dev database: run `flask --app wsgi demo simulate` "
            "(make bench does, through make db)"
        )
    interactive, loaded, json_ms = [], [], []
    with gunicorn(workers=2) as base, _chromium() as chrome:
        chrome.execute_cdp_cmd("Network.enable", {})
        chrome.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        cookie = _sign_in(chrome, base)
        for _round in range(config.rounds):
            dom, load, size = _page_loads(chrome, base, requests)
            interactive.append(dom)
            loaded.append(load)
            json_ms.append(_curl_latencies(base, cookie, requests))
    notes = {
        "loads per round": requests,
        "simulated tips in the database": simulated,
        "page bytes (HTML)": size,
        "cache": "disabled (every load fetches every asset)",
    }
    command_p = (
        f"Chromium headless (Selenium, chromedriver), /console/tips as grid staff {GRID_STAFF}, "
        f"{requests} loads a round, {WARM_UP} warm-up loads left out; "
        "PerformanceNavigationTiming"
    )
    command_r = (
        "curl -s -o /dev/null -w '%{time_total}' -H 'Cookie: <session>' "
        f"<base>/console/tips.json ({requests} a round)"
    )
    rounds = list(zip(interactive, loaded, json_ms, strict=True))
    return [
        Result(
            name="console first page (/console/tips): domInteractive p50",
            unit="ms",
            project=[round(statistics.median(d), 1) for d, _l, _j in rounds],
            reference=[round(statistics.median(j), 1) for _d, _l, j in rounds],
            project_command=command_p,
            reference_command=command_r,
            notes={**notes, "p99 per round": [round(percentile(d, 0.99), 1) for d in interactive]},
            higher_is_better=False,
            target=Target("project", "<", TARGET_MS),
        ),
        Result(
            name="console first page (/console/tips): loadEventEnd p50",
            unit="ms",
            project=[round(statistics.median(lo), 1) for _d, lo, _j in rounds],
            reference=[round(statistics.median(j), 1) for _d, _l, j in rounds],
            project_command=command_p,
            reference_command=command_r,
            notes={**notes, "p99 per round": [round(percentile(lo, 0.99), 1) for lo in loaded]},
            higher_is_better=False,
            target=Target("project", "<", TARGET_MS),
        ),
    ]
