"""Debian's Chromium, driven headless by Selenium through Debian's chromedriver, for the
console's browser tests; axe-core (vendored from npm) for the accessibility check.

`make test` installs chromium and chromium-driver when absent (scripts/browser.sh). Without
them these tests fail with a message saying so: they are never skipped.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from app.config import PROJECT_ROOT

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
SCREENSHOTS = PROJECT_ROOT / "var" / "console-screenshots"
# Impacts the check refuses (axe's scale: minor, moderate, serious, critical).
REFUSED_IMPACTS = ("serious", "critical")


def _binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail(
            "The console's browser tests need Debian's chromium and chromium-driver: "
            "`make test` installs them (scripts/browser.sh ensure), or "
            "`apt-get install -y chromium chromium-driver`."
        )
    return browser, driver


@contextlib.contextmanager
def chromium(language: str = "zh-CN") -> Iterator[webdriver.Chrome]:
    """A headless Chromium whose pages ask for `language` (Accept-Language)."""
    browser, driver = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--window-size=1440,960",
        f"--lang={language}",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_page_load_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


@contextlib.contextmanager
def page_replaced(chrome: webdriver.Chrome, seconds: float = 15) -> Iterator[None]:
    """Wait, as the block ends, until the page shown when it began has been replaced.

    A click that posts a form or follows a link returns before the next page comes, and the
    page still shown has the same ids (`#tip-status`, `h1`, the sign-in form): an element found
    then is the old page's, and reading it after the new page arrives fails as stale."""
    page = chrome.find_element(By.TAG_NAME, "html")
    yield
    WebDriverWait(chrome, seconds).until(ec.staleness_of(page))


def submit(chrome: webdriver.Chrome, button) -> None:
    """Click a form's button (or a link) and wait for the page it leads to."""
    with page_replaced(chrome):
        button.click()


def text_of(chrome: webdriver.Chrome, by: str, value: str, seconds: float = 10) -> str:
    """The text of the element (by, value), found and read in one go once it shows some: a
    page's script may replace it between a lookup and a later read (rows drawn again)."""
    wait = WebDriverWait(chrome, seconds, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(
        lambda c: (element := c.find_element(by, value)).is_displayed() and element.text
    )


def polls_seen(chrome: webdriver.Chrome, path: str) -> int:
    """How many requests the page has made for a URL containing `path` (its script's polls)."""
    return chrome.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.name.includes(arguments[0])).length;",
        path,
    )


def screenshot(chrome: webdriver.Chrome, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    chrome.save_screenshot(str(path))
    return path


def serious_violations(chrome: webdriver.Chrome) -> list[dict]:
    """axe-core's violations of serious or critical impact on the current page."""
    chrome.execute_script(AXE.read_text(encoding="utf-8"))
    result = chrome.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}]));"
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result
        if v["impact"] in REFUSED_IMPACTS
    ]
