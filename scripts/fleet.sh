#!/usr/bin/env bash
# `make fleet`: the whole deployment shape of issue #18 on this machine, on loopback only:
#
#   postgres   the private cluster "fleet" (scripts/db.sh), the primary
#   replica    "fleet-replica", a streaming replica of it (scripts/db.sh replica fleet)
#   pgbouncer  in transaction mode in front of the primary (scripts/pgbouncer.sh)
#   redis      the shared rate-limit store (scripts/redis.sh)
#   s3         moto_server, an S3-compatible store, with the bucket `qunfang-fleet`
#   web1 web2  two app nodes: gunicorn (gunicorn.conf.py), WEB_CONCURRENCY processes each
#   worker1 worker2  two job workers (`flask jobs worker`)
#   haproxy    Debian's haproxy in front of web1 and web2 (installed with apt-get when missing),
#              health-checking /readyz every second
#
#   scripts/fleet.sh run        start, print the URL, stop everything on Ctrl-C (make fleet)
#   scripts/fleet.sh start      start every part that is not running (again: what was killed
#                               comes back), in the background
#   scripts/fleet.sh stop       stop everything
#   scripts/fleet.sh status     one line per part
#   scripts/fleet.sh env        the environment of the app nodes and workers (shell exports)
#   scripts/fleet.sh url        the load balancer's URL
#
# Pid files, logs, the haproxy configuration and the ports chosen at the first start live under
# var/fleet/. The app nodes read through DATABASE_REPLICA_URL (heavy reads; the primary answers
# while the replica is down) and write through PgBouncer (DATABASE_POOLER=pgbouncer, LISTEN over
# DATABASE_DIRECT_URL). QF_DEMO=0 skips the demo data; FLEET_PORT picks the load balancer's
# port (default 58080, or the next free one); every other setting of app/config.py in the
# environment reaches the nodes and workers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DIR="$ROOT/var/fleet"
BUCKET=qunfang-fleet
S3_KEY=qf-fleet-access
S3_SECRET=qf-fleet-secret
WEB_PARTS=(web1 web2)
WORKER_PARTS=(worker1 worker2)

log() { printf 'fleet: %s\n' "$*" >&2; }
die() { printf 'fleet: error: %s\n' "$*" >&2; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port="$1"
  while port_in_use "$port"; do port=$((port + 1)); done
  echo "$port"
}

# The ports, chosen once (a part started again comes back on its own port).
ports() {
  mkdir -p "$DIR"
  chmod 0750 "$DIR"
  if [ ! -f "$DIR/ports" ]; then
    local lb web1 web2 s3 stats
    lb="$(free_port "${FLEET_PORT:-58080}")"
    web1="$(free_port $((lb + 1)))"
    web2="$(free_port $((web1 + 1)))"
    s3="$(free_port $((web2 + 1)))"
    stats="$(free_port $((s3 + 1)))"
    printf 'LB_PORT=%s\nWEB1_PORT=%s\nWEB2_PORT=%s\nS3_PORT=%s\nSTATS_PORT=%s\n' \
      "$lb" "$web1" "$web2" "$s3" "$stats" >"$DIR/ports"
  fi
  # shellcheck disable=SC1091
  . "$DIR/ports"
}

pid_of() { cat "$DIR/$1.pid" 2>/dev/null || true; }

