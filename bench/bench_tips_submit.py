"""Tip submission with one 2 MB photo: tips per second end to end, API vs the image work alone.

Runs on a throw-away database of the dev cluster's server (made and dropped here), migrated and
loaded with the demo data (Chaoyang's areas: every tip's place is resolved to its area path).
The photo is made once per run: 4032x3024 (a 12 MP phone camera), gradients, blobs and grain,
JPEG quality 90, about 2 MB, with camera and GPS EXIF.

The project side is the API under gunicorn (BENCH_WORKERS workers, default the CPU count, photos
stored under a temporary MEDIA_ROOT, rate limits raised out of the way): BENCH_CONNECTIONS
clients, each looping for BENCH_SECONDS over what an anonymous tipster's phone sends, a
multipart `POST /api/v1/media` and then `POST /api/v1/tips` (JSON, the photo's id, a random point
in Chaoyang, a new Idempotency-Key); a tip counts once both answered 201. The reference is the
irreducible work in that pair: `app.media.images.process_image` (decode, orient, downscale,
re-encode, thumbnail) on the same photo, in as many processes as gunicorn has workers, each
looping for BENCH_SECONDS. The ratio (tips/s / images/s) is the share of the machine that
re-encoding leaves to everything else: HTTP, upload parsing, storage, the area lookup, the
database and the idempotency record. The issue sets no target; rounds are interleaved.
"""

from __future__ import annotations

import http.client
import io
import json
import multiprocessing
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from bench.common import (
    BenchConfig,
    Result,
    bench_app,
    database_url,
    drop_database,
    gunicorn,
    make_database,
    migrate_and_load_demo,
)

BOX = (116.40, 39.88, 116.55, 39.98)  # west, south, east, north: inside Chaoyang
PHOTO_SIZE = (4032, 3024)
PHOTO_GRAIN = 3.6  # standard deviation of the per-pixel noise: sets the file size (~2 MB)
RAISED_LIMIT = "100000 per minute"


def make_photo(seed: int = 20261122) -> bytes:
    """A photo-like 12 MP JPEG of about 2 MB with camera and GPS EXIF (what uploads carry)."""
    rng = np.random.default_rng(seed)
    width, height = PHOTO_SIZE
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    gradients = np.stack(
        [x / width * 160 + 40, y / height * 120 + 60, (x + y) / (width + height) * 100 + 80],
        axis=-1,
    )
    coarse = rng.integers(0, 256, (height // 48, width // 48, 3), dtype=np.uint8)
    blobs = Image.fromarray(coarse).resize(PHOTO_SIZE, Image.Resampling.BICUBIC)
    grain = rng.normal(0, PHOTO_GRAIN, (height, width, 3)).astype(np.float32)
    pixels = gradients * 0.5 + np.asarray(blobs, dtype=np.float32) * 0.5 + grain
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "Qunfang bench"  # Make
    exif[0x0110] = "synthetic 12 MP"  # Model
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (39.0, 54.0, 30.5), 3: "E", 4: (116.0, 27.0, 12.25)})
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


# -- the project side ----------------------------------------------------------------------------


