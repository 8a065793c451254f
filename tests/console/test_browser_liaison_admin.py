"""Pages 6 and 7 of the console in a real browser (Debian's Chromium, headless) against the app
served by gunicorn on a throw-away demo database: a police liaison makes a clue batch from
an area picked on the map, watches the real job worker (`flask jobs worker`) build it,
downloads the ZIP (its SHA-256 is the page's, its signed manifest verifies), acknowledges it
and records an outcome; an admin verifies a volunteer from the queue and finds it in the
audit log. axe-core checks each page; screenshots go to var/console-screenshots/."""

from __future__ import annotations

import hashlib
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from app import demo
from app.config import PROJECT_ROOT
from app.exports import signing
from tests.conftest import as_app
from tests.console.browser import chromium, screenshot, serious_violations, submit
from tests.console.test_browser import (
    ADMIN,
    GRID_STAFF,
    LIMITS,
    api,
    bearer,
    sign_in,
    submit_tip,
    wait_for,
)
from tests.live import demo_database, served
from tests.ops.processes import base_environment

LIAISON = "13800000004"  # the demo's police liaison of sub-district 110105001000
COMMUNITY = "110105001024"
FLASK = str(PROJECT_ROOT / ".venv" / "bin" / "flask")


@pytest.fixture(scope="module")
def owner_url():
    with demo_database() as url:
        yield url


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console-exports")


@pytest.fixture(scope="module")
def base(owner_url, exports, tmp_path_factory):
    with served(
        owner_url, tmp_path_factory.mktemp("console-liaison"), EXPORT_ROOT=str(exports), **LIMITS
    ) as url:
        yield url


@pytest.fixture
def run_worker(owner_url, exports, tmp_path):
    """The real job worker, `flask jobs worker --queue exports --once`, as its own process with
    the served app's settings: it builds the batches waiting now, then exits."""

    def run() -> None:
        env = base_environment(
            QF_ENV="testing",
            DATABASE_URL=as_app(owner_url),
            RATELIMIT_STORAGE_URI="memory://",
            EXPORT_ROOT=str(exports),
            LOG_LEVEL="WARNING",
        )
        log = tmp_path / "worker.log"
        with log.open("wb") as out:
            worker = subprocess.run(  # noqa: S603 - our own command line
                [FLASK, "--app", "wsgi", "jobs", "worker", "--queue", "exports", "--once"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=180,
                check=False,
            )
        assert worker.returncode == 0, log.read_text()

    return run


@pytest.fixture
def chrome(tmp_path):
    with chromium("zh-CN") as browser:
        browser.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
        )
        yield browser


def downloaded(folder: Path, suffix: str, seconds: float = 30) -> Path:
    """The file the browser finished downloading into `folder`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = [p for p in folder.glob(f"*{suffix}") if not p.name.endswith(".crdownload")]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} downloaded into {folder}: {list(folder.iterdir())}")


def full_screenshot(chrome, name: str) -> None:
    """A screenshot of the whole page, not only the window's part."""
    height = chrome.execute_script("return document.documentElement.scrollHeight;")
    chrome.set_window_size(1440, max(960, min(height + 140, 4000)))
    screenshot(chrome, name)
    chrome.set_window_size(1440, 960)


def wait_for_map(chrome) -> None:
    WebDriverWait(chrome, 15).until(
        lambda c: c.find_elements(By.CSS_SELECTOR, "#map path[data-level=grid_cell]")
    )