running() {
  local pid
  pid="$(pid_of "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# A part in a session of its own (its pid is its process group: stopping it stops its children).
launch() {
  local part="$1"; shift
  running "$part" && return 0
  setsid "$@" >>"$DIR/$part.log" 2>&1 </dev/null &
  echo $! >"$DIR/$part.pid"
  log "started $part (pid $!, log var/fleet/$part.log)"
}

# The environment of web and worker: the fleet's URLs, on top of the caller's settings.
app_env() {
  ports
  DATABASE_URL="$(scripts/pgbouncer.sh url fleet app)"
  DATABASE_DIRECT_URL="$(scripts/db.sh url fleet app)"
  DATABASE_REPLICA_URL="$(scripts/db.sh url fleet-replica app)"
  MIGRATION_DATABASE_URL="$(scripts/db.sh url fleet)"
  DATABASE_POOLER=pgbouncer
  RATELIMIT_STORAGE_URI="$(scripts/redis.sh url fleet)"
  STORAGE_BACKEND=s3
  S3_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
  S3_BUCKET="$BUCKET"
  S3_REGION=us-east-1
  S3_ACCESS_KEY_ID="$S3_KEY"
  S3_SECRET_ACCESS_KEY="$S3_SECRET"
  S3_ADDRESSING_STYLE=path
  # A killed worker's jobs are run again by the other after 6 s without its heartbeat.
  JOB_STALLED_AFTER_S="${JOB_STALLED_AFTER_S:-6}"
  export DATABASE_URL DATABASE_DIRECT_URL DATABASE_REPLICA_URL MIGRATION_DATABASE_URL \
    DATABASE_POOLER RATELIMIT_STORAGE_URI STORAGE_BACKEND S3_ENDPOINT_URL S3_BUCKET S3_REGION \
    S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY S3_ADDRESSING_STYLE JOB_STALLED_AFTER_S
}

ensure_haproxy() {
  command -v haproxy >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "haproxy is missing and apt-get is not available"
  log "installing haproxy (apt-get)"
  local sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    haproxy >/dev/null
  command -v haproxy >/dev/null 2>&1 || die "haproxy not found after installing"
}

write_haproxy_conf() {
  cat >"$DIR/haproxy.cfg" <<CFG
# written by scripts/fleet.sh
global
  maxconn 4000
  log stderr format short local0 notice
  # The runtime API: `set server app_nodes/web2 state maint` (the one-node measure of the tests).
  stats socket $DIR/haproxy.sock mode 600 level admin

defaults
  mode http
  log global
  option httplog
  option dontlog-normal
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout queue 10s
  # A connection refused by a dead node is tried again, on the other node.
  retries 2
  option redispatch 1

frontend qunfang
  bind 127.0.0.1:$LB_PORT
  default_backend app_nodes

backend app_nodes
  balance leastconn
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2
  server web1 127.0.0.1:$WEB1_PORT check
  server web2 127.0.0.1:$WEB2_PORT check

listen stats
  bind 127.0.0.1:$STATS_PORT
  stats enable
  stats uri /
CFG
}

wait_http() { # URL seconds
  local tries=0
  until curl -fs -o /dev/null --max-time 2 "$1"; do
    tries=$((tries + 1))
    [ "$tries" -lt $(($2 * 4)) ] || return 1
    sleep 0.25
  done
}

start() {
  ports
  ensure_haproxy
  scripts/db.sh ensure fleet
  if [ ! -f "$DIR/.migrated" ] || [ "${QF_FLEET_MIGRATE:-0}" = 1 ]; then
    DATABASE_URL="$(scripts/db.sh url fleet app)" MIGRATION_DATABASE_URL="$(scripts/db.sh url fleet)" \
      .venv/bin/flask --app wsgi db upgrade
    if [ "${QF_DEMO:-1}" != 0 ]; then
      DATABASE_URL="$(scripts/db.sh url fleet app)" .venv/bin/flask --app wsgi demo load
    fi
    touch "$DIR/.migrated"
  fi
  scripts/db.sh replica fleet
  scripts/pgbouncer.sh ensure fleet
  scripts/redis.sh ensure fleet
  app_env
  launch s3 env MOTO_ALLOW_NONEXISTENT_REGION=true .venv/bin/moto_server -H 127.0.0.1 -p "$S3_PORT"
  wait_http "http://127.0.0.1:$S3_PORT/moto-api/" 30 || die "moto_server did not start"
  .venv/bin/python - <<PY
from app.storage.s3 import make_client
client = make_client("$S3_ENDPOINT_URL", "us-east-1", "$S3_KEY", "$S3_SECRET", "path")
if "$BUCKET" not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
    client.create_bucket(Bucket="$BUCKET")
PY
  launch web1 env PORT="$WEB1_PORT" .venv/bin/gunicorn -c gunicorn.conf.py
  launch web2 env PORT="$WEB2_PORT" .venv/bin/gunicorn -c gunicorn.conf.py
  for part in "${WORKER_PARTS[@]}"; do launch "$part" .venv/bin/flask --app wsgi jobs worker; done
  write_haproxy_conf
  haproxy -c -q -f "$DIR/haproxy.cfg" || die "haproxy refuses var/fleet/haproxy.cfg"
  launch haproxy haproxy -db -f "$DIR/haproxy.cfg"
  wait_http "http://127.0.0.1:$WEB1_PORT/readyz" 120 || die "web1 is not ready (var/fleet/web1.log)"
  wait_http "http://127.0.0.1:$WEB2_PORT/readyz" 120 || die "web2 is not ready (var/fleet/web2.log)"
  wait_http "http://127.0.0.1:$LB_PORT/readyz" 30 || die "haproxy does not answer (var/fleet/haproxy.log)"
  log "the fleet answers on http://127.0.0.1:$LB_PORT"
}

stop_part() {
  local part="$1" pid
  pid="$(pid_of "$part")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    log "stopped $part"
  fi
  rm -f "$DIR/$part.pid"
}

stop() {
  stop_part haproxy
  for part in "${WEB_PARTS[@]}" "${WORKER_PARTS[@]}" s3; do stop_part "$part"; done
  scripts/pgbouncer.sh stop fleet || true
  scripts/redis.sh stop fleet || true
  scripts/db.sh stop fleet-replica || true
  scripts/db.sh stop fleet || true
}

status() {
  local part
  ports
  for part in haproxy "${WEB_PARTS[@]}" "${WORKER_PARTS[@]}" s3; do
    if running "$part"; then echo "$part: running (pid $(pid_of "$part"))"; else echo "$part: stopped"; fi
  done
  if scripts/pgbouncer.sh running fleet; then echo "pgbouncer: running"; else echo "pgbouncer: stopped"; fi
  scripts/db.sh status | grep -E '^fleet' || true
}

banner() {
  cat >&2 <<MSG

  Qunfang fleet  http://127.0.0.1:$LB_PORT/api/v1/   (haproxy over web1 :$WEB1_PORT and web2 :$WEB2_PORT)
  API docs       http://127.0.0.1:$LB_PORT/api/docs
  Staff console  http://127.0.0.1:$LB_PORT/console/  (demo grid staff 13800000003)
  haproxy stats  http://127.0.0.1:$STATS_PORT/
  Databases      primary $(scripts/db.sh url fleet app | sed -E 's#//[^@]*@#//#'), replica $(scripts/db.sh url fleet-replica app | sed -E 's#//[^@]*@#//#'), via pgbouncer $(scripts/pgbouncer.sh url fleet app | sed -E 's#//[^@]*@#//#')
  S3 (moto)      http://127.0.0.1:$S3_PORT  bucket $BUCKET
  Logs           var/fleet/*.log   status: scripts/fleet.sh status
  Press Ctrl-C to stop everything.

MSG
}

run() {
  # Once stopping, a second signal (make sends its child SIGTERM too) must not cut it short.
  trap 'trap "" INT TERM; trap - EXIT; log "stopping"; stop; exit 0' INT TERM EXIT
  start
  banner
  echo "http://127.0.0.1:$LB_PORT"
  while :; do sleep 1 & wait $!; done
}

case "${1:-}" in
  run) run ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) app_env; for v in DATABASE_URL DATABASE_DIRECT_URL DATABASE_REPLICA_URL MIGRATION_DATABASE_URL \
      DATABASE_POOLER RATELIMIT_STORAGE_URI STORAGE_BACKEND S3_ENDPOINT_URL S3_BUCKET S3_REGION \
      S3_ACCESS_KEY_ID S3_SECRET_ACCESS_KEY S3_ADDRESSING_STYLE JOB_STALLED_AFTER_S; do
      printf 'export %s=%q\n' "$v" "${!v}"; done ;;
  url) ports; echo "http://127.0.0.1:$LB_PORT" ;;
  *) die "usage: fleet.sh run|start|stop|status|env|url" ;;
esac
