"""Push providers' settings (APNS_*, JPUSH_*): all of a provider's or none, checked at start."""

from __future__ import annotations

import pytest

from app.config import Config, ConfigError
from tests.fakes import apns as fake_apns

URL = "postgresql+psycopg://u:p@127.0.0.1:1/db"
NAMES = (
    "APNS_KEY_FILE",
    "APNS_KEY_ID",
    "APNS_TEAM_ID",
    "APNS_TOPIC",
    "APNS_SANDBOX",
    "APNS_ENDPOINT",
    "JPUSH_APP_KEY",
    "JPUSH_MASTER_SECRET",
    "JPUSH_ENDPOINT",
)


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in ("QF_ENV", *NAMES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", URL)
    fake = fake_apns.FakeApns()
    monkeypatch.setenv("APNS_KEY_FILE", str(fake.key_file(tmp_path)))
    monkeypatch.setenv("APNS_KEY_ID", fake.key_id)
    monkeypatch.setenv("APNS_TEAM_ID", fake.team_id)
    monkeypatch.setenv("APNS_TOPIC", "cn.qunfang.app")
    monkeypatch.setenv("JPUSH_APP_KEY", "a1b2c3d4e5f6a1b2c3d4e5f6")
    monkeypatch.setenv("JPUSH_MASTER_SECRET", "f6e5d4c3b2a1f6e5d4c3b2a1")
    return monkeypatch


def test_providers_settings_are_read_from_the_environment(env):
    env.setenv("APNS_SANDBOX", "true")
    env.setenv("JPUSH_ENDPOINT", "https://bjapi.push.jiguang.cn")
    config = Config.from_env()
    assert config.APNS_TOPIC == "cn.qunfang.app"
    assert config.APNS_SANDBOX is True
    assert config.JPUSH_ENDPOINT == "https://bjapi.push.jiguang.cn"


def test_without_any_provider_settings_the_app_starts(env):
    for name in NAMES:
        env.delenv(name, raising=False)
    config = Config.from_env()
    assert (config.APNS_KEY_FILE, config.JPUSH_APP_KEY) == ("", "")


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("APNS_TOPIC", "", "APNS_TOPIC unset"),
        ("APNS_KEY_ID", "", "APNS_KEY_ID unset"),
        ("APNS_KEY_ID", "abc", "10-character"),
        ("APNS_TEAM_ID", "team", "team id"),
        ("APNS_KEY_FILE", "/nonexistent/AuthKey.p8", "not a readable .p8"),
        ("APNS_SANDBOX", "maybe", "true or false"),
        ("APNS_ENDPOINT", "api.push.apple.com", "URL of a host"),
        ("JPUSH_MASTER_SECRET", "", "together"),
        ("JPUSH_ENDPOINT", "https://api.jpush.cn/v3/push", "URL of a host"),
    ],
)
def test_bad_provider_settings_are_refused_with_a_reason(env, name, value, message):
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        Config.from_env()


def test_an_apns_key_that_is_not_p256_is_refused(env, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "AuthKey_RSA.p8"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    env.setenv("APNS_KEY_FILE", str(path))
    with pytest.raises(ConfigError, match="EC P-256"):
        Config.from_env()
