#!/usr/bin/env bash
# The project's private PostGIS clusters: "dev" (kept between runs), "test" (its databases are
# created and dropped by each test run) and "fleet" (the primary of `make fleet`, scripts/fleet.sh).
#
#   scripts/db.sh ensure dev|test   install PostgreSQL + PostGIS if missing, create and start the
#                                   cluster, create the role and database; prints nothing else on
#                                   success but where the URL is written
#   scripts/db.sh url dev|test [app]  print the SQLAlchemy URL of a cluster: its owner's role
#                                   (migrations, test databases), or with `app` the application's
#   scripts/db.sh stop [dev|test]   stop one cluster, or both
#   scripts/db.sh status            one line per cluster
#   scripts/db.sh prepare NAME      `ensure` without starting: install, create, configure
#   scripts/db.sh run NAME          the server in the foreground (for a supervisor), as the
#                                   server's user; `ensure` then finds it running
#   scripts/db.sh wait NAME         wait until it accepts connections (however it was started)
#   scripts/db.sh replica NAME      a streaming replica of the running cluster NAME, as the cluster
#                                   NAME-replica (pg_basebackup -R: a hot standby that follows
#                                   its primary over a physical replication slot); created on
#                                   first use, started, and its application URL written to
#                                   var/pg/NAME-replica.app.url (the primary's roles and passwords
#                                   come with the copy); `stop NAME-replica` stops it,
#                                   `destroy NAME-replica` removes it and its slot
#   scripts/db.sh replay NAME-replica pause|resume
#                                   pause or resume a replica's replay (it keeps receiving WAL
#                                   and answering, falling behind: the lag tests)
#
# Two roles per cluster: `qunfang` owns the database and its schema (migrations run as it; it may
# create databases, which the test suite does), and `qunfang_app`, that the application connects
# as, owns nothing: it cannot alter, truncate or drop a table, nor disable a trigger (see
# app/core/db_roles.py for what it is granted). The owner is a member of the application's role,
# so it may end the application's sessions; the application is a member of nothing.
#
# Each cluster listens on 127.0.0.1 only, with scram-sha-256 passwords; its Unix socket lives in a
# directory only the server's user can enter. PostgreSQL refuses to run as root, so when we are
# root the server runs as the unprivileged `postgres` system user (created by Debian's packages).
# Data lives under var/pg/<name> (git-ignored); the owner's URL is written to var/pg/<name>.url and
# the application's to var/pg/<name>.app.url, mode 0600, which is where app/config.py finds the dev
# cluster when DATABASE_URL (and MIGRATION_DATABASE_URL) are unset.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var/pg"
DB_NAME=qunfang
DB_USER=qunfang
APP_USER=qunfang_app

log() { printf 'db: %s\n' "$*" >&2; }
die() { printf 'db: error: %s\n' "$*" >&2; exit 1; }

base_port() {
  case "$1" in
    dev) echo "${QF_PG_PORT:-54320}" ;;
    test) echo "${QF_TEST_PG_PORT:-54330}" ;;
    # Clusters of their own for tests that kill and restart servers (tests/ops/test_faults.py).
    fault*) echo "${QF_FAULT_PG_PORT:-54340}" ;;
    # The primary of `make fleet` (scripts/fleet.sh); its replica is fleet-replica.
    fleet) echo "${QF_FLEET_PG_PORT:-54360}" ;;
    # Streaming replicas of the clusters above (`db.sh replica NAME`).
    *-replica) echo "${QF_REPLICA_PG_PORT:-54350}" ;;
    *) die "unknown cluster '$1' (dev, test, fleet, fault* or <cluster>-replica)" ;;
  esac
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The directory holding the server binaries (initdb, pg_ctl, postgres): those of an existing
# cluster's own major version ($1 = its data directory), else the newest installed.
pg_bindir() {
  local dir
  if [ -n "${1:-}" ] && [ -f "$1/PG_VERSION" ] && [ -x "/usr/lib/postgresql/$(cat "$1/PG_VERSION")/bin/initdb" ]; then
    echo "/usr/lib/postgresql/$(cat "$1/PG_VERSION")/bin"; return 0
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  if command -v initdb >/dev/null 2>&1; then dirname "$(readlink -f "$(command -v initdb)")"; return 0; fi
  return 1
}

