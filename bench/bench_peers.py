"""Stations in a map box: our API against pygeoapi and tipg serving the same table.

The same database (STATIONS stations over Chaoyang, bench/common.py `fill_stations`) is served by
three servers at once, each with two worker processes on loopback:
- ours: `GET /api/v1/stations?bbox=...&page_size=50` as GeoJSON (gunicorn, 2 sync workers);
- pygeoapi (OGC API Features, Flask; its PostgreSQL provider): `/collections/stations/items?
  bbox=...&limit=50` (gunicorn, 2 sync workers);
- tipg (OGC API Features, FastAPI + asyncpg): `/collections/public.stations/items?bbox=...&
  limit=50` (uvicorn, 2 workers).
pygeoapi and tipg are pinned in bench/peers-requirements.txt and installed into a virtualenv of
their own (var/bench/peers-venv), made here when missing. The peers publish the same properties
(id, name, type, amenities, status); ours adds its own (opening hours, open now...).

Each round runs wrk (BENCH_CONNECTIONS connections, BENCH_SECONDS seconds) against each server in
turn, over the same 500 random boxes of about 1 km (each holds about 125 stations, so every answer
is a full page of 50). Before measuring, one box is asked of all three: the same 50-feature
page of Points, or the benchmark stops. The issue's target: at least twice tipg's throughput.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.request import Request, urlopen

from sqlalchemy.engine import make_url

from bench.common import (
    ROOT,
    STATIONS,
    STATIONS_BOX,
    BenchConfig,
    Result,
    Target,
    database_url,
    drop_database,
    fill_stations,
    free_port,
    gunicorn,
    make_database,
    wrk_latency,
)

PAGE = 50
BOXES = 500
BOX_DEGREES = (0.0117, 0.009)  # about 1 km east-west and north-south at 39.9° N
PEERS_DIR = ROOT / "var" / "bench"
PEERS_VENV = PEERS_DIR / "peers-venv"
PEERS_REQUIREMENTS = ROOT / "bench" / "peers-requirements.txt"
PROPERTIES = ["id", "name", "type", "amenities", "status"]
GEOJSON = "application/geo+json"

LUA = """
local boxes = {{{boxes}}}
local counter = 0
request = function()
  counter = counter + 1
  local box = boxes[(counter % #boxes) + 1]
  return wrk.format("GET", "{prefix}" .. box .. "{suffix}", {{["Accept"] = "{accept}"}})
end
response = function(status, headers, body)
  if status ~= 200 then
    error("unexpected answer " .. status .. ": " .. string.sub(body, 1, 200))
  end
end
"""


def _peers_python() -> Path:
    """The peers' own virtualenv, made from bench/peers-requirements.txt when missing or stale."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    if stamp.exists() and stamp.stat().st_mtime >= PEERS_REQUIREMENTS.stat().st_mtime:
        return python
    print("   installing pygeoapi and tipg into var/bench/peers-venv", flush=True)
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(PEERS_REQUIREMENTS)],
        check=True,
    )
    stamp.touch()
    return python


def _wait(url: str, process: subprocess.Popen, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name} did not start (see its log in var/bench/)")
        time.sleep(0.3)


@contextmanager
def _server(name: str, command: list[str], env: dict, ready: str) -> Iterator[None]:
    log = (PEERS_DIR / f"{name}.log").open("w")
    process = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=PEERS_DIR, stdout=log, stderr=log
    )
    try:
        _wait(ready, process, name)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _pygeoapi_config(bench_url: str, port: int) -> dict:
    url = make_url(bench_url)
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": PAGE, "max_items": PAGE},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": ""},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "bench",
                "keywords": ["bench"],
                "terms_of_service": "https://example.org",
                "url": "https://example.org",
            },
            "license": {"name": "CC-BY 4.0", "url": "https://example.org"},
            "provider": {"name": "bench", "url": "https://example.org"},
            "contact": {"name": "bench"},
        },
        "resources": {
            "stations": {
                "type": "collection",
                "title": "stations",
                "description": "stations",
                "keywords": ["stations"],
                "extents": {"spatial": {"bbox": list(STATIONS_BOX)}},
                "providers": [
                    {
                        "type": "feature",
                        "name": "PostgreSQL",
                        "data": {
                            "host": url.host,
                            "port": url.port,
                            "dbname": url.database,
                            "user": url.username,
                            "password": url.password,
                            "search_path": ["public"],
                        },
                        "id_field": "id",
                        "table": "stations",
                        "geom_field": "geom",
                        "properties": [p for p in PROPERTIES if p != "id"],
                    }
                ],
            }
        },
    }


