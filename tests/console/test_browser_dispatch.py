"""Dispatch and patrols in a real browser (Debian's Chromium, headless) against the app served
by gunicorn on a throw-away demo database: grid staff dispatch a task from a tip, a job worker
asks the on-duty volunteer nearby, the volunteer accepts through the API and appears in the
task's live view without a reload; the patrols page shows a volunteer on patrol who shares
their location and not one who does not. axe-core checks each page; screenshots go to
var/console-screenshots/ (dispatch.png, task-live.png, patrols.png)."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from app.auth.validators import id_check_character
from app.core import jobs as jobs_module
from tests.conftest import make_app
from tests.console.browser import chromium, polls_seen, screenshot, serious_violations, text_of
from tests.console.test_browser import LIMITS, api, bearer, sign_in, submit_tip, wait_for
from tests.live import demo_database, served
from tests.tips.conftest import JIANWAI

GRID_STAFF, VOLUNTEER = "13800000003", "13800000005"
VOLUNTEER_NAME = "演示志愿者"
PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture(scope="module")
def owner_url():
    with demo_database() as url:
        yield url


@pytest.fixture(scope="module")
def base(owner_url, tmp_path_factory):
    with served(owner_url, tmp_path_factory.mktemp("console-dispatch"), **LIMITS) as url:
        yield url


@pytest.fixture
def chrome():
    with chromium("zh-CN") as browser:
        yield browser


def register(base: str, name: str, *, location_sharing: bool) -> dict[str, str]:
    """A new volunteer of 南郎家园 registered through the API; their bearer headers."""
    admin = bearer(base, "13800000001")
    _s, _h, areas = api("GET", f"{base}/api/v1/areas?level=community&page_size=100", headers=admin)
    (home,) = [a["id"] for a in areas["items"] if a["code"] == "110105001024"]
    first17 = f"11010519900101{random.randrange(1000):03d}"
    phone = f"137{uuid.uuid4().int % 10**8:08d}"
    status, _h, body = api(
        "POST",
        f"{base}/api/v1/auth/register",
        {
            "phone": phone,
            "password": PASSWORD,
            "real_name": name,
            "id_number": first17 + id_check_character(first17),
            "home_community_id": home,
            "consents": {
                "terms_version": "2026-11",
                "location_sharing": location_sharing,
                "id_number": True,
            },
        },
    )
    assert status == 201, body
    return bearer(base, phone, PASSWORD)


def on_duty_at(base: str, headers: dict[str, str], lon: float, lat: float) -> None:
    status, _h, body = api(
        "PATCH", f"{base}/api/v1/me", {"location_sharing": True}, headers=headers
    )
    assert status == 200, body
    status, _h, body = api(
        "PUT",
        f"{base}/api/v1/me/duty",
        {"on_duty": True, "location": {"lon": lon, "lat": lat}},
        headers=headers,
    )
    assert status == 200, body


def on_patrol_at(base: str, headers: dict[str, str], lon: float, lat: float) -> str:
    now = dt.datetime.now(dt.UTC)
    status, _h, patrol = api(
        "POST",
        f"{base}/api/v1/patrols",
        {"kind": "walk_along", "started_at": (now - dt.timedelta(minutes=10)).isoformat()},
        headers=headers,
    )
    assert status == 201, patrol
    fix = {
        "client_id": str(uuid.uuid4()),
        "recorded_at": (now - dt.timedelta(seconds=30)).isoformat(),
        "location": {"lon": lon, "lat": lat, "accuracy_m": 10},
    }
    status, _h, body = api(
        "POST", f"{base}/api/v1/patrols/{patrol['id']}/checkins", {"items": [fix]}, headers=headers
    )
    assert status == 200 and body["items"][0]["outcome"] == "accepted", body
    return patrol["id"]


def test_dispatch_from_a_tip_and_watch_a_volunteer_accept(base, owner_url, chrome):
    volunteer = bearer(base, VOLUNTEER)
    on_duty_at(base, volunteer, *JIANWAI)
    tip_id = submit_tip(base, description="楼下有人打架, 请志愿者到场")
    sign_in(chrome, base, GRID_STAFF)
    chrome.get(f"{base}/console/tips/{tip_id}")
    wait_for(chrome, By.ID, "dispatch-from-tip").click()
    wait_for(chrome, By.ID, "dispatch-form")
    assert chrome.find_element(By.ID, "d-title").get_attribute("value").startswith("核实线索")
    # The map draws the outlines, the task's point and its circle.
    WebDriverWait(chrome, 10).until(
        lambda c: len(c.find_elements(By.CSS_SELECTOR, "#map path.leaflet-interactive")) >= 4
    )
    # One volunteer is near: fewer than the minimum, so no exact count, and no name.
    WebDriverWait(chrome, 10).until(lambda c: "少于" in c.find_element(By.ID, "reach").text)
    assert VOLUNTEER_NAME not in chrome.page_source
    full_page_screenshot(chrome, "dispatch")
    assert serious_violations(chrome) == [], "dispatch"

    chrome.find_element(By.ID, "dispatch-submit").click()
    wait_for(chrome, By.ID, "live")
    assert "/console/tasks/" in chrome.current_url
    task_id = chrome.current_url.rsplit("/", 1)[1]
    chrome.execute_script("window.notReloaded = true;")

    # A job worker asks the volunteers (the fan-out job the task deferred), as in production.
    jobs_module.run_worker(make_app(owner_url), wait=False, install_signal_handlers=False)
    status, _h, body = api(
        "POST", f"{base}/api/v1/tasks/{task_id}/responses", {"action": "accept"}, headers=volunteer
    )
    assert status == 200, body
    row = text_of(chrome, By.CSS_SELECTOR, "#task-volunteers tbody tr:not(.empty)", seconds=15)
    assert VOLUNTEER_NAME in row and "已接受" in row
    WebDriverWait(chrome, 10).until(lambda c: text_of(c, By.ID, "f-accepted") == "1")
    assert text_of(chrome, By.ID, "f-recipients") == "1"
    assert text_of(chrome, By.ID, "task-status") == "招募中"  # 1 of 3 places taken
    # Nothing moves now: the volunteers' rows stay the same elements over two more polls.
    row = chrome.find_element(By.CSS_SELECTOR, "#task-volunteers tbody tr:not(.empty)")
    polls = polls_seen(chrome, f"/console/tasks/{task_id}.json")
    WebDriverWait(chrome, 10).until(
        lambda c: polls_seen(c, f"/console/tasks/{task_id}.json") >= polls + 2
    )
    assert VOLUNTEER_NAME in row.text  # not stale
    assert chrome.execute_script("return window.notReloaded === true;")
    full_page_screenshot(chrome, "task-live")
    assert serious_violations(chrome) == [], "task"

    chrome.get(f"{base}/console/tasks")
    assert wait_for(chrome, By.CSS_SELECTOR, f'tr[data-task-id="{task_id}"]')
    assert serious_violations(chrome) == [], "tasks"


def missed_window(owner_url: str, checkpoint_id: str, hours_ago: int) -> None:
    """A window of the checkpoint judged missed (as the missed-window job writes them)."""
    engine = sa.create_engine(owner_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO checkpoint_windows (id, checkpoint_id, starts_at, ends_at,"
                " expected_visits, visits, status) VALUES (gen_random_uuid(), :c,"
                " now() - make_interval(hours => :h), now() - make_interval(hours => :h - 2),"
                " 1, 0, 'missed')"
            ),
            {"c": checkpoint_id, "h": hours_ago},
        )
    engine.dispose()


def full_page_screenshot(chrome, name: str) -> None:
    """The whole page, not only the window's height."""
    width, height = chrome.get_window_size().values()
    full = chrome.execute_script("return document.documentElement.scrollHeight;")
    chrome.set_window_size(width, max(height, full + 140))
    screenshot(chrome, name)
    chrome.set_window_size(width, height)