def test_a_liaison_makes_a_batch_watches_it_built_downloads_and_acknowledges_it(
    base, chrome, run_worker, tmp_path
):
    submit_tip(base, description="小区车棚电动车电瓶连续被盗")
    sign_in(chrome, base, LIAISON)
    assert chrome.current_url.endswith("/console/liaison")
    wait_for_map(chrome)
    # Pick the grid cell with clues on the map: it joins the form's area list.
    cell = chrome.find_element(
        By.CSS_SELECTOR, "#map path[data-level=grid_cell]:not([data-count='0'])"
    )
    area_id = cell.get_attribute("data-area-id")
    chrome.execute_script(
        "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}));", cell
    )
    option = chrome.find_element(By.CSS_SELECTOR, f'#b-area_ids option[value="{area_id}"]')
    assert option.is_selected()
    assert wait_for(chrome, By.ID, "picked").text == "已选区域：1 个。"
    chrome.find_element(By.ID, "b-purpose").send_keys("核查车棚电瓶盗窃线索")
    chrome.find_element(By.ID, "b-case").send_keys("京公朝刑2026-0108")
    Select(chrome.find_element(By.ID, "b-categories")).select_by_value("theft")
    full_screenshot(chrome, "liaison")
    assert serious_violations(chrome) == [], "liaison"
    submit(chrome, chrome.find_element(By.ID, "batch-submit"))

    # The batch's page: waiting for the worker, then built while the page is open.
    wait_for(chrome, By.ID, "batch-bar")
    assert "等待生成" in chrome.find_element(By.ID, "batch-status").text
    batch_id = chrome.current_url.rsplit("/", 1)[1]
    chrome.execute_script("window.notReloaded = true;")
    run_worker()
    files = wait_for(chrome, By.ID, "batch-files", seconds=30)
    assert chrome.find_element(By.ID, "signature-state").get_attribute("data-verified") == "true"
    assert serious_violations(chrome) == [], "batch"

    # The ZIP, downloaded by the browser: the SHA-256 on the page, a manifest that verifies.
    row = files.find_element(By.CSS_SELECTOR, 'tr[data-file="batch.zip"]')
    shown = row.find_element(By.CSS_SELECTOR, "code.hash").get_attribute("data-sha256")
    row.find_element(By.TAG_NAME, "a").click()
    archive = downloaded(tmp_path, ".zip")
    assert archive.name == f"clue-batch-{batch_id}-batch.zip"
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == shown
    _status, _headers, key = api("GET", f"{base}/api/v1/clue-batches/signing-key")
    manifest = signing.verify_zip(archive, key["public_key"])
    assert manifest["batch"]["case_reference"] == "京公朝刑2026-0108"

    submit(chrome, chrome.find_element(By.ID, "ack-submit"))
    assert chrome.find_element(By.ID, "batch-acknowledged").text != "尚未"
    assert not chrome.find_elements(By.ID, "ack-form")

    first = chrome.find_element(By.CSS_SELECTOR, "#batch-items form.outcome-form")
    Select(first.find_element(By.NAME, "outcome")).select_by_value("case_opened")
    submit(chrome, first.find_element(By.TAG_NAME, "button"))
    outcome = wait_for(chrome, By.CSS_SELECTOR, "#batch-items .outcome")
    assert outcome.text == "已立案"
    full_screenshot(chrome, "batch")

    # The API sees what the console did.
    headers = bearer(base, LIAISON)
    _s, _h, batch = api("GET", f"{base}/api/v1/clue-batches/{batch_id}", headers=headers)
    assert batch["status"] == "ready" and batch["acknowledged_at"]


def test_grid_staff_are_kept_off_the_liaison_page_in_the_browser(base, chrome):
    sign_in(chrome, base, GRID_STAFF)
    assert not chrome.find_elements(By.LINK_TEXT, "线索批次")
    chrome.get(f"{base}/console/liaison")
    assert "您的角色" in wait_for(chrome, By.ID, "error-message").text


def _new_volunteer(base: str) -> tuple[str, str]:
    """A volunteer of community 110105001024 made through the API, not yet verified."""
    admin = bearer(base, ADMIN)
    _s, _h, areas = api("GET", f"{base}/api/v1/areas?level=community&page_size=100", headers=admin)
    (home,) = [a["id"] for a in areas["items"] if a["code"] == COMMUNITY]
    name = f"待核验志愿者{uuid.uuid4().hex[:4]}"
    status, _h, body = api(
        "POST",
        f"{base}/api/v1/users",
        {
            "phone": f"137{uuid.uuid4().int % 10**8:08d}",
            "password": "Correct-Horse-Battery-9",
            "real_name": name,
            "roles": ["volunteer"],
            "home_community_id": home,
        },
        headers=admin,
    )
    assert status == 201, body
    return body["id"], name


def test_an_admin_verifies_a_volunteer_from_the_queue_and_reads_the_audit_log(base, chrome):
    user_id, name = _new_volunteer(base)
    sign_in(chrome, base, ADMIN, demo.DEMO_PASSWORD)
    submit(chrome, chrome.find_element(By.LINK_TEXT, "管理"))
    wait_for(chrome, By.ID, "user-list")
    assert serious_violations(chrome) == [], "accounts"
    submit(chrome, chrome.find_element(By.LINK_TEXT, "待核验队列"))
    button = wait_for(chrome, By.CSS_SELECTOR, f'button[data-verify="{user_id}"]')
    assert serious_violations(chrome) == [], "verification queue"
    submit(chrome, button)
    notice = wait_for(chrome, By.CSS_SELECTOR, "p.notice")
    assert notice.text == f"{name} 已完成实名核验。"
    assert not chrome.find_elements(By.CSS_SELECTOR, f'button[data-verify="{user_id}"]')

    chrome.get(f"{base}/console/admin/users?role=volunteer")
    row = wait_for(chrome, By.CSS_SELECTOR, f'tr[data-user-id="{user_id}"]')
    assert name in row.text
    full_screenshot(chrome, "admin-users")
    submit(chrome, row.find_element(By.TAG_NAME, "a"))
    wait_for(chrome, By.ID, "user-form")
    assert serious_violations(chrome) == [], "account"

    submit(chrome, chrome.find_element(By.LINK_TEXT, "管理"))
    submit(chrome, chrome.find_element(By.LINK_TEXT, "审计日志"))
    chrome.find_element(By.ID, "a-action").send_keys("user.verified")
    submit(chrome, chrome.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))
    event = wait_for(chrome, By.CSS_SELECTOR, 'tr[data-action="user.verified"]')
    assert user_id[:8] in event.text
    full_screenshot(chrome, "audit")
    assert serious_violations(chrome) == [], "audit"