@contextmanager
def _pygeoapi(python: Path, bench_url: str) -> Iterator[str]:
    port = free_port()
    config = PEERS_DIR / "pygeoapi.config.json"
    openapi = PEERS_DIR / "pygeoapi.openapi.yml"
    # pygeoapi reads YAML; JSON is YAML.
    config.write_text(json.dumps(_pygeoapi_config(bench_url, port)))
    bin_dir = python.parent
    subprocess.run(
        [
            str(bin_dir / "pygeoapi"),
            "openapi",
            "generate",
            str(config),
            "--output-file",
            str(openapi),
        ],
        check=True,
        capture_output=True,
    )
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    command = [
        str(bin_dir / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--no-control-socket",
        "pygeoapi.flask_app:APP",
    ]
    base = f"http://127.0.0.1:{port}"
    with _server("pygeoapi", command, env, f"{base}/collections/stations?f=json"):
        yield f"{base}/collections/stations/items?limit={PAGE}&f=json&bbox="


@contextmanager
def _tipg(python: Path, bench_url: str) -> Iterator[str]:
    port = free_port()
    url = make_url(bench_url).set(drivername="postgresql")
    env = {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "TIPG_DB_TABLES": json.dumps(["public.stations"]),
        "TIPG_TABLE_CONFIG": json.dumps(
            {"public.stations": {"geomcol": "geom", "pk": "id", "properties": PROPERTIES}}
        ),
        "TIPG_DB_FUNCTIONS": "[]",
        "TIPG_ADD_TILES_VIEWER": "false",
    }
    command = [
        str(python.parent / "uvicorn"),
        "tipg.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        "--log-level",
        "warning",
    ]
    base = f"http://127.0.0.1:{port}"
    with _server("tipg", command, env, f"{base}/collections/public.stations"):
        yield f"{base}/collections/public.stations/items?limit={PAGE}&bbox="


def _boxes(seed: int = 42) -> list[str]:
    rng = random.Random(seed)
    west, south, east, north = STATIONS_BOX
    width, height = BOX_DEGREES
    boxes = []
    for _ in range(BOXES):
        lon, lat = rng.uniform(west, east - width), rng.uniform(south, north - height)
        boxes.append(f"{lon:.6f},{lat:.6f},{lon + width:.6f},{lat + height:.6f}")
    return boxes


def _page(prefix: str, box: str) -> dict:
    request = Request(prefix + box, headers={"Accept": GEOJSON})  # noqa: S310 - loopback
    with urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _same_page(servers: dict[str, str], box: str) -> dict[str, int]:
    """Every server answers the box with a full page of Points: the comparison is fair."""
    counts = {}
    for name, prefix in servers.items():
        features = _page(prefix, box)["features"]
        kinds = {f["geometry"]["type"] for f in features}
        if len(features) != PAGE or kinds != {"Point"}:
            raise SystemExit(f"{name} answered {len(features)} features of {kinds} for {box}")
        counts[name] = len(features)
    return counts


def _lua(prefix: str, boxes: list[str]) -> str:
    base, _, _ = prefix.partition("?")
    path = "/" + base.split("/", 3)[3] + "?" + prefix.partition("?")[2]
    return LUA.format(
        boxes=", ".join(f'"{b}"' for b in boxes), prefix=path, suffix="", accept=GEOJSON
    )


def run(config: BenchConfig) -> list[Result]:
    python = _peers_python()
    boxes = _boxes()
    bench_url = make_database(database_url())
    os.environ["DATABASE_URL"] = bench_url
    try:
        fill_stations(bench_url)
        with ExitStack() as stack:
            ours = stack.enter_context(gunicorn(workers=2))
            servers = {
                "ours": f"{ours}/api/v1/stations?page_size={PAGE}&bbox=",
                "pygeoapi": stack.enter_context(_pygeoapi(python, bench_url)),
                "tipg": stack.enter_context(_tipg(python, bench_url)),
            }
            _same_page(servers, boxes[0])
            rates: dict[str, list[float]] = {name: [] for name in servers}
            latency: dict[str, list[dict]] = {name: [] for name in servers}
            commands: dict[str, str] = {}
            for _ in range(config.rounds):
                for name, prefix in servers.items():
                    origin = prefix.split("/", 3)[:3]
                    rate, percentiles, command = wrk_latency(
                        "/".join(origin),
                        config.seconds,
                        config.connections,
                        _lua(prefix, boxes),
                        f"peers-{name}",
                    )
                    rates[name].append(round(rate, 1))
                    latency[name].append(percentiles)
                    commands[name] = f"{command} ({prefix}<box>)"
    finally:
        del os.environ["DATABASE_URL"]
        drop_database(bench_url)

    def p(name: str, q: str) -> float:
        return round(statistics.median(x[q] for x in latency[name]), 2)

    notes = {f"{name} p50/p99 ms": (p(name, "50"), p(name, "99")) for name in servers}
    notes.update(boxes=BOXES, page=PAGE, connections=config.connections)
    label = f"stations in a ~1 km box among {STATIONS:,}, GeoJSON pages of {PAGE}"
    return [
        Result(
            name=f"{label}: req/s, ours vs tipg",
            unit="req/s",
            project=rates["ours"],
            reference=rates["tipg"],
            project_command=commands["ours"],
            reference_command=commands["tipg"],
            notes=notes,
            target=Target("ratio", ">=", 2.0),
            key="peers.tipg",
        ),
        Result(
            name=f"{label}: req/s, ours vs pygeoapi",
            unit="req/s",
            project=rates["ours"],
            reference=rates["pygeoapi"],
            project_command=commands["ours"],
            reference_command=commands["pygeoapi"],
            notes=notes,
            key="peers.pygeoapi",
        ),
    ]
