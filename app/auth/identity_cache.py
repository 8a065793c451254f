"""The caller's identity, kept per process and dropped the moment the database says it changed.

Every authenticated request needs its token's live session, its user and (staff) the user's
areas. On a miss that is one statement (`app.auth.service.live_user`); a hit costs no round
trip. What makes a hit safe is PostgreSQL's LISTEN/NOTIFY: triggers (migration 0011) announce on
the `qunfang_auth` channel the id of every user whose account, login session or area grants
change, whoever writes (requests, jobs, commands, SQL by hand). Each process keeps one
connection listening, in a daemon thread, and drops the announced user's entries.

An entry is trusted only
- while the listener is connected: when the connection is lost, everything is dropped and every
  lookup goes to the database until LISTEN has taken effect again (a notification sent meanwhile
  would be missed);
- if its lookup started after the current LISTEN took effect, and no notification was handled
  while it ran (it may have read the state just before the change the notification announced);
- for `AUTH_CACHE_SECONDS` after it was loaded, as a bound on whatever else goes wrong.
Before a hit is trusted, notifications that already reached the socket are read (without
waiting), so the window left is the server's delivery latency.

The cache holds plain values, never ORM objects: each hit builds new instances and merges them
into the request's session without a query, so no object is shared between requests or threads,
and a view that changes `current_user()` flushes as usual.

Processes: the registry is keyed by process id and the listener starts on first use in the
process that uses it, so a gunicorn worker forked from a master never shares its parent's
connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from app.areas.models import Area
from app.auth.models import User
from app.auth.service import live_user

CHANNEL = "qunfang_auth"
LISTENER_NAME = "qunfang-auth-listener"
# Above this many entries, a put first sweeps out expired ones; a cache still full refuses.
MAX_ENTRIES = 50_000
_RECONNECT_MIN_S, _RECONNECT_MAX_S = 0.1, 5.0
_POLL_S = 1.0
_SWEEP_S = 10.0

log = logging.getLogger(__name__)


# --- what is cached -----------------------------------------------------------------------------


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _thawed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _loaded_columns(obj: Any) -> tuple[tuple[str, Any], ...]:
    loaded = instance_state(obj).dict
    return tuple(
        (column.key, _frozen(loaded[column.key]))
        for column in sa.inspect(type(obj)).column_attrs
        if column.key in loaded
    )


def _detached(cls: type, values: tuple[tuple[str, Any], ...]) -> Any:
    """A new detached instance of `cls` with these loaded values (unloaded ones expired)."""
    obj = sa.inspect(cls).class_manager.new_instance()
    for key, value in values:
        set_committed_value(obj, key, _thawed(value))
    make_transient_to_detached(obj)
    return obj


@dataclass(frozen=True)
class Identity:
    """Immutable copy of a live user's loaded columns and of their areas' loaded columns."""

    user: tuple[tuple[str, Any], ...]
    areas: tuple[tuple[tuple[str, Any], ...], ...]

    @classmethod
    def of(cls, user: User) -> Identity:
        return cls(_loaded_columns(user), tuple(_loaded_columns(a) for a in user.jurisdiction))

    def attach(self, session: Session) -> User:
        """The user as a persistent object of `session`, areas loaded, without a query."""
        user = _detached(User, self.user)
        set_committed_value(user, "jurisdiction", [_detached(Area, a) for a in self.areas])
        return session.merge(user, load=False)


# --- the rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    """Taken before a lookup's statement: the LISTEN generation and the notifications handled."""

    generation: int
    handled: int


@dataclass(frozen=True)
class _Entry:
    identity: Identity
    generation: int
    expires_at: float


