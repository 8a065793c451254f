"""`flask open311 add-client` and `disable-client`."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from app.open311.models import ApiClient
from tests.open311.conftest import JIANWAI


@pytest.fixture
def cli(app, session):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=list(args), catch_exceptions=False)


def post_report(client, key):
    lon, lat = JIANWAI
    form = {"api_key": key, "service_code": "traffic", "lat": lat, "long": lon}
    return client.post("/open311/v2/requests.json", data={**form, "description": "占道停车"})


def test_add_client_prints_a_key_once_and_keeps_only_its_digest(cli, session, client):
    result = cli("open311", "add-client", "街道随手拍")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert len(key) >= 43  # 32 random bytes, base64url
    stored = session.scalar(select(ApiClient).where(ApiClient.name == "街道随手拍"))
    assert stored.active
    assert stored.key_digest == hashlib.sha256(key.encode()).digest()
    assert key.encode() not in stored.key_digest
    assert post_report(client, key).status_code == 200

    again = cli("open311", "add-client", "other app")
    assert again.stdout.strip() != key


def test_a_name_is_registered_once(cli):
    assert cli("open311", "add-client", "app").exit_code == 0
    result = cli("open311", "add-client", "app")
    assert result.exit_code != 0
    assert "exists" in result.output


def test_disable_client_makes_its_key_a_403(cli, session, client):
    key = cli("open311", "add-client", "old app").stdout.strip()
    result = cli("open311", "disable-client", "old app")
    assert result.exit_code == 0, result.output
    assert not session.scalar(select(ApiClient.active).where(ApiClient.name == "old app"))
    assert post_report(client, key).status_code == 403


def test_disabling_an_unknown_client_fails(cli):
    result = cli("open311", "disable-client", "nobody")
    assert result.exit_code != 0
    assert "No client named" in result.output
