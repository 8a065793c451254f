#!/usr/bin/env bash
# The project's private redis instances: the shared store of rate-limit counters, so that limits
# hold across gunicorn processes (flask-limiter counts in it; RATELIMIT_STORAGE_URI).
#
#   scripts/redis.sh prepare NAME   install redis-server if missing (apt-get, Debian's package),
#                                   write the instance's configuration and password
#   scripts/redis.sh run NAME       the server in the foreground, for a supervisor (scripts/serve.sh)
#   scripts/redis.sh ensure NAME    prepare, and start it in the background if it is not running
#                                   (make test)
#   scripts/redis.sh url NAME       print its RATELIMIT_STORAGE_URI
#   scripts/redis.sh stop NAME      stop one started by `ensure`
#
# An instance listens on 127.0.0.1 only (port 56379 for "dev", 56389 for "test", or the next
# free one), requires a generated password, and keeps nothing on disk: counters are ephemeral.
# As root it runs as Debian's unprivileged `redis` user, which needs no access to the checkout:
# its configuration (var/redis/NAME/redis.conf, mode 0600, with the password) comes on standard
# input, and its pid and log files go to a directory of its own under /tmp. The URL (with the
# password) is written to var/redis/NAME.url, mode 0600.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var/redis"

log() { printf 'redis: %s\n' "$*" >&2; }
die() { printf 'redis: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

base_port() {
  case "$1" in
    dev) echo "${QF_REDIS_PORT:-56379}" ;;
    test) echo "${QF_TEST_REDIS_PORT:-56389}" ;;
    fault*) echo "${QF_FAULT_REDIS_PORT:-56399}" ;;
    fleet) echo "${QF_FLEET_REDIS_PORT:-56369}" ;;
    *) die "unknown instance '$1' (dev, test, fleet or fault*)" ;;
  esac
}

ensure_package() {
  command -v redis-server >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "redis-server is missing and apt-get is not available; install it, or set RATELIMIT_STORAGE_URI"
  log "installing redis-server (apt-get)"
  mkdir -p "$ROOT/var/pg"
  if [ ! -f "$ROOT/var/pg/.apt-updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    touch "$ROOT/var/pg/.apt-updated"
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found after installing"
}

# redis does not refuse root, but a network service has no business running as root.
server_user() {
  if [ "$(id -u)" -eq 0 ]; then
    id redis >/dev/null 2>&1 || useradd --system --home-dir /var/lib/redis --shell /usr/sbin/nologin redis
    echo redis
  else
    id -un
  fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port="$1"
  while port_in_use "$port"; do port=$((port + 1)); done
  echo "$port"
}

new_password() { head -c 32 /dev/urandom | base64 | tr -d '/+=' | cut -c1-32; }

conf_file() { echo "$VAR/$1/redis.conf"; }
runtime_dir() { echo "/tmp/qunfang-redis-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)-$1"; }
url_file() { echo "$VAR/$1.url"; }
conf_port() { sed -nE 's/^port ([0-9]+).*/\1/p' "$(conf_file "$1")"; }
conf_password() { sed -nE 's/^requirepass (.*)$/\1/p' "$(conf_file "$1")"; }

prepare() {
  local name="$1" user dir port password
  base_port "$name" >/dev/null
  ensure_package
  user="$(server_user)"
  dir="$VAR/$name"
  if [ ! -f "$(conf_file "$name")" ]; then
    mkdir -p "$dir"
    chmod 0750 "$VAR" "$dir"
    port="$(free_port "$(base_port "$name")")"
    password="$(new_password)"
    (umask 077; cat >"$(conf_file "$name")" <<CONF
# written by scripts/redis.sh: rate-limit counters of Qunfang, nothing kept on disk
bind 127.0.0.1
protected-mode yes
port $port
requirepass $password
dir $(runtime_dir "$name")
save ""
appendonly no
daemonize no
maxmemory 64mb
maxmemory-policy volatile-ttl
CONF
    )
  fi
  mkdir -p "$(runtime_dir "$name")"
  chmod 0700 "$(runtime_dir "$name")"
  [ "$user" = "$(id -un)" ] || chown "$user" "$(runtime_dir "$name")"
  (umask 077; printf 'redis://:%s@127.0.0.1:%s/0\n' "$(conf_password "$name")" "$(conf_port "$name")" >"$(url_file "$name")")
  echo "$user"
}

as_server() {
  local user="$1"; shift
  if [ "$user" = "$(id -un)" ]; then "$@"; else setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"; fi
}

run() {
  local name="$1" user
  user="$(prepare "$name")"
  if [ "$user" = "$(id -un)" ]; then exec redis-server - <"$(conf_file "$name")"; fi
  exec setpriv --reuid="$user" --regid="$user" --init-groups -- redis-server - <"$(conf_file "$name")"
}

pid_file() { echo "$(runtime_dir "$1")/redis.pid"; }

alive() {
  local pidfile
  pidfile="$(pid_file "$1")"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# Ours is running when the pid file's process lives and our configured port answers. The
# runtime directory is named after the checkout's path, so a checkout deleted and cloned again
# at the same path finds the old instance's pid file alive on the old configuration's port.
running() { alive "$1" && port_in_use "$(conf_port "$1")"; }

ensure() {
  local name="$1" user port tries=0
  user="$(prepare "$name")"
  running "$name" && return 0
  if alive "$name"; then
    log "the pid file of the $name redis names another instance (an earlier checkout here?); starting ours"
    rm -f "$(pid_file "$name")"
  fi
  port="$(conf_port "$name")"
  port_in_use "$port" && die "port $port of the $name redis is taken by another program; remove $VAR/$name to choose another"
  log "starting the $name redis on 127.0.0.1:$port"
  {
    cat "$(conf_file "$name")"
    printf 'daemonize yes\npidfile %s\nlogfile %s\n' "$(pid_file "$name")" "$(runtime_dir "$name")/redis.log"
  } | as_server "$user" redis-server -
  until port_in_use "$port"; do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || { tail -n 20 "$(runtime_dir "$name")/redis.log" >&2 || true; die "the $name redis did not start"; }
    sleep 0.1
  done
}

stop() {
  local name="$1"
  alive "$name" || return 0
  kill -TERM "$(cat "$(pid_file "$name")")" && log "stopped the $name redis"
}

destroy() {
  local name="$1"
  case "$name" in fault*) ;; *) die "only fault* instances are destroyed" ;; esac
  stop "$name"
  rm -rf "${VAR:?}/$name" "$(url_file "$name")" "$(runtime_dir "$name")"
}

case "${1:-}" in
  prepare) prepare "${2:?usage: redis.sh prepare NAME}" >/dev/null ;;
  run) run "${2:?usage: redis.sh run NAME}" ;;
  ensure) ensure "${2:?usage: redis.sh ensure NAME}" ;;
  url) cat "$(url_file "${2:?usage: redis.sh url NAME}")" ;;
  stop) stop "${2:?usage: redis.sh stop NAME}" ;;
  destroy) destroy "${2:?usage: redis.sh destroy fault...}" ;;
  *) die "usage: redis.sh prepare|run|ensure|url|stop|destroy NAME" ;;
esac