class IdentityCache:
    """Entries by (user id, session id), trusted by the rules of the module docstring. The
    listener reports through `listening`, `lost` and `invalidate`; lookups use `ticket`, `get`
    and `put`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[uuid.UUID, dict[uuid.UUID, _Entry]] = {}
        self._size = 0
        self._generation = 0  # how many times LISTEN took effect
        self._connected = False
        self._handled = 0  # notifications handled, ever
        self._drain: Callable[[], None] = lambda: None

    def read_pending_with(self, drain: Callable[[], None]) -> None:
        """`drain` reads the notifications that have arrived, without waiting."""
        self._drain = drain

    # the listener's side

    def listening(self) -> int:
        """LISTEN has just taken effect: a new generation, which only lookups started from now
        on may fill. Returns it."""
        with self._lock:
            self._generation += 1
            self._connected = True
            self._clear()
            return self._generation

    def lost(self, generation: int) -> None:
        """The connection of `generation` is gone: nothing is trusted until the next LISTEN."""
        with self._lock:
            if generation == self._generation and self._connected:
                self._connected = False
                self._clear()

    def invalidate(self, user_id: str) -> None:
        """A notification: the user's account, sessions or areas changed."""
        with self._lock:
            self._handled += 1
            try:
                dropped = self._entries.pop(uuid.UUID(user_id), {})
            except ValueError:
                log.warning("ignored a %s notification that is not a user id", CHANNEL)
                return
            self._size -= len(dropped)

    def sweep(self) -> None:
        """Forget expired entries."""
        now = self._clock()
        with self._lock:
            for user_id in list(self._entries):
                sessions = self._entries[user_id]
                for session_id in [s for s, e in sessions.items() if e.expires_at <= now]:
                    del sessions[session_id]
                    self._size -= 1
                if not sessions:
                    del self._entries[user_id]

    # the lookups' side

    @property
    def connected(self) -> bool:
        return self._connected

    def __len__(self) -> int:
        return self._size

    def ticket(self) -> Ticket | None:
        """Take before the lookup's statement; None: not listening, do not cache its result."""
        with self._lock:
            if not self._connected:
                return None
            return Ticket(self._generation, self._handled)

    def get(self, user_id: uuid.UUID, session_id: uuid.UUID) -> Identity | None:
        self._drain()
        with self._lock:
            if not self._connected:
                return None
            entry = self._entries.get(user_id, {}).get(session_id)
            if entry is None:
                return None
            if entry.generation != self._generation or entry.expires_at <= self._clock():
                del self._entries[user_id][session_id]
                self._size -= 1
                return None
            return entry.identity

    def put(
        self,
        ticket: Ticket,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        identity: Identity,
        seconds: float,
    ) -> bool:
        """Keep a lookup's result, unless anything happened since its ticket was taken."""
        if self._size >= MAX_ENTRIES:
            self.sweep()
        with self._lock:
            if (
                not self._connected
                or ticket.generation != self._generation
                or ticket.handled != self._handled
                or self._size >= MAX_ENTRIES
            ):
                return False
            sessions = self._entries.setdefault(user_id, {})
            self._size += session_id not in sessions
            sessions[session_id] = _Entry(identity, ticket.generation, self._clock() + seconds)
            return True

    def _clear(self) -> None:
        self._entries.clear()
        self._size = 0


# --- the listener -------------------------------------------------------------------------------


