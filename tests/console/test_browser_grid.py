"""The grid and organisations pages in a real browser (Debian's Chromium, headless, as in
test_browser.py): the grid draws its cells with their clue counts, switches to hexagons, shows
a cell's series on a click; the organisations page lists the communities furthest from the
targets first and colours them on the map; axe-core checks each page. Screenshots:
var/console-screenshots/grid.png, grid-hexagons.png, organisations.png."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.browser import chromium, screenshot, serious_violations
from tests.console.test_browser import (  # noqa: F401 - the module's server and database
    ADMIN,
    GRID_STAFF,
    LIMITS,
    api,
    bearer,
    owner_url,
    sign_in,
    submit_tip,
    tiled_base,
    tiles,
    wait_for,
)
from tests.live import served
from tests.patrols.conftest import HOME, item
from tests.tips.conftest import JIANWAI

COMMUNITY_ADMIN = "13800000002"  # the demo's admin of 建外街道 (its communities)
VOLUNTEER = "13800000005"  # the demo's volunteer of 南郎家园
BEILANG = "110105001025"


@pytest.fixture(scope="module")
def base(owner_url, tmp_path_factory):  # noqa: F811 - this module's own server
    with served(owner_url, tmp_path_factory.mktemp("console-grid"), **LIMITS) as url:
        yield url


def patrol_through(base: str, *places: tuple[float, float], minutes: int = 10) -> None:
    """The demo volunteer patrols, `minutes` at each place (a fix a minute), ending now."""
    headers = bearer(base, VOLUNTEER)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes * len(places) + 1)
    status, _h, patrol = api(
        "POST",
        f"{base}/api/v1/patrols",
        {"kind": "walk_along", "started_at": start.isoformat()},
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert status == 201, patrol
    fixes = [
        item(at=start + dt.timedelta(minutes=n * minutes + m + 1), lon=lon, lat=lat)
        for n, (lon, lat) in enumerate(places)
        for m in range(minutes)
    ]
    status, _h, answer = api(
        "POST", f"{base}/api/v1/patrols/{patrol['id']}/checkins", {"items": fixes}, headers
    )
    assert status == 200 and all(a["outcome"] == "accepted" for a in answer["items"]), answer


@pytest.fixture
def chrome():
    with chromium("zh-CN") as browser:
        yield browser


def cells_drawn(chrome, seconds: float = 15) -> int:
    WebDriverWait(chrome, seconds).until(
        lambda c: c.find_element(By.ID, "map").get_attribute("data-cells-drawn")
    )
    return int(chrome.find_element(By.ID, "map").get_attribute("data-cells-drawn"))


def labels(chrome) -> list[str]:
    return chrome.execute_script(
        "return [...document.querySelectorAll('#map .cell-label')].map(e => e.textContent);"
    )


def click_cell_and_read_its_series(chrome, cell_id: str) -> list[int]:
    chrome.find_element(By.CSS_SELECTOR, f'#map path[data-cell-id="{cell_id}"]').click()
    wait_for(chrome, By.ID, "series")
    WebDriverWait(chrome, 10).until(
        lambda c: c.find_element(By.ID, "series").get_attribute("data-cell-id") == cell_id
    )
    chrome.find_element(By.CSS_SELECTOR, "#series summary").click()
    rows = chrome.find_elements(By.CSS_SELECTOR, "#series-table tbody tr")
    return [int(row.find_elements(By.TAG_NAME, "td")[1].text) for row in rows]


def test_the_grid_draws_cells_with_counts_switches_to_hexagons_and_shows_a_series(base, chrome):
    for _ in range(4):  # against no clues before: a hotspot
        submit_tip(base, description="网格页测试线索")
    patrol_through(base, HOME, JIANWAI)  # two cells watched: the others are gaps
    sign_in(chrome, base, GRID_STAFF)
    chrome.get(f"{base}/console/grid")
    assert cells_drawn(chrome) >= 2
    assert chrome.find_element(By.TAG_NAME, "h1").text == "网格"
    assert "▲4" in labels(chrome)
    busiest = chrome.find_element(By.CSS_SELECTOR, "#cell-table tbody tr")
    cell_id = busiest.get_attribute("data-cell-id")
    assert int(busiest.find_elements(By.TAG_NAME, "td")[0].text) >= 4
    assert "▲" in busiest.find_elements(By.TAG_NAME, "td")[2].text  # hotspot, in words too
    assert serious_violations(chrome) == [], "grid"
    screenshot(chrome, "grid")

    series = click_cell_and_read_its_series(chrome, cell_id)
    assert len(series) >= 63 and sum(series) >= 3
    assert "每日线索数" in chrome.find_element(By.ID, "series-title").text
    assert chrome.find_elements(By.CSS_SELECTOR, "#series-chart rect")

    # Colour by coverage gaps: no patrols in the demo, so every cell is a gap, said in words.
    chrome.find_element(By.CSS_SELECTOR, '#colour-by input[value="gaps"]').click()
    assert chrome.find_element(By.ID, "legend-gaps").is_displayed()
    assert not chrome.find_element(By.ID, "legend-tips").is_displayed()
    assert any("从未" in t for t in labels(chrome))
    last_patrolled = [
        row.find_elements(By.TAG_NAME, "td")[-2].text
        for row in chrome.find_elements(By.CSS_SELECTOR, "#cell-table tbody tr")
    ]
    assert sum("未巡逻" not in text for text in last_patrolled) == 2
    assert sum("✓" in text for text in labels(chrome)) == 2  # watched, said on the map too
    screenshot(chrome, "grid-gaps")
    chrome.find_element(By.CSS_SELECTOR, '#colour-by input[value="risk"]').click()
    assert chrome.find_element(By.ID, "legend-risk").is_displayed()
    screenshot(chrome, "grid-risk")

    chrome.find_element(By.ID, "cells-hex").click()
    chrome.find_element(By.ID, "grid-submit").click()
    WebDriverWait(chrome, 10).until(lambda c: "cells=hex" in c.current_url)
    assert cells_drawn(chrome) >= 2
    assert chrome.find_element(By.ID, "map").get_attribute("data-kind") == "hex"
    hexagon = chrome.find_element(By.CSS_SELECTOR, "#cell-table tbody tr")
    hex_id = hexagon.get_attribute("data-cell-id")
    assert re.fullmatch(r"[0-9a-f]{15}", hex_id)
    assert "▲4" in labels(chrome)  # the same hotspot, as a hexagon
    assert serious_violations(chrome) == [], "grid hexagons"
    screenshot(chrome, "grid-hexagons")
    assert sum(click_cell_and_read_its_series(chrome, hex_id)) >= 3


def test_the_series_opens_from_the_table_by_keyboard(base, chrome):
    submit_tip(base)
    sign_in(chrome, base, GRID_STAFF)
    chrome.get(f"{base}/console/grid")
    cells_drawn(chrome)
    button = chrome.find_element(By.CSS_SELECTOR, "#cell-table .series-button")
    chrome.execute_script("arguments[0].focus();", button)
    chrome.switch_to.active_element.send_keys("\n")
    assert wait_for(chrome, By.ID, "series-title").text


def test_the_organisations_page_lists_gaps_first_and_colours_the_map(base, chrome):
    admin = bearer(base, COMMUNITY_ADMIN)
    _s, _h, areas = api("GET", f"{base}/api/v1/areas?level=community&page_size=100", headers=admin)
    (beilang,) = [a["id"] for a in areas["items"] if a["code"] == BEILANG]
    for n in range(14):  # the demo has one (brand) organisation there: now 15, 2 brand
        body = {
            "name": f"北郎家园社会组织{n}",
            "kind": "community_organisation",
            "service_type": "mutual_aid",
            "area_id": beilang,
            "brand": n == 0,
        }
        status, _h, answer = api("POST", f"{base}/api/v1/teams", body, headers=admin)
        assert status == 201, answer
    sign_in(chrome, base, COMMUNITY_ADMIN)
    chrome.get(f"{base}/console/organisations")
    WebDriverWait(chrome, 15).until(
        lambda c: c.find_element(By.ID, "map").get_attribute("data-communities-drawn")
    )
    rows = chrome.find_elements(By.CSS_SELECTOR, "#targets-table tbody tr")
    codes = [row.get_attribute("data-code") for row in rows]
    assert len(codes) >= 3 and codes[-1] == BEILANG
    short = [row.find_elements(By.TAG_NAME, "td")[2].text for row in rows]
    assert short[0].isdigit() and int(short[0]) > 0 and "达标" in short[-1]
    drawn = int(chrome.find_element(By.ID, "map").get_attribute("data-communities-drawn"))
    assert drawn == len(codes)
    assert "✓" in [e.text for e in chrome.find_elements(By.CSS_SELECTOR, "#map .cell-label")]
    assert serious_violations(chrome) == [], "organisations"
    screenshot(chrome, "organisations")


def test_with_a_gcj02_tile_server_the_grid_asks_for_gcj02_cells(tiled_base, chrome):  # noqa: F811
    submit_tip(tiled_base)
    sign_in(chrome, tiled_base, GRID_STAFF)
    chrome.get(f"{tiled_base}/console/grid")
    cells_drawn(chrome)
    fetched = chrome.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);"
    )
    layers = [u for u in fetched if "/console/grid/cells.geojson" in u or "areas.geojson" in u]
    assert len(layers) >= 2 and all("crs=gcj02" in u for u in layers), layers
