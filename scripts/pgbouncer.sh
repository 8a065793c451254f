#!/usr/bin/env bash
# PgBouncer in transaction mode in front of a private cluster (scripts/db.sh), for the pooled
# tests (`make test-pgbouncer`) and the fleet.
#
#   scripts/pgbouncer.sh install        install Debian's pgbouncer if missing (apt-get)
#   scripts/pgbouncer.sh ensure NAME    install, write the configuration, start it in the
#                                       background in front of the cluster NAME (dev, test, ...)
#   scripts/pgbouncer.sh url NAME [app] the SQLAlchemy URL through it: the owner's role, or with
#                                       `app` the application's (same passwords as the cluster)
#   scripts/pgbouncer.sh stop NAME      stop it
#   scripts/pgbouncer.sh running NAME   exit 0 when it runs
#
# It listens on 127.0.0.1 only (port 56432 for "dev", 56442 for "test", or the next free one),
# in pool_mode = transaction: a server connection serves one client transaction at a time,
# then the next client's. Any database of the cluster is reached through it (`*`), as either
# of the cluster's two roles, whose passwords it keeps in its auth file (mode 0600).
#
# What a session would otherwise carry, each server connection gets from `connect_query` when
# PgBouncer opens it: the timeouts of app/config.py (DB_STATEMENT_TIMEOUT_S,
# DB_IDLE_IN_TRANSACTION_TIMEOUT_S; 0 for "test", whose tests idle inside one transaction), JIT
# off and custom plans. The application behind it runs with DATABASE_POOLER=pgbouncer (no
# prepared statements, no startup options) and DATABASE_DIRECT_URL for LISTEN. Sizes:
# QF_PGBOUNCER_POOL_SIZE server connections per database and role (default 20),
# QF_PGBOUNCER_MAX_CLIENTS clients (default 1000); docs/replica-and-pooling.md has the arithmetic.
#
# PgBouncer refuses to run as root: then it runs as the `postgres` system user, from a private
# directory under /tmp that holds its configuration, auth file, pid and log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var/pgbouncer"
PG_VAR="$ROOT/var/pg"

log() { printf 'pgbouncer: %s\n' "$*" >&2; }
die() { printf 'pgbouncer: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

base_port() {
  case "$1" in
    dev) echo "${QF_PGBOUNCER_PORT:-56432}" ;;
    test) echo "${QF_TEST_PGBOUNCER_PORT:-56442}" ;;
    *) echo "${QF_OTHER_PGBOUNCER_PORT:-56452}" ;;
  esac
}

install() {
  command -v pgbouncer >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 \
    || die "pgbouncer is missing and apt-get is not available: install PgBouncer"
  log "installing pgbouncer (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    pgbouncer >/dev/null || die "could not install pgbouncer"
  # Debian's package starts a system service of its own (port 6432); we do not use it.
  command -v pgbouncer >/dev/null 2>&1 || die "pgbouncer still not found after installing"
}

run_user() {
  if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

as_user() {
  local user="$1"; shift
  if [ "$user" = "$(id -un)" ]; then "$@"; else runuser -u "$user" -- "$@"; fi
}

runtime_dir() {
  echo "/tmp/qunfang-pgbouncer-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)-$1"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port="$1"
  while port_in_use "$port"; do port=$((port + 1)); done
  echo "$port"
}

url_part() { # url_part FILE user|password|port|database
  local re='^postgresql\+psycopg://([^:]+):([^@]+)@[^:]+:([0-9]+)/(.*)$'
  case "$2" in
    user) sed -nE "s#$re#\1#p" "$1" ;;
    password) sed -nE "s#$re#\2#p" "$1" ;;
    port) sed -nE "s#$re#\3#p" "$1" ;;
    database) sed -nE "s#$re#\4#p" "$1" ;;
  esac
}