def test_the_patrols_page_shows_a_sharing_volunteer_and_not_a_private_one(base, owner_url, chrome):
    sharing = register(base, "共享位置的巡逻员", location_sharing=True)
    on_duty_at(base, sharing, *JIANWAI)
    shared = on_patrol_at(base, sharing, *JIANWAI)
    private = register(base, "不共享位置的巡逻员", location_sharing=False)
    hidden = on_patrol_at(base, private, JIANWAI[0] + 0.0005, JIANWAI[1])
    status, _h, checkpoint = api(
        "POST",
        f"{base}/api/v1/checkpoints",
        {
            "name": "南郎家园北门",
            "location": {"lon": JIANWAI[0], "lat": JIANWAI[1]},
            "radius_m": 30,
            "schedule": {
                "timezone": "Asia/Shanghai",
                "windows": [{"days": ["mon", "thu"], "start": "21:00", "end": "23:00"}],
            },
        },
        headers=bearer(base, GRID_STAFF),
    )
    assert status == 201, checkpoint
    missed_window(owner_url, checkpoint["id"], hours_ago=26)
    sign_in(chrome, base, GRID_STAFF)
    chrome.get(f"{base}/console/patrols")
    wait_for(chrome, By.CSS_SELECTOR, f'tr[data-checkpoint-id="{checkpoint["id"]}"]')
    assert "共享位置的巡逻员" in text_of(chrome, By.CSS_SELECTOR, f'tr[data-patrol-id="{shared}"]')
    # Rows are drawn again only when the answer changes: the same row after two more polls (a
    # screen reader's place, a selection, kept).
    row = chrome.find_element(By.CSS_SELECTOR, f'tr[data-patrol-id="{shared}"]')
    polls = polls_seen(chrome, "/console/patrols.json")
    WebDriverWait(chrome, 10).until(lambda c: polls_seen(c, "/console/patrols.json") >= polls + 2)
    assert "共享位置的巡逻员" in row.text  # not stale
    # The map shows the sharing volunteer (outlines plus one marker), never the other.
    WebDriverWait(chrome, 10).until(
        lambda c: c.find_elements(By.CSS_SELECTOR, "#map path[stroke='#0b4f8a']")
    )
    markers = chrome.find_elements(By.CSS_SELECTOR, "#map path[stroke='#0b4f8a']")
    assert len(markers) == 1
    assert "不共享位置的巡逻员" not in chrome.page_source and hidden not in chrome.page_source
    assert "未共享位置" in text_of(chrome, By.ID, "others")
    missed = text_of(chrome, By.ID, "missed-windows")
    assert "南郎家园北门" in missed and "0 / 1" in missed
    full_page_screenshot(chrome, "patrols")
    assert serious_violations(chrome) == [], "patrols"