pg_major() { "$1/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/'; }

has_postgis() {
  local sharedir
  sharedir="$("$1/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$(pg_major "$1")")"
  [ -f "$sharedir/extension/postgis.control" ]
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL/PostGIS are missing and apt-get is not available; install them, or set DATABASE_URL"
  log "installing $* (apt-get)"
  if [ ! -f "$VAR/.apt-updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    mkdir -p "$VAR" && touch "$VAR/.apt-updated"
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_packages() {
  local bindir
  if ! bindir="$(pg_bindir)"; then
    apt_install postgresql postgresql-contrib
    bindir="$(pg_bindir)" || die "PostgreSQL server binaries not found after installing"
  fi
  if ! has_postgis "$bindir"; then
    apt_install "postgresql-$(pg_major "$bindir")-postgis-3"
    has_postgis "$bindir" || die "PostGIS not found after installing"
  fi
  echo "$bindir"
}

# PostgreSQL refuses to run as root: then the server runs as `postgres`.
server_user() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    echo postgres
  else
    id -un
  fi
}

as_server() {
  local user="$1"; shift
  if [ "$user" = "$(id -un)" ]; then "$@"; else runuser -u "$user" -- "$@"; fi
}

# Where a cluster's data lives. Normally var/pg/<name>; when we are root and the server user cannot
# reach the checkout (a home directory with mode 0700, say), a per-checkout directory under
# /var/lib/qunfang (not /var/tmp, whose old files some systems clean away).
data_dir() {
  local name="$1" user="$2"
  if as_server "$user" test -x "$ROOT" 2>/dev/null; then
    echo "$VAR/$name"
  else
    echo "/var/lib/qunfang/$(checkout_hash)/$name"
  fi
}

checkout_hash() { printf '%s' "$ROOT" | sha256sum | cut -c1-12; }

# The Unix socket directory: short (socket paths are limited to 107 bytes, checkouts can be deep)
# and private to the server's user.
socket_dir() { echo "/tmp/qunfang-pg-$(checkout_hash)-$1"; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port="$1"
  while port_in_use "$port"; do port=$((port + 1)); done
  echo "$port"
}

url_file() { echo "$VAR/$1.url"; }
app_url_file() { echo "$VAR/$1.app.url"; }

new_password() { head -c 32 /dev/urandom | base64 | tr -d '/+=' | cut -c1-24; }

init_cluster() {
  local name="$1" bindir="$2" user="$3" dir="$4" port password pwfile
  log "creating the $name cluster in $dir"
  mkdir -p "$(dirname "$dir")" "$dir"
  chmod 0700 "$dir"
  [ "$user" = "$(id -un)" ] || chown "$user" "$dir" "$(dirname "$dir")"
  password="$(new_password)"
  pwfile="$(mktemp)"
  printf '%s\n' "$password" >"$pwfile"
  [ "$user" = "$(id -un)" ] || chown "$user" "$pwfile"
  as_server "$user" "$bindir/initdb" -D "$dir" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null \
    || as_server "$user" "$bindir/initdb" -D "$dir" -U postgres --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >/dev/null
  rm -f "$pwfile"
  port="$(free_port "$(base_port "$name")")"
  {
    echo "# written by scripts/db.sh"
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = '$(socket_dir "$name")'"
    echo "max_connections = 100"
    echo "shared_buffers = 256MB"
    echo "timezone = 'UTC'"
    echo "log_timezone = 'UTC'"
    if [ "$name" = test ]; then
      # Throw-away data: durability buys nothing here and costs the suite time.
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    fi
  } | as_server "$user" tee -a "$dir/postgresql.conf" >/dev/null
  write_url "$(url_file "$name")" "$DB_USER" "$password" "$port"
  write_url "$(app_url_file "$name")" "$APP_USER" "$(new_password)" "$port"
}

cluster_port() { sed -nE 's/^port = ([0-9]+).*/\1/p' "$1/postgresql.conf" | tail -n 1; }

start_cluster() {
  local name="$1" bindir="$2" user="$3" dir="$4" port
  if as_server "$user" "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then return 0; fi
  as_server "$user" mkdir -p "$(socket_dir "$name")"
  as_server "$user" chmod 0700 "$(socket_dir "$name")"
  port="$(cluster_port "$dir")"
  port_in_use "$port" && die "port $port of the $name cluster is taken by another program; stop it, or remove $dir and $(url_file "$name") to re-create the cluster on a free port"
  log "starting the $name cluster on 127.0.0.1:$port"
  as_server "$user" "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { tail -n 20 "$dir/server.log" >&2 || true; die "the $name cluster did not start"; }
}

psql_super() {
  export PGOPTIONS="-c client_min_messages=warning"
  local bindir="$1" user="$2" dir="$3" db="$4"; shift 4
  as_server "$user" "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$(socket_dir "$(basename "$dir")")" \
    -p "$(cluster_port "$dir")" -U postgres -d "$db" "$@"
}

write_url() {
  mkdir -p "$VAR"
  (umask 077; printf 'postgresql+psycopg://%s:%s@127.0.0.1:%s/%s\n' "$2" "$3" "$4" "$DB_NAME" >"$1")
}

url_password() { sed -nE 's#^postgresql\+psycopg://[^:]+:([^@]+)@.*#\1#p' "$1"; }

create_database() {
  local bindir="$1" user="$2" dir="$3" name="$4" password app_password
  if [ ! -f "$(url_file "$name")" ]; then
    # The cluster exists but its URL file was lost: a new password, never a new cluster.
    log "rewriting $(url_file "$name") with a new password for the existing $name cluster"
    write_url "$(url_file "$name")" "$DB_USER" "$(new_password)" "$(cluster_port "$dir")"
  fi
  if [ ! -f "$(app_url_file "$name")" ]; then
    write_url "$(app_url_file "$name")" "$APP_USER" "$(new_password)" "$(cluster_port "$dir")"
  fi
  password="$(url_password "$(url_file "$name")")"
  app_password="$(url_password "$(app_url_file "$name")")"
  # PostGIS in template1 first, so every database created later (test runs create one each) has it.
  psql_super "$bindir" "$user" "$dir" template1 -c "CREATE EXTENSION IF NOT EXISTS postgis"
  psql_super "$bindir" "$user" "$dir" postgres <<SQL
SELECT 'CREATE ROLE $DB_USER LOGIN CREATEDB'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') \gexec
ALTER ROLE $DB_USER PASSWORD '$password';
SELECT 'CREATE ROLE $APP_USER LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_USER') \gexec
ALTER ROLE $APP_USER NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD '$app_password';
-- The owner may act as the application (never the other way round): the test suite's
-- DROP DATABASE ... WITH (FORCE) ends the application's sessions.
GRANT $APP_USER TO $DB_USER;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
SQL
}

# Install what is missing and create the cluster if needed; prints "bindir user dir".
prepare() {
  local name="$1" bindir user dir
  base_port "$name" >/dev/null
  bindir="$(ensure_packages)"
  user="$(server_user)"
  dir="$(data_dir "$name" "$user")"
  if [ ! -f "$dir/PG_VERSION" ]; then
    # Only an empty or half-made directory is ever replaced: never a cluster's data.
    if [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
      die "$dir is not empty but holds no cluster; move it away and run again"
    fi
    init_cluster "$name" "$bindir" "$user" "$dir"
  fi
  echo "$(pg_bindir "$dir") $user $dir"
}

wait_ready() {
  local bindir="$1" dir="$2" name="$3" tries=0
  until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$(cluster_port "$dir")" -t 1; do
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || die "the $name cluster does not accept connections"
    sleep 0.5
  done
}

ensure() {
  local name="$1" bindir user dir
  read -r bindir user dir < <(prepare "$name")
  [ -n "$dir" ] || exit 1
  start_cluster "$name" "$bindir" "$user" "$dir"
  wait_ready "$bindir" "$dir" "$name"
  create_database "$bindir" "$user" "$dir" "$name"
  log "$name cluster ready; its URL is in $(url_file "$name")"
}

# The server in the foreground, for a process supervisor (scripts/serve.sh): exec, so that the
# supervisor's child is the postmaster itself and its signals reach it.
run() {
  local name="$1" bindir user dir port
  read -r bindir user dir < <(prepare "$name")
  [ -n "$dir" ] || exit 1
  as_server "$user" mkdir -p "$(socket_dir "$name")"
  as_server "$user" chmod 0700 "$(socket_dir "$name")"
  if [ "$user" = "$(id -un)" ]; then
    exec "$bindir/postgres" -D "$dir"
  fi
  exec setpriv --reuid="$user" --regid="$user" --init-groups -- "$bindir/postgres" -D "$dir"
}

replication_user=qunfang_replication
slot_name() { printf 'qunfang_%s\n' "$(printf '%s' "$1" | tr -c 'a-z0-9\n' '_')"; }

# The primary side of a replica: a replication role (its password in var/pg/NAME.replication.url),
# a host line allowing it, WAL kept for it through a physical slot. wal_level is `replica` by
# default, and max_wal_senders 10, so the primary needs no restart.
prepare_primary() {
  local name="$1" bindir="$2" user="$3" dir="$4" password file
  file="$VAR/$name.replication.url"
  if [ ! -f "$file" ]; then
    (umask 077; new_password >"$file")
  fi
  password="$(cat "$file")"
  psql_super "$bindir" "$user" "$dir" postgres <<SQL
SELECT 'CREATE ROLE $replication_user LOGIN REPLICATION'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$replication_user') \gexec
ALTER ROLE $replication_user PASSWORD '$password';
SELECT 'SELECT pg_create_physical_replication_slot(''$(slot_name "$name")'')'
 WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '$(slot_name "$name")') \gexec
SQL
  if ! as_server "$user" grep -q "^host replication $replication_user" "$dir/pg_hba.conf"; then
    echo "host replication $replication_user 127.0.0.1/32 scram-sha-256" \
      | as_server "$user" tee -a "$dir/pg_hba.conf" >/dev/null
    psql_super "$bindir" "$user" "$dir" postgres -c "SELECT pg_reload_conf()" >/dev/null
  fi
}

drop_slot() {
  local primary="$1" bindir user dir
  bindir="$(pg_bindir)" || return 0
  user="$(server_user)"
  dir="$(data_dir "$primary" "$user")"
  [ -f "$dir/PG_VERSION" ] || return 0
  as_server "$user" "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1 || return 0
  psql_super "$bindir" "$user" "$dir" postgres -c \
    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
      WHERE slot_name = '$(slot_name "$primary")' AND NOT active" >/dev/null || true
}

# A hot standby of the running cluster $1, made by pg_basebackup -R (which writes
# standby.signal and primary_conninfo), in its own directory on its own port.
replica() {
  local primary="$1" name="$1-replica" bindir user pdir dir port password
  case "$primary" in *-replica) die "a replica of a replica is not supported" ;; esac
  read -r bindir user pdir < <(prepare "$primary")
  [ -n "$pdir" ] || exit 1
  as_server "$user" "$bindir/pg_ctl" -D "$pdir" status >/dev/null 2>&1 \
    || die "the $primary cluster is not running: scripts/db.sh ensure $primary first"
  dir="$(data_dir "$name" "$user")"
  if [ ! -f "$dir/PG_VERSION" ]; then
    if [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
      die "$dir is not empty but holds no cluster; move it away and run again"
    fi
    prepare_primary "$primary" "$bindir" "$user" "$pdir"
    password="$(cat "$VAR/$primary.replication.url")"
    log "copying the $primary cluster into $dir (pg_basebackup)"
    mkdir -p "$dir" && chmod 0700 "$dir"
    [ "$user" = "$(id -un)" ] || chown "$user" "$dir"
    PGPASSWORD="$password" as_server "$user" "$bindir/pg_basebackup" \
      -h 127.0.0.1 -p "$(cluster_port "$pdir")" -U "$replication_user" -D "$dir" \
      -X stream -c fast -R -S "$(slot_name "$primary")" >/dev/null \
      || { rm -rf "$dir"; die "pg_basebackup failed"; }
    # The copy carries the primary's port and socket directory: its own, and hot standby
    # settings (queries on the replica are not cancelled by the cleanup they hold back).
    port="$(free_port "$(base_port "$name")")"
    {
      echo "# the replica's own, written by scripts/db.sh replica"
      echo "port = $port"
      echo "unix_socket_directories = '$(socket_dir "$name")'"
      echo "hot_standby = on"
      echo "hot_standby_feedback = on"
      echo "wal_receiver_status_interval = 1s"
    } | as_server "$user" tee -a "$dir/postgresql.conf" >/dev/null
    as_server "$user" rm -f "$dir/server.log"
    sed -E "s#@127\.0\.0\.1:[0-9]+/#@127.0.0.1:$port/#" "$(app_url_file "$primary")" \
      | (umask 077; cat >"$(app_url_file "$name")")
    sed -E "s#@127\.0\.0\.1:[0-9]+/#@127.0.0.1:$port/#" "$(url_file "$primary")" \
      | (umask 077; cat >"$(url_file "$name")")
  fi
  start_cluster "$name" "$bindir" "$user" "$dir"
  wait_ready "$bindir" "$dir" "$name"
  log "$name streams from $primary; its URL is in $(app_url_file "$name")"
}

replay() {
  local name="$1" action="$2" bindir user dir
  case "$name" in *-replica) ;; *) die "replay pauses and resumes replicas only" ;; esac
  case "$action" in pause | resume) ;; *) die "replay NAME-replica pause|resume" ;; esac
  bindir="$(pg_bindir)" || die "PostgreSQL is not installed"
  user="$(server_user)"
  dir="$(data_dir "$name" "$user")"
  psql_super "$(pg_bindir "$dir")" "$user" "$dir" postgres -c "SELECT pg_wal_replay_$action()" >/dev/null
}