running() {
  local dir pid
  dir="$(runtime_dir "$1")"
  [ -f "$dir/pgbouncer.pid" ] || return 1
  pid="$(cat "$dir/pgbouncer.pid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

ensure() {
  local name="$1" owner_url="$PG_VAR/$1.url" app_url="$PG_VAR/$1.app.url" user dir port
  local statement_s idle_s
  [ -f "$owner_url" ] && [ -f "$app_url" ] \
    || die "the $name cluster has no URL files: scripts/db.sh ensure $name first"
  install
  running "$name" && return 0
  user="$(run_user)"
  dir="$(runtime_dir "$name")"
  mkdir -p "$dir" "$VAR"
  chmod 0700 "$dir"
  [ "$user" = "$(id -un)" ] || chown "$user" "$dir"
  port="$(free_port "$(base_port "$name")")"
  statement_s="${DB_STATEMENT_TIMEOUT_S:-15}"
  idle_s="${DB_IDLE_IN_TRANSACTION_TIMEOUT_S:-60}"
  [ "$name" != test ] || idle_s=0
  (
    umask 077
    for file in "$owner_url" "$app_url"; do
      printf '"%s" "%s"\n' "$(url_part "$file" user)" "$(url_part "$file" password)"
    done >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<INI
;; written by scripts/pgbouncer.sh for the $name cluster
[databases]
* = host=127.0.0.1 port=$(url_part "$owner_url" port) connect_query='SET statement_timeout = $((statement_s * 1000)); SET idle_in_transaction_session_timeout = $((idle_s * 1000)); SET jit = off; SET plan_cache_mode = force_custom_plan'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = ${QF_PGBOUNCER_POOL_SIZE:-20}
reserve_pool_size = 5
reserve_pool_timeout = 1
max_client_conn = ${QF_PGBOUNCER_MAX_CLIENTS:-1000}
; A client waiting longer than this for a server connection gets an error, not a hang.
query_wait_timeout = 10
server_reset_query =
server_lifetime = 3600
server_idle_timeout = 600
server_connect_timeout = 5
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
  )
  [ "$user" = "$(id -un)" ] || chown "$user" "$dir/userlist.txt" "$dir/pgbouncer.ini"
  as_user "$user" pgbouncer -d -q "$dir/pgbouncer.ini" \
    || { tail -n 20 "$dir/pgbouncer.log" >&2 || true; die "pgbouncer did not start"; }
  for _ in $(seq 50); do port_in_use "$port" && break; sleep 0.1; done
  port_in_use "$port" || die "pgbouncer does not listen on $port"
  for kind in "" app; do
    local source="$owner_url" target="$VAR/$name.url"
    [ -z "$kind" ] || { source="$app_url"; target="$VAR/$name.app.url"; }
    sed -E "s#@127\.0\.0\.1:[0-9]+/#@127.0.0.1:$port/#" "$source" | (umask 077; cat >"$target")
  done
  log "pgbouncer for the $name cluster on 127.0.0.1:$port (transaction mode)"
}

stop() {
  local name="$1" dir pid
  dir="$(runtime_dir "$name")"
  running "$name" || return 0
  pid="$(cat "$dir/pgbouncer.pid")"
  kill -INT "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  log "stopped the pgbouncer of the $name cluster"
}

case "${1:-}" in
  install) install ;;
  ensure) ensure "${2:?usage: pgbouncer.sh ensure NAME}" ;;
  url)
    if [ "${3:-}" = app ]; then cat "$VAR/${2:?usage: pgbouncer.sh url NAME [app]}.app.url"
    else cat "$VAR/${2:?usage: pgbouncer.sh url NAME [app]}.url"; fi ;;
  stop) stop "${2:?usage: pgbouncer.sh stop NAME}" ;;
  running) running "${2:?usage: pgbouncer.sh running NAME}" ;;
  *) die "usage: pgbouncer.sh install|ensure|url|stop|running NAME" ;;
esac
