#!/usr/bin/env bash
# `make run`: the whole local stack under one process supervisor, supervisord (from PyPI, pinned
# in requirements.txt). It runs and restarts, each on its own:
#   postgres  the private PostGIS cluster, in the foreground (scripts/db.sh run), unless
#             DATABASE_URL names another server;
#   redis     the private rate-limit store (scripts/redis.sh run), unless RATELIMIT_STORAGE_URI
#             is set;
#   web       gunicorn (gunicorn.conf.py), and worker, the job worker (`flask jobs worker`).
# A part that dies is started again (growing delays while it keeps failing); none takes another
# down. Migrations and demo data are applied once the database answers, then web and worker
# start. Ctrl-C (or SIGTERM) stops everything, the database last.
#
#   scripts/serve.sh              the stack of the "dev" instance
#   scripts/serve.sh web|worker   one part, with the environment of QF_INSTANCE (for supervisord)
#
# QF_INSTANCE (default dev) names the private cluster and redis; the fault tests run whole stacks
# of their own with it (tests/ops/test_faults.py). QF_DEMO=0 skips the demo data,
# QF_DEMO_SIMULATE=0 only its simulated week (`flask demo simulate`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

INSTANCE="${QF_INSTANCE:-dev}"
PORT="${PORT:-5000}"
RUN_DIR="$ROOT/var/run/$INSTANCE"
LOG_DIR="$ROOT/var/log/$INSTANCE"
CONF="$RUN_DIR/supervisord.conf"
SOCKET="$RUN_DIR/supervisor.sock"
SUPERVISORCTL=(.venv/bin/supervisorctl -c "$CONF")

log() { printf 'serve: %s\n' "$*" >&2; }
die() { printf 'serve: error: %s\n' "$*" >&2; exit 1; }

# The environment of web and worker: the private instance's URLs unless set.
part_environment() {
  if [ -z "${DATABASE_URL:-}" ]; then
    DATABASE_URL="$(scripts/db.sh url "$INSTANCE" app)"
    MIGRATION_DATABASE_URL="$(scripts/db.sh url "$INSTANCE")"
    export DATABASE_URL MIGRATION_DATABASE_URL
  fi
  if [ -z "${RATELIMIT_STORAGE_URI:-}" ]; then
    RATELIMIT_STORAGE_URI="$(scripts/redis.sh url "$INSTANCE")"
    export RATELIMIT_STORAGE_URI
  fi
}

case "${1:-}" in
  web) part_environment; exec .venv/bin/gunicorn -c gunicorn.conf.py ;;
  worker) part_environment; exec .venv/bin/flask --app wsgi jobs worker ;;
  "") ;;
  *) die "usage: serve.sh [web|worker]" ;;
esac

private_db=""; [ -n "${DATABASE_URL:-}" ] || private_db=1
private_redis=""; [ -n "${RATELIMIT_STORAGE_URI:-}" ] || private_redis=1

mkdir -p "$RUN_DIR" "$LOG_DIR"
chmod 0750 "$ROOT/var/run" "$RUN_DIR" "$ROOT/var/log" "$LOG_DIR"
if [ -S "$SOCKET" ] && "${SUPERVISORCTL[@]}" pid >/dev/null 2>&1; then
  die "the $INSTANCE stack is already running (supervisord $("${SUPERVISORCTL[@]}" pid)); stop it first"
fi

if [ -n "$private_db" ]; then
  # A cluster started in the background (`make db`, a benchmark) gives way to the supervised one.
  scripts/db.sh stop "$INSTANCE"
  scripts/db.sh prepare "$INSTANCE"
fi
[ -z "$private_redis" ] || scripts/redis.sh prepare "$INSTANCE"

program() {  # name command autostart priority stopsignal log
  cat <<CONF

[program:$1]
command=$2
directory=$ROOT
environment=QF_INSTANCE="$INSTANCE",PORT="$PORT"
autostart=$3
autorestart=true
startsecs=2
startretries=1000
priority=$4
stopsignal=$5
stopwaitsecs=30
redirect_stderr=true
CONF
  if [ "$6" = terminal ]; then
    printf 'stdout_logfile=/dev/stdout\nstdout_logfile_maxbytes=0\n'
  else
    printf 'stdout_logfile=%s\nstdout_logfile_maxbytes=10MB\nstdout_logfile_backups=3\n' "$LOG_DIR/$1.log"
  fi
}

(
  umask 077
  {
    cat <<CONF
; written by scripts/serve.sh
[supervisord]
nodaemon=true
logfile=$LOG_DIR/supervisord.log
pidfile=$RUN_DIR/supervisord.pid
childlogdir=$LOG_DIR
$( [ "$(id -u)" -ne 0 ] || echo "user=root" )

[unix_http_server]
file=$SOCKET
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$SOCKET
CONF
    # postgres: SIGINT is its fast shutdown (SIGTERM would wait for every client to leave).
    [ -z "$private_db" ] || program postgres "$ROOT/scripts/db.sh run $INSTANCE" true 10 INT file
    [ -z "$private_redis" ] || program redis "$ROOT/scripts/redis.sh run $INSTANCE" true 10 TERM file
    program web "$ROOT/scripts/serve.sh web" false 20 TERM terminal
    program worker "$ROOT/scripts/serve.sh worker" false 30 TERM terminal
  } >"$CONF"
)

.venv/bin/supervisord -c "$CONF" &
supervisor=$!
stop() {
  trap - INT TERM EXIT
  kill -TERM "$supervisor" 2>/dev/null || true
  wait "$supervisor" 2>/dev/null || true
}
trap stop INT TERM EXIT

until [ -S "$SOCKET" ] && "${SUPERVISORCTL[@]}" pid >/dev/null 2>&1; do
  kill -0 "$supervisor" 2>/dev/null || die "supervisord did not start (see $LOG_DIR/supervisord.log)"
  sleep 0.2
done
if [ -n "$private_db" ]; then
  scripts/db.sh wait "$INSTANCE"
  scripts/db.sh ensure "$INSTANCE"  # finds it running: roles and database only
fi
part_environment
.venv/bin/flask --app wsgi db upgrade
if [ "${QF_DEMO:-1}" != 0 ]; then
  .venv/bin/flask --app wsgi demo load
  # A simulated recent week on top (once; about two minutes the first time).
  [ "${QF_DEMO_SIMULATE:-1}" = 0 ] || .venv/bin/flask --app wsgi demo simulate --if-absent \
    || log "the simulated week could not be loaded (see above); the stack starts without it"
fi
"${SUPERVISORCTL[@]}" start web worker >/dev/null

cat >&2 <<MSG

  Qunfang API    http://127.0.0.1:$PORT/api/v1/
  API docs       http://127.0.0.1:$PORT/api/docs
  Staff console  http://127.0.0.1:$PORT/console/  (demo grid staff 13800000003)
  OpenAPI spec   http://127.0.0.1:$PORT/api/v1/openapi.json
  Health         http://127.0.0.1:$PORT/healthz   http://127.0.0.1:$PORT/readyz
  Supervised by supervisord: .venv/bin/supervisorctl -c $CONF status
  Press Ctrl-C to stop the API, the job worker, redis and the database.

MSG
wait "$supervisor"
