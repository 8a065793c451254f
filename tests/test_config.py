"""Settings come from the environment; production refuses development secrets."""

from __future__ import annotations

import pytest

from app.config import Config, ConfigError, local_secret

STRONG = "k" * 40
URL = "postgresql+psycopg://u:p@127.0.0.1:1/db"


@pytest.fixture
def env(monkeypatch):
    for name in (
        "QF_ENV",
        "SECRET_KEY",
        "JWT_SECRET_KEY",
        "ID_NUMBER_HASH_KEY",
        "TIP_FOLLOW_KEY",
        "CLUE_SIGNING_SECRET",
        "MAX_CONTENT_LENGTH",
        "IDEMPOTENCY_TTL_DAYS",
        "DATABASE_POOLER",
        "DATABASE_DIRECT_URL",
        "REPLICA_MAX_LAG_S",
        "REPLICA_CHECK_S",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", URL)
    return monkeypatch


def test_development_defaults_start(env):
    config = Config.from_env()
    assert config.ENV == "development"
    assert config.SQLALCHEMY_DATABASE_URI == URL
    # No ping per checkout: a round trip on every request (app/core/db.py, tests/
    # test_round_trips.py); dropped connections are handled when they fail.
    assert config.SQLALCHEMY_ENGINE_OPTIONS["pool_pre_ping"] is False
    assert (
        "plan_cache_mode=force_custom_plan"
        in (config.SQLALCHEMY_ENGINE_OPTIONS["connect_args"]["options"])
    )


@pytest.mark.parametrize(
    "missing",
    ["SECRET_KEY", "JWT_SECRET_KEY", "ID_NUMBER_HASH_KEY", "TIP_FOLLOW_KEY", "CLUE_SIGNING_SECRET"],
)
def test_production_refuses_an_unset_secret(env, missing):
    env.setenv("QF_ENV", "production")
    env.setenv("SECRET_KEY", STRONG + "s")
    env.setenv("JWT_SECRET_KEY", STRONG + "j")
    env.setenv("ID_NUMBER_HASH_KEY", STRONG + "i")
    env.setenv("TIP_FOLLOW_KEY", STRONG + "t")
    env.setenv("CLUE_SIGNING_SECRET", STRONG + "c")
    env.delenv(missing)
    with pytest.raises(ConfigError, match=missing):
        Config.from_env()


def test_production_refuses_a_shared_secret(env):
    env.setenv("QF_ENV", "production")
    for name in ("SECRET_KEY", "JWT_SECRET_KEY", "ID_NUMBER_HASH_KEY"):
        env.setenv(name, STRONG)
    env.setenv("TIP_FOLLOW_KEY", STRONG + "t")
    env.setenv("CLUE_SIGNING_SECRET", STRONG + "c")
    with pytest.raises(ConfigError, match="must all differ"):
        Config.from_env()


def test_development_secrets_are_the_checkouts_own_random_values(env):
    config = Config.from_env()
    assert config.SECRET_KEY == local_secret("SECRET_KEY")
    secrets = (
        config.SECRET_KEY,
        config.JWT_SECRET_KEY,
        config.ID_NUMBER_HASH_KEY,
        config.TIP_FOLLOW_KEY,
        config.CLUE_SIGNING_SECRET,
    )
    assert len(set(secrets)) == 5
    assert all(len(v) >= 32 for v in (config.SECRET_KEY, config.JWT_SECRET_KEY))


def test_production_refuses_a_short_secret(env):
    env.setenv("QF_ENV", "production")
    env.setenv("SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="32 characters"):
        Config.from_env()


def test_production_starts_with_strong_secrets(env):
    env.setenv("QF_ENV", "production")
    env.setenv("SECRET_KEY", STRONG)
    env.setenv("JWT_SECRET_KEY", STRONG + "j")
    env.setenv("ID_NUMBER_HASH_KEY", STRONG + "i")
    env.setenv("TIP_FOLLOW_KEY", STRONG + "t")
    env.setenv("CLUE_SIGNING_SECRET", STRONG + "c")
    assert Config.from_env().ENV == "production"


def test_settings_are_read_from_the_environment(env):
    env.setenv("MAX_CONTENT_LENGTH", "2048")
    env.setenv("IDEMPOTENCY_TTL_DAYS", "45")
    config = Config.from_env()
    assert (config.MAX_CONTENT_LENGTH, config.IDEMPOTENCY_TTL_DAYS) == (2048, 45)


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("MAX_CONTENT_LENGTH", "lots", "whole number"),
        ("IDEMPOTENCY_TTL_DAYS", "7", "at least 30"),
        ("ACCOUNT_DELETION_GRACE_DAYS", "91", "between 0 and 90"),
        ("QF_ENV", "staging", "QF_ENV"),
        ("MAP_TILE_CRS", "bd09", "MAP_TILE_CRS"),
        ("MAP_TILE_URL", "tiles/{z}/{x}/{y}.png", "MAP_TILE_URL"),
        ("CONSOLE_POLL_SECONDS", "0", "CONSOLE_POLL_SECONDS"),
        ("DATABASE_POOLER", "pgpool", "DATABASE_POOLER"),
        ("DATABASE_POOLER", "pgbouncer", "DATABASE_DIRECT_URL"),
        ("REPLICA_MAX_LAG_S", "0", "REPLICA_MAX_LAG_S"),
        ("REPLICA_MAX_LAG_S", "soon", "number"),
        ("REPLICA_CHECK_S", "30", "REPLICA_CHECK_S"),
        ("STORAGE_BACKEND", "gcs", "STORAGE_BACKEND must be local or s3"),
        ("STORAGE_BACKEND", "s3", "needs S3_BUCKET"),
        ("S3_ADDRESSING_STYLE", "dns", "S3_ADDRESSING_STYLE"),
        ("S3_KEY_PREFIX", "qunfang", "S3_KEY_PREFIX"),
        ("S3_KEY_PREFIX", "../x/", "S3_KEY_PREFIX"),
        ("S3_ACCESS_KEY_ID", "AKIA0000", "go together"),
        ("STORAGE_ORPHAN_GRACE_HOURS", "0", "at least 1"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(env, name, value, message):
    env.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        Config.from_env()


def test_behind_a_pooler_no_statement_is_prepared_and_no_startup_option_sent(env):
    env.setenv("DATABASE_POOLER", "pgbouncer")
    env.setenv("DATABASE_DIRECT_URL", "postgresql+psycopg://u:p@127.0.0.1:5432/qunfang")
    connect_args = Config.from_env().SQLALCHEMY_ENGINE_OPTIONS["connect_args"]
    assert connect_args["prepare_threshold"] is None
    assert "options" not in connect_args  # PgBouncer refuses the startup parameter
    env.delenv("DATABASE_POOLER")
    direct = Config.from_env().SQLALCHEMY_ENGINE_OPTIONS["connect_args"]
    assert "prepare_threshold" not in direct and "statement_timeout" in direct["options"]


def test_s3_storage_is_read_from_the_environment(env):
    for name, value in {
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "S3_BUCKET": "qunfang-files",
        "S3_REGION": "cn-north-1",
        "S3_KEY_PREFIX": "beijing/chaoyang/",
        "S3_ADDRESSING_STYLE": "path",
    }.items():
        env.setenv(name, value)
    config = Config.from_env()
    assert (config.STORAGE_BACKEND, config.S3_BUCKET, config.S3_KEY_PREFIX) == (
        "s3",
        "qunfang-files",
        "beijing/chaoyang/",
    )
    assert config.S3_ACCESS_KEY_ID == config.S3_SECRET_ACCESS_KEY == ""  # boto3's own chain


def test_unknown_override_is_refused(env):
    with pytest.raises(ConfigError, match="unknown setting"):
        Config.from_env(NOT_A_SETTING=1)


def test_a_missing_terms_text_stops_the_start(env, tmp_path):
    (tmp_path / "2027-01.zh-CN.md").write_text("条款", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"2027-01 in en"):
        Config.from_env(TERMS_DIR=str(tmp_path), TERMS_VERSION="2027-01")
    (tmp_path / "2027-01.en.md").write_text("Terms", encoding="utf-8")
    assert Config.from_env(TERMS_DIR=str(tmp_path), TERMS_VERSION="2027-01").TERMS_DIR