# Remove a throw-away cluster of the fault tests: its server must be stopped.
destroy() {
  local name="$1" user dir
  case "$name" in fault* | *-replica) ;; *) die "only fault* and replica clusters are destroyed" ;; esac
  user="$(server_user)"
  dir="$(data_dir "$name" "$user")"
  stop "$name"
  case "$name" in *-replica) drop_slot "${name%-replica}" ;; esac
  rm -rf "$dir" "$(socket_dir "$name")" "$(url_file "$name")" "$(app_url_file "$name")"
}

stop() {
  local bindir user name dir
  bindir="$(pg_bindir)" || return 0
  user="$(server_user)"
  for name in "$@"; do
    dir="$(data_dir "$name" "$user")"
    [ -f "$dir/PG_VERSION" ] || continue
    bindir="$(pg_bindir "$dir")"
    if as_server "$user" "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      as_server "$user" "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null && log "stopped the $name cluster"
    fi
  done
}

status() {
  local bindir user name dir state
  bindir="$(pg_bindir)" || { echo "PostgreSQL is not installed"; return 0; }
  user="$(server_user)"
  for name in dev test fleet dev-replica test-replica fleet-replica; do
    dir="$(data_dir "$name" "$user")"
    case "$name" in dev | test) ;; *) [ -f "$dir/PG_VERSION" ] || continue ;; esac
    if [ ! -f "$dir/PG_VERSION" ]; then state="not created"
    elif as_server "$user" "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      state="running on 127.0.0.1:$(cluster_port "$dir")"
    else state="stopped"; fi
    echo "$name: $state ($dir)"
  done
}

case "${1:-}" in
  ensure) ensure "${2:?usage: db.sh ensure dev|test}" ;;
  prepare) prepare "${2:?usage: db.sh prepare dev|test}" >/dev/null ;;
  run) run "${2:?usage: db.sh run dev|test}" ;;
  wait)
    read -r _bindir _user _dir < <(prepare "${2:?usage: db.sh wait dev|test}")
    wait_ready "$_bindir" "$_dir" "$2" ;;
  url)
    if [ "${3:-}" = app ]; then cat "$(app_url_file "${2:?usage: db.sh url dev|test [app]}")"
    else cat "$(url_file "${2:?usage: db.sh url dev|test [app]}")"; fi ;;
  stop) if [ -n "${2:-}" ]; then stop "$2"; else stop dev-replica test-replica dev test; fi ;;
  destroy) destroy "${2:?usage: db.sh destroy fault...|NAME-replica}" ;;
  replica) replica "${2:?usage: db.sh replica dev|test}" ;;
  replay) replay "${2:?usage: db.sh replay NAME-replica pause|resume}" "${3:-}" ;;
  status) status ;;
  *) die "usage: db.sh ensure|prepare|run|wait|url|replica|stop|destroy|status [dev|test]" ;;
esac
