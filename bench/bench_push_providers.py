"""Push providers: APNs and JPush senders' throughput against their fakes, beside bare clients.

No database: each round sends BENCH_PUSHES (default 10,000) pushes, a task's fan-out, from one
process to the local fakes of tests/fakes/, which hold every request BENCH_PUSH_DELAY_MS
(default 20) as the real services' round trip would.

- apns: `notifications.apns.ApnsSender.send` (ES256 provider token, at most 100 streams in flight
  on one HTTP/2 connection, an outcome per push) to tests/fakes/apns.py (h2, verifying every
  JWT). The reference is a bare httpx AsyncClient on HTTP/2 sending the same prebuilt requests
  with the same bound of 100 in flight, reading only the status: what the sender's own work
  (payload, headers, outcomes, the thread hop to its loop) costs. Target: ratio >= 0.8.
- jpush: `notifications.jpush.JPushSender.send` (the official SDK, pushes of one content in
  batches of 1000 registration ids) to tests/fakes/jpush.py. The reference posts the same
  batches' JSON with a bare requests.Session, one after the other. No target: it shows what
  batching makes of 10,000 pushes (10 requests).
Measured: pushes per second, the median of BENCH_ROUNDS rounds, the two sides interleaved.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, BenchConfig, Result, bare_apns_seconds, push_batch


def apns(config: BenchConfig, count: int, delay_s: float) -> Result:
    from notifications.apns import CONCURRENCY, ApnsSender
    from tests.fakes import apns as fake_apns

    tokens = [fake_apns.device_token() for _ in range(count)]
    pushes = push_batch(count, tokens.__getitem__)
    project, reference = [], []
    with fake_apns.running(delay_s=delay_s) as fake, tempfile.TemporaryDirectory() as tmp:
        sender = ApnsSender(
            str(fake.key_file(Path(tmp))), fake.key_id, fake.team_id, fake.topic, fake.base_url
        )
        headers = {
            "authorization": f"bearer {sender._token.get()}",
            "apns-topic": fake.topic,
            "apns-push-type": "alert",
            "apns-priority": "5",
            "apns-expiration": str(int(time.time()) + 3600),
            "content-type": "application/json",
        }
        try:
            for _ in range(config.rounds):
                started = time.monotonic()
                outcomes = sender.send(pushes)
                elapsed = time.monotonic() - started
                if any(o.status != "sent" for o in outcomes):
                    raise SystemExit("the sender's APNs pushes failed")
                project.append(round(count / elapsed))
                seconds = bare_apns_seconds(fake.base_url, headers, pushes, CONCURRENCY)
                reference.append(round(count / seconds))
        finally:
            sender.close()
        connections = fake.connections
    return Result(
        name=f"{count:,} pushes to the fake APNs (HTTP/2, +{delay_s * 1000:g} ms a request)",
        unit="pushes/s",
        project=project,
        reference=reference,
        project_command="notifications.apns.ApnsSender.send (100 streams in flight, 1 connection)",
        reference_command="bare httpx.AsyncClient(http2=True), 100 in flight, same requests",
        notes={"connections the fake saw (both sides, all rounds)": connections},
        target_ratio=0.8,
    )


def jpush(config: BenchConfig, count: int, delay_s: float) -> Result:
    import requests

    from notifications.jpush import BATCH, JPushSender
    from tests.fakes import jpush as fake_jpush

    pushes = push_batch(count, lambda n: f"1a0018970a{n:09d}")
    project, reference = [], []
    with fake_jpush.running(delay_s=delay_s) as fake:
        sender = JPushSender(fake.app_key, fake.master_secret, endpoint=fake.base_url)
        bodies = [
            json.dumps(
                {
                    "platform": "all",
                    "audience": {"registration_id": [p.token for p in pushes[i : i + BATCH]]},
                    "notification": {"alert": pushes[0].body},
                }
            )
            for i in range(0, count, BATCH)
        ]
        session = requests.Session()
        session.auth = (fake.app_key, fake.master_secret)
        for _ in range(config.rounds):
            started = time.monotonic()
            outcomes = sender.send(pushes)
            elapsed = time.monotonic() - started
            if any(o.status != "sent" for o in outcomes):
                raise SystemExit("the sender's JPush pushes failed")
            project.append(round(count / elapsed))
            started = time.monotonic()
            for body in bodies:
                if session.post(f"{fake.base_url}/v3/push", data=body).status_code != 200:
                    raise SystemExit("the reference's JPush requests failed")
            reference.append(round(count / (time.monotonic() - started)))
    return Result(
        name=f"{count:,} pushes of one content to the fake JPush "
        f"(+{delay_s * 1000:g} ms a request)",
        unit="pushes/s",
        project=project,
        reference=reference,
        project_command="notifications.jpush.JPushSender.send (official SDK, batches of 1000, "
        "4 at a time)",
        reference_command="bare requests.Session, the same batches one after the other",
    )


def run(config: BenchConfig) -> list[Result]:
    sys.path.insert(0, str(ROOT))
    count = int(os.environ.get("BENCH_PUSHES", 10_000))
    delay_s = float(os.environ.get("BENCH_PUSH_DELAY_MS", 20)) / 1000
    return [apns(config, count, delay_s), jpush(config, count, delay_s)]