class Listener:
    """A daemon thread that keeps one connection listening on CHANNEL, reconnecting with
    backoff, and reports to its cache. Reading notifications is shared with request threads
    (`drain`), under a lock: the thread itself only waits on the socket outside it."""

    def __init__(self, conninfo: str, cache: IdentityCache) -> None:
        self._conninfo = conninfo
        self._cache = cache
        self._io_lock = threading.Lock()
        self._conn: psycopg.Connection | None = None
        self._generation = 0
        self.backend_pid: int | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=LISTENER_NAME, daemon=True)
        cache.read_pending_with(self.drain)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        """End the thread (tests; a process's own listener runs as long as the process)."""
        self._stopping.set()
        self._thread.join(timeout)

    def drain(self) -> None:
        """Hand every notification that has reached the socket to the cache; never waits. A
        lost connection is reported at once."""
        with self._io_lock:
            conn, generation = self._conn, self._generation
            if conn is None:
                return
            try:
                pgconn = conn.pgconn
                pgconn.consume_input()
                while (notification := pgconn.notifies()) is not None:
                    self._cache.invalidate(notification.extra.decode())
                if pgconn.status != psycopg.pq.ConnStatus.OK:
                    raise psycopg.OperationalError("the listening connection is bad")
            except psycopg.Error:
                self._conn = None
                self._cache.lost(generation)

    def _run(self) -> None:
        delay = _RECONNECT_MIN_S
        while not self._stopping.is_set():
            try:
                self._listen_until_lost()
                delay = _RECONNECT_MIN_S
            except psycopg.Error as exc:
                log.warning("auth listener: %s; retrying in %.1f s", type(exc).__name__, delay)
            except Exception:  # a bug must not end the thread: the cache would stay bypassed
                log.exception("auth listener failed; retrying in %.1f s", delay)
            self._stopping.wait(delay)
            delay = min(delay * 2, _RECONNECT_MAX_S)

    def _listen_until_lost(self) -> None:
        conn = psycopg.connect(
            self._conninfo,
            autocommit=True,
            application_name=LISTENER_NAME,
            connect_timeout=3,
            # A server that vanished from the network is noticed within about 10 s.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        )
        try:
            conn.execute(f"LISTEN {CHANNEL}")
            with self._io_lock:
                self._generation = self._cache.listening()
                self._conn = conn
                self.backend_pid = conn.info.backend_pid
            log.info("auth listener: listening on %s", CHANNEL)
            swept_at = time.monotonic()
            while not self._stopping.is_set():
                with self._io_lock:
                    if self._conn is not conn:  # a request's drain found it lost
                        return
                    # libpq closes the socket when it finds the connection lost: look it up
                    # under the lock, while the connection is known good.
                    fd = conn.pgconn.socket
                with contextlib.suppress(OSError, ValueError):  # closed: drain reports it
                    select.select([fd], [], [], _POLL_S)
                self.drain()
                if time.monotonic() >= swept_at + _SWEEP_S:
                    self._cache.sweep()
                    swept_at = time.monotonic()
        finally:
            with self._io_lock:
                if self._conn is conn:
                    self._conn = None
                self._cache.lost(self._generation)
            conn.close()


# --- one cache per process and database ---------------------------------------------------------

_registry: dict[tuple[int, str], tuple[IdentityCache, Listener]] = {}
_registry_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # The parent's lock may have been held by one of its threads; its caches stay in the
    # registry under its pid, untouched (their connections belong to the parent).
    global _registry_lock
    _registry_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _key(url: sa.URL) -> tuple[int, str]:
    return os.getpid(), url.set(drivername="postgresql").render_as_string(hide_password=False)


def for_database(url: sa.URL) -> IdentityCache:
    """This process's cache for the database at `url`; its listener starts on first call."""
    key = _key(url)
    with _registry_lock:
        if key not in _registry:
            cache = IdentityCache()
            listener = Listener(key[1], cache)
            listener.start()
            _registry[key] = (cache, listener)
        return _registry[key][0]


def close(url: sa.URL) -> None:
    """Stop this process's listener for `url` and forget its cache (tests: a process's
    listener otherwise lives as long as the process)."""
    with _registry_lock:
        entry = _registry.pop(_key(url), None)
    if entry is not None:
        entry[1].stop()


def cached_live_user(
    cache: IdentityCache, session: Session, user_id: str, session_id: str, seconds: float
) -> User | None:
    """`live_user`, from the cache when it may be trusted: no statement on a hit, one on a
    miss."""
    uid, sid = uuid.UUID(user_id), uuid.UUID(session_id)
    identity = cache.get(uid, sid)
    if identity is not None:
        return identity.attach(session)
    ticket = cache.ticket()
    user = live_user(session, user_id, session_id)
    if user is not None and ticket is not None:
        cache.put(ticket, uid, sid, Identity.of(user), seconds)
    return user
