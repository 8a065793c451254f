"""Settings, all from the environment (documented in README.md, "Configuration").

Development defaults are safe for a laptop: secrets left unset are random values kept in
var/secrets/ (never in the code). Production mode (`QF_ENV=production`) refuses to start unless
every secret is set, long and distinct.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.core import private_files

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The private dev cluster of `make run` (scripts/db.sh): the owner role's URL (migrations) and
# the application role's (everything else).
DEV_DATABASE_URL_FILE = PROJECT_ROOT / "var" / "pg" / "dev.app.url"
DEV_OWNER_URL_FILE = PROJECT_ROOT / "var" / "pg" / "dev.url"
LOCAL_SECRETS_DIR = PROJECT_ROOT / "var" / "secrets"
SECRET_SETTINGS = (
    "SECRET_KEY",
    "JWT_SECRET_KEY",
    "ID_NUMBER_HASH_KEY",
    "TIP_FOLLOW_KEY",
    "CLUE_SIGNING_SECRET",
)


# All or none: Tencent Cloud SMS sends only with every one of them.
TENCENT_SMS_CREDENTIALS = (
    "TENCENT_SMS_SECRET_ID",
    "TENCENT_SMS_SECRET_KEY",
    "TENCENT_SMS_SDK_APP_ID",
    "TENCENT_SMS_SIGN_NAME",
    "TENCENT_SMS_TEMPLATE_ID",
)
# Retention settings (days): default, lowest, highest. The lowest keep what a purpose still
# needs: a closed tip may be reopened or batched within weeks; a phone offline a week keeps its
# token; an idle refresh session may be revived; the police take weeks to read a batch; audit
# logs are kept at least six months by law (Cybersecurity Law Art. 21; the database refuses
# younger cutoffs too, migration 0016).
RETENTION_DAYS = {
    "TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE": (180, 30, 3650),
    "CLOSED_TIP_PHOTO_DAYS": (365, 30, 3650),
    "DEVICE_INACTIVE_DAYS": (90, 7, 730),
    "NOTIFICATION_RETENTION_DAYS": (180, 7, 3650),
    "SESSION_RETENTION_DAYS": (30, 1, 400),
    "BATCH_FILE_DAYS_AFTER_ACK": (90, 7, 3650),
    "AUDIT_RETENTION_DAYS": (365, 183, 3650),
}
_QUIET_HOURS = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d")


class ConfigError(RuntimeError):
    """The settings cannot run the application."""


# The languages every version of the terms is published in (GET /api/v1/terms answers both).
TERMS_LANGUAGES = ("zh-CN", "en")


def terms_path(directory: str, version: str, language: str) -> Path:
    return Path(directory) / f"{version}.{language}.md"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def local_secret(name: str) -> str:
    """A random secret of this checkout (var/secrets/<name>, mode 0600 in a 0700 directory),
    made on first use, so that no development secret is ever published with the code."""
    path = LOCAL_SECRETS_DIR / name.lower()
    private_files.ensure_dir(LOCAL_SECRETS_DIR, private_files.SECRET_DIR_MODE)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        try:
            handle = private_files.open_new(path, private_files.SECRET_FILE_MODE)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with handle:
            handle.write(secrets.token_urlsafe(48).encode())
        return path.read_text().strip()


def _secret(name: str, env: str) -> str:
    """A secret from the environment; outside production, the checkout's own when unset."""
    value = os.environ.get(name, "")
    if value or env == "production":
        return value
    return local_secret(name)


