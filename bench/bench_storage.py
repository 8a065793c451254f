"""Files in object storage (#18 item 1): a photo uploaded and downloaded through the API with
the files on the local disk, on S3, and the same bytes through boto3 alone.

One throw-away database of the dev cluster's server (made and dropped here), migrated with the
demo data, one volunteer; the S3 side is moto's server (tests/fakes/s3.py: the S3 REST API in a
subprocess on 127.0.0.1, the server the tests use). The application answers in process through
Flask's test client (no HTTP server of ours: the figure is the request path's own work), rounds
interleaved, `BENCH_REQUESTS` (default 100) pairs a side and round:

- api_local, api_s3: `POST /api/v1/media` of a 1600x1200 JPEG (decoded, re-encoded, thumbnail,
  two objects, one row) then `GET /api/v1/media/{id}` (access check, audit-free owner read,
  streamed from the store); the pair's latency;
- raw_boto3: `put_object` of the stored re-encoding and its thumbnail, then `get_object` of the
  photo read to the end, one boto3 client on the same server.

Figures are p50 latencies (ms) of a pair. Two results: S3 against local (what the network store
costs the API; moto is a Python server, far slower than MinIO or a cloud store, so this is an
upper bound), and the API on S3 against raw boto3 (what the API adds over the store's own
round trips: mostly the re-encoding). No targets.
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
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
from tests.support.people import add_volunteer, bearer

COMMUNITY = "110105001024"


def _requests() -> int:
    return int(os.environ.get("BENCH_REQUESTS", 100))


def _photo() -> bytes:
    from PIL import Image

    image = Image.effect_noise((1600, 1200), 64).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _volunteer_headers(app) -> dict[str, str]:
    from app.extensions import db

    with app.app_context():
        user_id = add_volunteer(
            db.session.connection(), phone="13700000001", name="压测用户", home_code=COMMUNITY
        )
        db.session.commit()
    return bearer(app, user_id)


def _api_round(app, settings: dict, headers, photo: bytes, count: int) -> list[float]:
    app.config.update(settings)
    client = app.test_client()
    pairs = []
    for _ in range(count):
        started = time.perf_counter()
        posted = client.post(
            "/api/v1/media",
            data={"file": (io.BytesIO(photo), "photo.jpg")},
            headers=headers,
            content_type="multipart/form-data",
        )
        assert posted.status_code == 201, posted.get_json()
        got = client.get(f"/api/v1/media/{posted.get_json()['id']}", headers=headers)
        assert got.status_code == 200 and len(got.get_data()) > 0
        pairs.append((time.perf_counter() - started) * 1000)
    return pairs


def _raw_round(client, bucket: str, full: bytes, thumb: bytes, count: int) -> list[float]:
    pairs = []
    for n in range(count):
        key = f"raw/{uuid.uuid4()}"
        started = time.perf_counter()
        client.put_object(Bucket=bucket, Key=f"{key}-full.jpg", Body=full)
        client.put_object(Bucket=bucket, Key=f"{key}-thumb.jpg", Body=thumb)
        body = client.get_object(Bucket=bucket, Key=f"{key}-full.jpg")["Body"]
        assert len(body.read()) == len(full), n
        pairs.append((time.perf_counter() - started) * 1000)
    return pairs


def run(config: BenchConfig) -> list[Result]:
    from app.extensions import limiter
    from app.media.images import process_image
    from tests.fakes.s3 import S3Server

    url = make_database(database_url())
    server = S3Server().start()
    try:
        with tempfile.TemporaryDirectory(prefix="qf-bench-storage-") as scratch:
            app = bench_app(url)
            migrate_and_load_demo(app)
            headers = _volunteer_headers(app)
            limiter.enabled = False  # hundreds of uploads a minute from one client are the point
            bucket = server.new_bucket("qf-bench")
            sides = {
                "api_local": {
                    "STORAGE_BACKEND": "local",
                    "MEDIA_ROOT": os.path.join(scratch, "media"),
                },
                "api_s3": server.settings(bucket),
            }
            photo = _photo()
            image = process_image(photo, max_pixels=app.config["MEDIA_MAX_PIXELS"])
            count = _requests()
            p50 = {side: [] for side in (*sides, "raw_boto3")}
            p99 = {side: [] for side in p50}
            for _ in range(config.rounds):
                for side, settings in sides.items():
                    values = _api_round(app, settings, headers, photo, count)
                    p50[side].append(round(statistics.median(values), 2))
                    p99[side].append(round(percentile(values, 0.99), 2))
                values = _raw_round(server.client(), bucket, image.content, image.thumbnail, count)
                p50["raw_boto3"].append(round(statistics.median(values), 2))
                p99["raw_boto3"].append(round(percentile(values, 0.99), 2))
    finally:
        server.stop()
        drop_database(url)
    api = "POST /api/v1/media + GET /api/v1/media/{id} (test client)"
    notes = {
        **{f"p99 {side}": values for side, values in p99.items()},
        "photo": f"1600x1200 JPEG, {len(photo)} bytes in, {len(image.content)} stored",
        "S3 server": "moto_server on 127.0.0.1 (a Python server: an upper bound for S3's cost)",
    }
    return [
        Result(
            name=f"photo upload+download: p50 latency, S3 vs local ({count} pairs a round)",
            unit="ms",
            project=p50["api_s3"],
            reference=p50["api_local"],
            project_command=f"{api}, STORAGE_BACKEND=s3",
            reference_command=f"{api}, STORAGE_BACKEND=local",
            notes=notes,
            higher_is_better=False,
            key="storage.s3_vs_local",
        ),
        Result(
            name=f"photo upload+download: p50 latency, API on S3 vs raw boto3 ({count} pairs)",
            unit="ms",
            project=p50["api_s3"],
            reference=p50["raw_boto3"],
            project_command=f"{api}, STORAGE_BACKEND=s3",
            reference_command="boto3 put_object x2 (photo, thumbnail) + get_object, same server",
            notes=notes,
            higher_is_better=False,
            key="storage.api_vs_boto3",
        ),
    ]
