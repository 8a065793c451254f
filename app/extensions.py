"""The application's extension objects, created unbound and initialised by `create_app`.

The flask-smorest `Api` is not here: it keeps the spec of one application, so `create_app` makes
one per application.
"""

import hashlib
import hmac
import secrets

from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

# Deterministic constraint names, so that migrations can name what they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
jwt = JWTManager()


def _rate_limit_key() -> str:
    """Rate-limit buckets: the caller's user id when a token came, else the client address.

    Addresses live only in the limiter's counters (memory by default) and expire with them;
    they are never logged or written to the database. Routes anonymous senders use take
    `anonymous_bucket` instead.
    """
    from flask_limiter.util import get_remote_address

    from app.core.auth import current_identity

    identity = current_identity()
    return f"user:{identity}" if identity else f"client:{get_remote_address()}"


# Per-process key for the buckets of senders who must stay unlinked (anonymous tips, follow
# codes, uploads without a token): the limiter counts a keyed hash, never a client address, and
# the hash means nothing once the process is gone. (So each process counts on its own, even with
# a shared RATELIMIT_STORAGE_URI.)
_BUCKET_KEY = secrets.token_bytes(32)


def anonymous_bucket() -> str:
    """A rate-limit bucket for an anonymous sender: a keyed hash of the client address."""
    from flask_limiter.util import get_remote_address

    digest = hmac.new(_BUCKET_KEY, get_remote_address().encode(), hashlib.sha256).hexdigest()
    return f"anon:{digest[:32]}"


limiter = Limiter(key_func=_rate_limit_key)