def _dev_cluster_url(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    raise ConfigError(
        "DATABASE_URL is not set and the private dev cluster has not been created: "
        "run `make run` (or `scripts/db.sh ensure dev`), or set DATABASE_URL"
    )


def default_database_url() -> str:
    """The application's role: DATABASE_URL, or else the private dev cluster's application role
    (scripts/db.sh), a role that owns nothing."""
    return os.environ.get("DATABASE_URL") or _dev_cluster_url(DEV_DATABASE_URL_FILE)


def default_migration_database_url() -> str:
    """The role migrations run as, which owns the schema: MIGRATION_DATABASE_URL, or else the
    private dev cluster's owner when DATABASE_URL is unset, or else DATABASE_URL itself (one role
    for everything: the app could then alter its own tables; see README, "Database roles")."""
    url = os.environ.get("MIGRATION_DATABASE_URL")
    if url:
        return url
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    return _dev_cluster_url(DEV_OWNER_URL_FILE)


def database_connect_args(
    *,
    connect_timeout_s: int,
    statement_timeout_s: int,
    idle_in_transaction_s: int,
    jit: bool = False,
    pooler: str = "",
) -> dict:
    """psycopg connection arguments that bound how long the database can keep us waiting.

    `connect_timeout` bounds connecting; the server ends a statement after `statement_timeout`
    (the request answers 503 "timed-out") and a session left idle inside a transaction (holding
    its locks) after `idle_in_transaction` (0: never). TCP keepalives find a peer that vanished
    from the network within about a minute (they cannot find a server that is alive but frozen:
    the kernel still answers; the gunicorn worker timeout bounds that, see gunicorn.conf.py).

    JIT compilation is off unless asked for: PostGIS gives its functions high costs (so that
    indexes win), which lifts short statements past `jit_above_cost`, and compiling then costs
    more than the statement (nearest volunteers among 1,000,000: 12 ms without, 500 ms with).

    Statements are planned for their values (`plan_cache_mode`): psycopg prepares a statement
    run five times on a connection, and PostgreSQL would then switch to a generic plan, which
    guesses a time window at 0.5% of the rows and gives up the parallel scan a district-wide
    month needs (bench/bench_grid.py); planning costs 1-3 ms, a wrong plan seconds. As a
    connection setting it costs no round trip (it was a `SET LOCAL` per aggregate).

    Behind PgBouncer in transaction mode (`pooler="pgbouncer"`) a client connection is not a
    server session: consecutive transactions run on different server connections. psycopg's
    prepared statements (named, per server session) would then be missing or stale, so none
    are made (`prepare_threshold=None`); and PgBouncer refuses the `options` startup
    parameter, so the settings above are the pooler's to set on each server connection it
    opens (scripts/pgbouncer.sh writes them as its `connect_query`;
    docs/replica-and-pooling.md).
    """
    if pooler:
        return {
            "connect_timeout": connect_timeout_s,
            "prepare_threshold": None,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
    return {
        "connect_timeout": connect_timeout_s,
        "options": (
            f"-c statement_timeout={statement_timeout_s * 1000} "
            f"-c idle_in_transaction_session_timeout={idle_in_transaction_s * 1000} "
            f"-c jit={'on' if jit else 'off'} "
            "-c plan_cache_mode=force_custom_plan"
        ),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }


@dataclass
class Config:
    """Everything the application reads at start-up. Upper-case fields become Flask config keys."""

    ENV: str = "development"
    SECRET_KEY: str = ""
    JWT_SECRET_KEY: str = ""
    SQLALCHEMY_DATABASE_URI: str = ""
    SQLALCHEMY_ENGINE_OPTIONS: dict = field(default_factory=dict)
    # Migrations (`flask db upgrade`) run as this role, which owns the tables; the application
    # runs as SQLALCHEMY_DATABASE_URI's role, which owns nothing (migrations/env.py grants it).
    MIGRATION_DATABASE_URI: str = ""
    # Heavy reads (grid aggregates, coverage, compliance, the public heatmap, exports, clue-batch
    # building) go to this streaming replica while it lags at most REPLICA_MAX_LAG_S; a lag
    # check is trusted for REPLICA_CHECK_S (app/core/replica.py). Empty: everything on the
    # primary.
    DATABASE_REPLICA_URL: str = ""
    REPLICA_MAX_LAG_S: float = 10.0
    REPLICA_CHECK_S: float = 1.0
    # `pgbouncer` when DATABASE_URL (and DATABASE_REPLICA_URL) reach PostgreSQL through
    # PgBouncer in transaction mode: no prepared statements, no session settings sent at
    # connect; what needs a session of its own (LISTEN) uses DATABASE_DIRECT_URL.
    DATABASE_POOLER: str = ""
    DATABASE_DIRECT_URL: str = ""
    MAX_CONTENT_LENGTH: int = 1024 * 1024
    # A job's statements may run this long (requests: DB_STATEMENT_TIMEOUT_S); a worker without
    # a heartbeat for JOB_STALLED_AFTER_S is dead, and its running jobs are retried.
    JOB_STATEMENT_TIMEOUT_S: int = 900
    JOB_STALLED_AFTER_S: int = 30
    # Limits hold across processes and hosts only in a shared store (`make run` starts a private
    # redis, scripts/redis.sh). A store that stops answering costs a request at most the socket
    # timeouts below; meanwhile each process counts in its own memory, and goes back to the
    # store when it answers again.
    RATELIMIT_STORAGE_URI: str = "memory://"
    RATELIMIT_STORAGE_OPTIONS: dict = field(
        default_factory=lambda: {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    )
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED: bool = True
    RATELIMIT_DEFAULT: str = ""
    RATELIMIT_ENABLED: bool = True
    IDEMPOTENCY_TTL_DAYS: int = 30
    ID_NUMBER_HASH_KEY: str = ""
    ACCESS_TOKEN_MINUTES: int = 15
    REFRESH_TOKEN_DAYS: int = 30
    # Each process keeps the identity of a token's caller (session, user, areas) this long at
    # most; changes reach every process at once through PostgreSQL notifications
    # (app/auth/identity_cache.py). 0: every request reads it from the database.
    AUTH_CACHE_SECONDS: int = 60
    ARGON2_TIME_COST: int = 3
    ARGON2_MEMORY_KIB: int = 65536
    TERMS_VERSION: str = "2026-11"
    # The terms' texts, one file per version and language: <version>.zh-CN.md, <version>.en.md.
    TERMS_DIR: str = str(Path(__file__).resolve().parent / "auth" / "terms")
    # Sign-in attempts (app/auth/login_limits.py): without a device token, per account and per
    # client; with the device token of an earlier login, per device only.
    LOGIN_RATE_LIMIT: str = "5 per minute;20 per hour;100 per day"
    LOGIN_CLIENT_RATE_LIMIT: str = "30 per minute"
    LOGIN_DEVICE_RATE_LIMIT: str = "10 per minute;50 per hour"
    LOGIN_DEVICE_DAYS: int = 180
    REGISTER_RATE_LIMIT: str = "10 per hour"
    VISIT_RATE_LIMIT: str = "30 per minute"
    # Tips: the follow secret of an anonymous tip is an HMAC of its id under this key, so the
    # database never holds it. Changing the key invalidates every follow secret handed out.
    TIP_FOLLOW_KEY: str = ""
    TIP_RATE_LIMIT: str = "10 per hour;30 per day"
    FOLLOW_RATE_LIMIT: str = "30 per minute"
    NEARBY_RATE_LIMIT: str = "60 per hour"
    MEDIA_ROOT: str = str(PROJECT_ROOT / "var" / "media")
    MEDIA_MAX_BYTES: int = 15 * 1024 * 1024
    MEDIA_MAX_PIXELS: int = 40_000_000
    MEDIA_RATE_LIMIT: str = "60 per hour"
    UNATTACHED_MEDIA_HOURS: int = 24
    # A deleted account is erased this long after the request; signing in meanwhile cancels it.
    ACCOUNT_DELETION_GRACE_DAYS: int = 7
    # Registration refuses people under 18 (their age from the ID number's birth date); with
    # this on, a minor registers with a guardian's recorded consent instead.
    MINORS_ALLOWED_WITH_GUARDIAN: bool = False
    # Phone numbers and real names are encrypted at rest (app/core/field_crypto.py): the master
    # key file (never in the database) and the keyring of wrapped data keys. Outside production
    # both are made on first use under var/secrets; production refuses to start without them.
    FIELD_KEY_FILE: str = str(LOCAL_SECRETS_DIR / "field-key")
    FIELD_KEYRING_FILE: str = str(LOCAL_SECRETS_DIR / "field-keyring.json")
    OPEN311_RATE_LIMIT: str = "120 per minute;5000 per day"
    # Clue batches: the Ed25519 signing key is derived from this secret (its public half is
    # published at /api/v1/clue-batches/signing-key); files go under EXPORT_ROOT.
    CLUE_SIGNING_SECRET: str = ""
    EXPORT_ROOT: str = str(PROJECT_ROOT / "var" / "exports")
    # Files (app/storage/): `local` keeps photos under MEDIA_ROOT and batch files and data
    # archives under EXPORT_ROOT; `s3` keeps them in S3_BUCKET of an S3-compatible store (any
    # number of app nodes and workers share it), EXPORT_ROOT being then only the scratch folder
    # where a worker builds a ZIP before uploading it. Without S3_ACCESS_KEY_ID/SECRET, boto3's
    # own chain (AWS_* variables, ~/.aws, an instance role) supplies the credentials.
    STORAGE_BACKEND: str = "local"
    S3_ENDPOINT_URL: str = ""
    S3_BUCKET: str = ""
    S3_REGION: str = ""
    S3_ACCESS_KEY_ID: str = ""
    S3_SECRET_ACCESS_KEY: str = ""
    S3_KEY_PREFIX: str = ""
    S3_ADDRESSING_STYLE: str = "auto"
    # Objects no row points to (a crash between the upload and the commit) are swept once older
    # than this: far longer than any transaction or build that may still be about to commit.
    STORAGE_ORPHAN_GRACE_HOURS: int = 24
    # Creating a batch freezes its tips in the request: 100,000 took 11 s on a loaded 2-core
    # machine (bench/bench_clue_batch.py), well inside WEB_TIMEOUT_S (30 s).
    MAX_BATCH_TIPS: int = 100_000
    # Patrols: raw fixes are kept this long (whole monthly partitions are dropped after it);
    # patrols' summaries and tracks stay.
    CHECKIN_RETENTION_DAYS: int = 180
    CHECKIN_POOR_ACCURACY_M: int = 100
    CHECKIN_MAX_SPEED_MPS: int = 40
    PATROL_IDLE_HOURS: int = 12
    CHECKPOINT_GRACE_MINUTES: int = 30
    # Service hours: a gap between two fixes counts up to SERVICE_MAX_GAP_MINUTES; a volunteer's
    # day (in SERVICE_TIMEZONE) counts up to SERVICE_DAILY_CAP_HOURS.
    SERVICE_MAX_GAP_MINUTES: int = 10
    SERVICE_DAILY_CAP_HOURS: int = 8
    SERVICE_TIMEZONE: str = "Asia/Shanghai"
    # Push: FCM through firebase-admin when a service-account file is given, else a logging
    # sender. FCM_ENDPOINT (tests, benchmarks) sends to a local FCM-compatible server instead.
    FCM_CREDENTIALS_FILE: str = ""
    FCM_PROJECT_ID: str = ""
    FCM_ENDPOINT: str = ""
    # SMS fallback (app/tasks/fallback.py): an urgent task's notification not received
    # within SMS_FALLBACK_AFTER_S is sent by SMS to volunteers who consented, at most
    # SMS_DAILY_LIMIT a day (in SERVICE_TIMEZONE) each; SMS_QUIET_HOURS ("22:00-07:00", local,
    # empty for none) hold back SMS of non-urgent kinds only. Tencent Cloud SMS sends when its
    # credentials are given, else a logging sender records each SMS as `logged`.
    SMS_FALLBACK_AFTER_S: int = 60
    SMS_DAILY_LIMIT: int = 3
    SMS_QUIET_HOURS: str = "22:00-07:00"
    TENCENT_SMS_SECRET_ID: str = ""
    TENCENT_SMS_SECRET_KEY: str = ""
    TENCENT_SMS_SDK_APP_ID: str = ""
    TENCENT_SMS_SIGN_NAME: str = ""
    TENCENT_SMS_TEMPLATE_ID: str = ""
    TENCENT_SMS_REGION: str = "ap-guangzhou"
    TENCENT_SMS_ENDPOINT: str = ""
    # APNs directly (iPhones; notifications/apns.py): a .p8 signing key, its key id, the team
    # id and the app's bundle id, all four or none; without them iPhones' pushes are logged.
    # APNS_SANDBOX sends to Apple's development service; APNS_ENDPOINT (tests, benchmarks) to
    # a local APNs-compatible server.
    APNS_KEY_FILE: str = ""
    APNS_KEY_ID: str = ""
    APNS_TEAM_ID: str = ""
    APNS_TOPIC: str = ""
    APNS_SANDBOX: bool = False
    APNS_ENDPOINT: str = ""
    # JPush (Android phones without Google services; notifications/jpush.py): the JPush app's
    # key and master secret, both or none. JPUSH_ENDPOINT: another JPush host (the Beijing
    # zone's https://bjapi.push.jiguang.cn; tests: a local fake).
    JPUSH_APP_KEY: str = ""
    JPUSH_MASTER_SECRET: str = ""
    JPUSH_ENDPOINT: str = ""
    # A volunteer's on-duty position is kept this long after its last report.
    DUTY_POSITION_MINUTES: int = 120
    # Retention of personal information (docs/privacy.md, "Data inventory and retention";
    # enforced by the jobs of app/privacy/jobs.py). Days, counted from the moment named.
    TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE: int = RETENTION_DAYS[
        "TIP_REPORTER_CONTACT_DAYS_AFTER_CLOSE"
    ][0]
    CLOSED_TIP_PHOTO_DAYS: int = RETENTION_DAYS["CLOSED_TIP_PHOTO_DAYS"][0]
    DEVICE_INACTIVE_DAYS: int = RETENTION_DAYS["DEVICE_INACTIVE_DAYS"][0]
    NOTIFICATION_RETENTION_DAYS: int = RETENTION_DAYS["NOTIFICATION_RETENTION_DAYS"][0]
    SESSION_RETENTION_DAYS: int = RETENTION_DAYS["SESSION_RETENTION_DAYS"][0]
    BATCH_FILE_DAYS_AFTER_ACK: int = RETENTION_DAYS["BATCH_FILE_DAYS_AFTER_ACK"][0]
    AUDIT_RETENTION_DAYS: int = RETENTION_DAYS["AUDIT_RETENTION_DAYS"][0]
    # A radius task nobody has answered shows staff no count of recipients below this.
    TASK_MIN_COUNT_SHOWN: int = 5
    # The public heatmap publishes a cell only with at least this many distinct reporters.
    HEATMAP_MIN_REPORTERS: int = 5
    HEATMAP_RATE_LIMIT: str = "60 per minute"
    PROXY_HOPS: int = 0
    # The staff console's base map (docs/console.md): a tile URL template ({z}/{x}/{y}) and the
    # coordinate system its tiles are drawn in; empty draws the area outlines instead (offline).
    MAP_TILE_URL: str = ""
    MAP_TILE_CRS: str = "wgs84"
    # An open triage queue asks for new tips this often.
    CONSOLE_POLL_SECONDS: int = 15
    LOG_LEVEL: str = "INFO"
    TESTING: bool = False

    @classmethod
    def from_env(cls, **overrides) -> Config:
        """Read the environment; `overrides` (tests, tools) win over it."""
        env = os.environ.get("QF_ENV", "development")
        app_url = overrides.pop("SQLALCHEMY_DATABASE_URI", None)
        pooler = overrides.pop("DATABASE_POOLER", None)
        if pooler is None:
            pooler = os.environ.get("DATABASE_POOLER", "")
        config = cls(
            ENV=env,
            SECRET_KEY=_secret("SECRET_KEY", env),
            JWT_SECRET_KEY=_secret("JWT_SECRET_KEY", env),
            ID_NUMBER_HASH_KEY=_secret("ID_NUMBER_HASH_KEY", env),
            TIP_FOLLOW_KEY=_secret("TIP_FOLLOW_KEY", env),
            CLUE_SIGNING_SECRET=_secret("CLUE_SIGNING_SECRET", env),
            SQLALCHEMY_DATABASE_URI=app_url or default_database_url(),
            # A caller that names the app's database (tests, tools) names the owner's too, or
            # migrates as the app's role (empty: the same URL).
            MIGRATION_DATABASE_URI=overrides.pop("MIGRATION_DATABASE_URI", None)
            or ("" if app_url else default_migration_database_url()),
            SQLALCHEMY_ENGINE_OPTIONS={
                # No ping before each checkout (a round trip on every request): a connection
                # the server dropped (restart, failover) fails its first statement, which
                # invalidates the whole pool; the request is retried once on a new connection
                # when it only reads, else answered 503 with Retry-After (app/core/db.py).
                "pool_pre_ping": False,
                "pool_size": _env_int("DB_POOL_SIZE", 5),
                "max_overflow": _env_int("DB_MAX_OVERFLOW", 5),
                "pool_timeout": _env_int("DB_POOL_TIMEOUT_S", 5),
                "connect_args": database_connect_args(
                    connect_timeout_s=_env_int("DB_CONNECT_TIMEOUT_S", 3),
                    statement_timeout_s=_env_int("DB_STATEMENT_TIMEOUT_S", 15),
                    idle_in_transaction_s=_env_int("DB_IDLE_IN_TRANSACTION_TIMEOUT_S", 60),
                    jit=os.environ.get("DB_JIT", "off") == "on",
                    pooler=pooler,
                ),
            },
            DATABASE_POOLER=pooler,
            DATABASE_DIRECT_URL=os.environ.get("DATABASE_DIRECT_URL", ""),
            DATABASE_REPLICA_URL=os.environ.get("DATABASE_REPLICA_URL", ""),
            REPLICA_MAX_LAG_S=_env_float("REPLICA_MAX_LAG_S", 10.0),
            REPLICA_CHECK_S=_env_float("REPLICA_CHECK_S", 1.0),
            JOB_STATEMENT_TIMEOUT_S=_env_int("JOB_STATEMENT_TIMEOUT_S", 900),
            JOB_STALLED_AFTER_S=_env_int("JOB_STALLED_AFTER_S", 30),
            MAX_CONTENT_LENGTH=_env_int("MAX_CONTENT_LENGTH", 1024 * 1024),
            RATELIMIT_STORAGE_URI=os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
            IDEMPOTENCY_TTL_DAYS=_env_int("IDEMPOTENCY_TTL_DAYS", 30),
            ACCESS_TOKEN_MINUTES=_env_int("ACCESS_TOKEN_MINUTES", 15),
            REFRESH_TOKEN_DAYS=_env_int("REFRESH_TOKEN_DAYS", 30),
            AUTH_CACHE_SECONDS=_env_int("AUTH_CACHE_SECONDS", 60),
            ARGON2_TIME_COST=_env_int("ARGON2_TIME_COST", 3),
            ARGON2_MEMORY_KIB=_env_int("ARGON2_MEMORY_KIB", 65536),
            TERMS_VERSION=os.environ.get("TERMS_VERSION", "2026-11"),
            TERMS_DIR=os.environ.get("TERMS_DIR", cls.TERMS_DIR),
            LOGIN_RATE_LIMIT=os.environ.get(
                "LOGIN_RATE_LIMIT", "5 per minute;20 per hour;100 per day"
            ),
            LOGIN_CLIENT_RATE_LIMIT=os.environ.get("LOGIN_CLIENT_RATE_LIMIT", "30 per minute"),
            LOGIN_DEVICE_RATE_LIMIT=os.environ.get(
                "LOGIN_DEVICE_RATE_LIMIT", "10 per minute;50 per hour"
            ),
            LOGIN_DEVICE_DAYS=_env_int("LOGIN_DEVICE_DAYS", 180),
            REGISTER_RATE_LIMIT=os.environ.get("REGISTER_RATE_LIMIT", "10 per hour"),
            VISIT_RATE_LIMIT=os.environ.get("VISIT_RATE_LIMIT", "30 per minute"),
            TIP_RATE_LIMIT=os.environ.get("TIP_RATE_LIMIT", "10 per hour;30 per day"),
            FOLLOW_RATE_LIMIT=os.environ.get("FOLLOW_RATE_LIMIT", "30 per minute"),
            NEARBY_RATE_LIMIT=os.environ.get("NEARBY_RATE_LIMIT", "60 per hour"),
            MEDIA_ROOT=os.environ.get("MEDIA_ROOT") or str(PROJECT_ROOT / "var" / "media"),
            MEDIA_MAX_BYTES=_env_int("MEDIA_MAX_BYTES", 15 * 1024 * 1024),
            MEDIA_MAX_PIXELS=_env_int("MEDIA_MAX_PIXELS", 40_000_000),
            MEDIA_RATE_LIMIT=os.environ.get("MEDIA_RATE_LIMIT", "60 per hour"),
            UNATTACHED_MEDIA_HOURS=_env_int("UNATTACHED_MEDIA_HOURS", 24),
            ACCOUNT_DELETION_GRACE_DAYS=_env_int("ACCOUNT_DELETION_GRACE_DAYS", 7),
            MINORS_ALLOWED_WITH_GUARDIAN=_env_bool("MINORS_ALLOWED_WITH_GUARDIAN", False),
            FIELD_KEY_FILE=os.environ.get("FIELD_KEY_FILE") or str(LOCAL_SECRETS_DIR / "field-key"),
            FIELD_KEYRING_FILE=os.environ.get("FIELD_KEYRING_FILE")
            or str(LOCAL_SECRETS_DIR / "field-keyring.json"),
            OPEN311_RATE_LIMIT=os.environ.get("OPEN311_RATE_LIMIT", "120 per minute;5000 per day"),
            EXPORT_ROOT=os.environ.get("EXPORT_ROOT") or str(PROJECT_ROOT / "var" / "exports"),
            STORAGE_BACKEND=os.environ.get("STORAGE_BACKEND", "local"),
            S3_ENDPOINT_URL=os.environ.get("S3_ENDPOINT_URL", ""),
            S3_BUCKET=os.environ.get("S3_BUCKET", ""),
            S3_REGION=os.environ.get("S3_REGION", ""),
            S3_ACCESS_KEY_ID=os.environ.get("S3_ACCESS_KEY_ID", ""),
            S3_SECRET_ACCESS_KEY=os.environ.get("S3_SECRET_ACCESS_KEY", ""),
            S3_KEY_PREFIX=os.environ.get("S3_KEY_PREFIX", ""),
            S3_ADDRESSING_STYLE=os.environ.get("S3_ADDRESSING_STYLE", "auto"),
            STORAGE_ORPHAN_GRACE_HOURS=_env_int("STORAGE_ORPHAN_GRACE_HOURS", 24),
            MAX_BATCH_TIPS=_env_int("MAX_BATCH_TIPS", 100_000),
            CHECKIN_RETENTION_DAYS=_env_int("CHECKIN_RETENTION_DAYS", 180),
            CHECKIN_POOR_ACCURACY_M=_env_int("CHECKIN_POOR_ACCURACY_M", 100),
            CHECKIN_MAX_SPEED_MPS=_env_int("CHECKIN_MAX_SPEED_MPS", 40),
            PATROL_IDLE_HOURS=_env_int("PATROL_IDLE_HOURS", 12),
            CHECKPOINT_GRACE_MINUTES=_env_int("CHECKPOINT_GRACE_MINUTES", 30),
            SERVICE_MAX_GAP_MINUTES=_env_int("SERVICE_MAX_GAP_MINUTES", 10),
            SERVICE_DAILY_CAP_HOURS=_env_int("SERVICE_DAILY_CAP_HOURS", 8),
            SERVICE_TIMEZONE=os.environ.get("SERVICE_TIMEZONE", "Asia/Shanghai"),
            FCM_CREDENTIALS_FILE=os.environ.get("FCM_CREDENTIALS_FILE")
            or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", ""),
            FCM_PROJECT_ID=os.environ.get("FCM_PROJECT_ID", ""),
            FCM_ENDPOINT=os.environ.get("FCM_ENDPOINT", ""),
            SMS_FALLBACK_AFTER_S=_env_int("SMS_FALLBACK_AFTER_S", 60),
            SMS_DAILY_LIMIT=_env_int("SMS_DAILY_LIMIT", 3),
            SMS_QUIET_HOURS=os.environ.get("SMS_QUIET_HOURS", "22:00-07:00"),
            **{name: os.environ.get(name, "") for name in TENCENT_SMS_CREDENTIALS},
            TENCENT_SMS_REGION=os.environ.get("TENCENT_SMS_REGION", "ap-guangzhou"),
            TENCENT_SMS_ENDPOINT=os.environ.get("TENCENT_SMS_ENDPOINT", ""),
            APNS_KEY_FILE=os.environ.get("APNS_KEY_FILE", ""),
            APNS_KEY_ID=os.environ.get("APNS_KEY_ID", ""),
            APNS_TEAM_ID=os.environ.get("APNS_TEAM_ID", ""),
            APNS_TOPIC=os.environ.get("APNS_TOPIC", ""),
            APNS_SANDBOX=_env_bool("APNS_SANDBOX", False),
            APNS_ENDPOINT=os.environ.get("APNS_ENDPOINT", ""),
            JPUSH_APP_KEY=os.environ.get("JPUSH_APP_KEY", ""),
            JPUSH_MASTER_SECRET=os.environ.get("JPUSH_MASTER_SECRET", ""),
            JPUSH_ENDPOINT=os.environ.get("JPUSH_ENDPOINT", ""),
            DUTY_POSITION_MINUTES=_env_int("DUTY_POSITION_MINUTES", 120),
            **{
                name: _env_int(name, default)
                for name, (default, _low, _high) in RETENTION_DAYS.items()
            },
            TASK_MIN_COUNT_SHOWN=_env_int("TASK_MIN_COUNT_SHOWN", 5),
            HEATMAP_MIN_REPORTERS=_env_int("HEATMAP_MIN_REPORTERS", 5),
            HEATMAP_RATE_LIMIT=os.environ.get("HEATMAP_RATE_LIMIT", "60 per minute"),
            PROXY_HOPS=_env_int("PROXY_HOPS", 0),
            MAP_TILE_URL=os.environ.get("MAP_TILE_URL", ""),
            MAP_TILE_CRS=os.environ.get("MAP_TILE_CRS", "wgs84"),
            CONSOLE_POLL_SECONDS=_env_int("CONSOLE_POLL_SECONDS", 15),
            LOG_LEVEL=os.environ.get("LOG_LEVEL", "INFO"),
        )
        for key, value in overrides.items():
            if key not in {f.name for f in fields(cls)}:
                raise ConfigError(f"unknown setting {key}")
            setattr(config, key, value)
        config.validate()
        return config

    def _validate_storage(self) -> None:
        if self.STORAGE_BACKEND not in ("local", "s3"):
            raise ConfigError(f"STORAGE_BACKEND must be local or s3, not {self.STORAGE_BACKEND!r}")
        if self.STORAGE_BACKEND == "s3" and not self.S3_BUCKET:
            raise ConfigError("STORAGE_BACKEND=s3 needs S3_BUCKET")
        if self.S3_ADDRESSING_STYLE not in ("auto", "path", "virtual"):
            raise ConfigError("S3_ADDRESSING_STYLE must be auto, path or virtual")
        folders = r"([A-Za-z0-9_-][A-Za-z0-9_.-]*/)+"
        if self.S3_KEY_PREFIX and not re.fullmatch(folders, self.S3_KEY_PREFIX):
            raise ConfigError("S3_KEY_PREFIX must be folder names each ending in /: qunfang/")
        if bool(self.S3_ACCESS_KEY_ID) != bool(self.S3_SECRET_ACCESS_KEY):
            raise ConfigError("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together")
        if self.STORAGE_ORPHAN_GRACE_HOURS < 1:
            raise ConfigError("STORAGE_ORPHAN_GRACE_HOURS must be at least 1")

    def validate(self) -> None:
        if self.ENV not in {"development", "production", "testing"}:
            raise ConfigError(
                f"QF_ENV must be development, production or testing, not {self.ENV!r}"
            )
        for name in SECRET_SETTINGS:
            if len(getattr(self, name)) < 32:
                raise ConfigError(
                    f"{name} must be set to a random value of at least 32 characters"
                    + (" in production (QF_ENV=production)" if self.ENV == "production" else "")
                )
        if self.ENV == "production" and len({getattr(self, n) for n in SECRET_SETTINGS}) < len(
            SECRET_SETTINGS
        ):
            raise ConfigError(", ".join(SECRET_SETTINGS) + " must all differ")
        if not 1 <= self.ACCESS_TOKEN_MINUTES <= 60:
            raise ConfigError(
                "ACCESS_TOKEN_MINUTES must be between 1 and 60 (access tokens are short-lived)"
            )
        if not 0 <= self.AUTH_CACHE_SECONDS <= 600:
            raise ConfigError("AUTH_CACHE_SECONDS must be between 0 and 600")
        if not 31 <= self.CHECKIN_RETENTION_DAYS <= 3650:
            # Partitions are monthly: a shorter retention could drop the current month's.
            raise ConfigError("CHECKIN_RETENTION_DAYS must be between 31 and 3650")
        if not 1 <= self.SERVICE_DAILY_CAP_HOURS <= 24:
            raise ConfigError("SERVICE_DAILY_CAP_HOURS must be between 1 and 24")
        try:
            ZoneInfo(self.SERVICE_TIMEZONE)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"SERVICE_TIMEZONE {self.SERVICE_TIMEZONE!r} is not a time zone"
            ) from exc
        if self.HEATMAP_MIN_REPORTERS < 2:
            raise ConfigError("HEATMAP_MIN_REPORTERS must be at least 2 (1 would locate tipsters)")
        if self.TASK_MIN_COUNT_SHOWN < 2:
            raise ConfigError("TASK_MIN_COUNT_SHOWN must be at least 2 (1 would locate people)")
        if not 5 <= self.DUTY_POSITION_MINUTES <= 24 * 60:
            raise ConfigError("DUTY_POSITION_MINUTES must be between 5 and 1440")
        if self.FCM_CREDENTIALS_FILE and not Path(self.FCM_CREDENTIALS_FILE).is_file():
            raise ConfigError(f"FCM_CREDENTIALS_FILE {self.FCM_CREDENTIALS_FILE} is not a file")
        self._validate_storage()
        self._validate_sms()
        self._validate_apns()
        self._validate_jpush()
        if not 0 <= self.ACCOUNT_DELETION_GRACE_DAYS <= 90:
            raise ConfigError("ACCOUNT_DELETION_GRACE_DAYS must be between 0 and 90")
        if not 1 <= self.LOGIN_DEVICE_DAYS <= 400:
            raise ConfigError("LOGIN_DEVICE_DAYS must be between 1 and 400")
        for language in TERMS_LANGUAGES:
            if not terms_path(self.TERMS_DIR, self.TERMS_VERSION, language).is_file():
                raise ConfigError(
                    f"the terms of version {self.TERMS_VERSION} in {language} are missing: "
                    f"{terms_path(self.TERMS_DIR, self.TERMS_VERSION, language)}"
                )
        for name, (_default, low, high) in RETENTION_DAYS.items():
            if not low <= getattr(self, name) <= high:
                raise ConfigError(f"{name} must be between {low} and {high} (days)")
        if self.MAP_TILE_CRS not in {"wgs84", "gcj02"}:
            raise ConfigError("MAP_TILE_CRS must be wgs84 (Tianditu, OSM) or gcj02 (AMap, Tencent)")
        if not 1 <= self.CONSOLE_POLL_SECONDS <= 3600:
            raise ConfigError("CONSOLE_POLL_SECONDS must be between 1 and 3600")
        if self.MAP_TILE_URL and not re.fullmatch(r"https?://\S+", self.MAP_TILE_URL):
            raise ConfigError("MAP_TILE_URL must be an http(s) URL template with {z}, {x}, {y}")
        self._validate_database()
        if self.IDEMPOTENCY_TTL_DAYS < 30:
            # Phones stay offline for days; a key that expires early lets a replay duplicate.
            raise ConfigError("IDEMPOTENCY_TTL_DAYS must be at least 30")

    def _validate_database(self) -> None:
        if self.DATABASE_POOLER not in {"", "pgbouncer"}:
            raise ConfigError("DATABASE_POOLER must be empty (direct) or pgbouncer")
        if self.DATABASE_POOLER and not self.DATABASE_DIRECT_URL:
            # LISTEN (the identity cache's invalidations, the job queue's wake-ups) needs a
            # session of its own, which a transaction-mode pooler does not keep.
            raise ConfigError(
                "DATABASE_POOLER=pgbouncer needs DATABASE_DIRECT_URL: the database reached "
                "without the pooler, for LISTEN"
            )
        if not 0 < self.REPLICA_MAX_LAG_S <= 3600:
            raise ConfigError("REPLICA_MAX_LAG_S must be above 0 and at most 3600 (seconds)")
        if not 0 <= self.REPLICA_CHECK_S <= self.REPLICA_MAX_LAG_S:
            # A check trusted longer than the bound would break it.
            raise ConfigError("REPLICA_CHECK_S must be between 0 and REPLICA_MAX_LAG_S")

    def _validate_sms(self) -> None:
        if not 10 <= self.SMS_FALLBACK_AFTER_S <= 3600:
            raise ConfigError("SMS_FALLBACK_AFTER_S must be between 10 and 3600")
        if not 0 <= self.SMS_DAILY_LIMIT <= 20:
            raise ConfigError("SMS_DAILY_LIMIT must be between 0 (no SMS) and 20")
        if self.SMS_QUIET_HOURS and not _QUIET_HOURS.fullmatch(self.SMS_QUIET_HOURS):
            raise ConfigError(
                f"SMS_QUIET_HOURS {self.SMS_QUIET_HOURS!r} is not HH:MM-HH:MM (or empty for none)"
            )
        given = [name for name in TENCENT_SMS_CREDENTIALS if getattr(self, name)]
        if given and len(given) < len(TENCENT_SMS_CREDENTIALS):
            missing = sorted(set(TENCENT_SMS_CREDENTIALS) - set(given))
            raise ConfigError(
                "Tencent Cloud SMS needs all of its settings; missing: " + ", ".join(missing)
            )
        for name in ("TENCENT_SMS_SDK_APP_ID", "TENCENT_SMS_TEMPLATE_ID"):
            if getattr(self, name) and not getattr(self, name).isdigit():
                raise ConfigError(f"{name} must be digits (as the SMS console shows it)")

    def _validate_apns(self) -> None:
        apns = ("APNS_KEY_FILE", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC")
        given = [name for name in apns if getattr(self, name)]
        if given and len(given) < len(apns):
            missing = ", ".join(name for name in apns if name not in given)
            raise ConfigError(f"APNs needs {', '.join(apns)} together: {missing} unset")
        if not given:
            return
        from app.core.p8 import ApnsKeyError, load_key

        try:
            load_key(self.APNS_KEY_FILE)
        except ApnsKeyError as exc:
            raise ConfigError(f"APNS_KEY_FILE: {exc}") from exc
        if not re.fullmatch(r"[A-Z0-9]{10}", self.APNS_KEY_ID):
            raise ConfigError("APNS_KEY_ID must be the key's 10-character id (AuthKey_<id>.p8)")
        if not re.fullmatch(r"[A-Z0-9]{10}", self.APNS_TEAM_ID):
            raise ConfigError("APNS_TEAM_ID must be the 10-character Apple team id")
        self._validate_endpoint("APNS_ENDPOINT")

    def _validate_jpush(self) -> None:
        if bool(self.JPUSH_APP_KEY) != bool(self.JPUSH_MASTER_SECRET):
            raise ConfigError("JPush needs JPUSH_APP_KEY and JPUSH_MASTER_SECRET together")
        self._validate_endpoint("JPUSH_ENDPOINT")

    def _validate_endpoint(self, name: str) -> None:
        value = getattr(self, name)
        if value and not re.fullmatch(r"https?://[^/\s]+/?", value):
            raise ConfigError(f"{name} must be a URL of a host, as https://host[:port]")

    def as_flask_config(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