def _post(base: str, path: str, body: bytes, headers: dict[str, str]) -> dict:
    """POST and return the JSON answer; anything but a 201 stops the benchmark, shown."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
    finally:
        conn.close()
    if response.status != 201:
        raise RuntimeError(f"POST {path} answered {response.status}: {answer[:2000]!r}")
    return json.loads(answer)


def _submit_one(base: str, photo: bytes, categories: list[str], rng: random.Random) -> None:
    """One anonymous tip with one photo, as a phone sends it: the upload, then the tip."""
    boundary = uuid.uuid4().hex
    multipart = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    media = _post(
        base,
        "/api/v1/media",
        multipart,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    tip = {
        "category": rng.choice(categories),
        "description": "路口有人在撬电动车的锁，拍了照片。",
        "location": {
            "lon": rng.uniform(BOX[0], BOX[2]),
            "lat": rng.uniform(BOX[1], BOX[3]),
            "accuracy_m": 12.0,
        },
        "media_ids": [media["id"]],
    }
    _post(
        base,
        "/api/v1/tips",
        json.dumps(tip).encode(),
        {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
    )


def _api_rate(base: str, photo: bytes, categories: list[str], seconds: int, clients: int) -> float:
    """Tips per second: `clients` threads, each submitting for `seconds`."""
    rates: list[float] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        done, started = 0, time.perf_counter()
        try:
            while time.perf_counter() - started < seconds and not stop.is_set():
                _submit_one(base, photo, categories, rng)
                done += 1
        except Exception as exc:  # reported by the main thread
            errors.append(exc)
            stop.set()
            return
        rates.append(done / (time.perf_counter() - started))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"submission failed: {errors[0]}")
    return sum(rates)


@contextmanager
def _environment(**values: str):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value


# -- the reference -------------------------------------------------------------------------------


def _image_loop(photo: bytes, seconds: int) -> float:
    """Images per second that one process re-encodes, looping for `seconds`."""
    from app.media.images import process_image

    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        process_image(photo)
        done += 1
    return done / (time.perf_counter() - started)


def _image_rate(pool, photo: bytes, seconds: int, processes: int) -> float:
    return sum(pool.starmap(_image_loop, [(photo, seconds)] * processes))


# -- the benchmark -------------------------------------------------------------------------------


def run(config: BenchConfig) -> list[Result]:
    workers = int(os.environ.get("BENCH_WORKERS", os.cpu_count() or 2))
    photo = make_photo()
    print(f"   photo: {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG, {len(photo):,} bytes", flush=True)
    bench_url = make_database(database_url())
    media_root = tempfile.mkdtemp(prefix="qunfang-bench-media-")
    project: list[float] = []
    reference: list[float] = []
    try:
        app = bench_app(bench_url)
        migrate_and_load_demo(app)
        with app.app_context():
            from app.extensions import db
            from app.tips.service import categories as active_categories

            categories = [c.code for c in active_categories(db.session)]
            db.session.remove()
            db.engine.dispose()  # no connection of ours is inherited by the pool's processes
        server_env = _environment(
            DATABASE_URL=bench_url,
            MEDIA_ROOT=media_root,
            TIP_RATE_LIMIT=RAISED_LIMIT,
            MEDIA_RATE_LIMIT=RAISED_LIMIT,
        )
        # Forked now, while this process runs no other thread (the client threads come later).
        pool = multiprocessing.get_context("fork").Pool(workers)
        with pool, server_env, gunicorn(workers) as base:
            warm_up = random.Random(0)
            for _ in range(config.connections):
                _submit_one(base, photo, categories, warm_up)
            _image_rate(pool, photo, 1, workers)
            for _ in range(config.rounds):
                tips = _api_rate(base, photo, categories, config.seconds, config.connections)
                project.append(round(tips, 2))
                reference.append(round(_image_rate(pool, photo, config.seconds, workers), 2))
    finally:
        drop_database(bench_url)
        shutil.rmtree(media_root, ignore_errors=True)
    return [
        Result(
            name="anonymous tips with a 2 MB photo (upload + submit) vs photos re-encoded, per s",
            unit="per s",
            project=project,
            reference=reference,
            project_command=(
                f"gunicorn --workers {workers} wsgi:app; {config.connections} clients x "
                f"{config.seconds} s of POST /api/v1/media (multipart) + POST /api/v1/tips"
            ),
            reference_command=(
                f"{workers} processes x {config.seconds} s of "
                "app.media.images.process_image(photo) (images/s)"
            ),
            notes={
                "ratio per round": [
                    round(p / r, 3) for p, r in zip(project, reference, strict=True)
                ],
                "photo bytes": len(photo),
                "connections": config.connections,
                "workers": workers,
                "seconds per round": config.seconds,
            },
            target_ratio=None,
        )
    ]
