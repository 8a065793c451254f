#!/usr/bin/env bash
# Serve the API with gunicorn and run a job worker beside it; Ctrl-C (or SIGTERM) stops both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PORT="${PORT:-5000}"
WORKERS="${WEB_CONCURRENCY:-2}"

.venv/bin/flask --app wsgi jobs worker &
worker=$!
# No access log from gunicorn: it would record client addresses. The app logs each request
# itself, as JSON, without them (app/core/logging.py).
.venv/bin/gunicorn --bind "127.0.0.1:$PORT" --workers "$WORKERS" --graceful-timeout 10 \
  --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" wsgi:app &
web=$!

stop() {
  trap - INT TERM EXIT
  kill -TERM "$web" "$worker" 2>/dev/null || true
  wait "$web" "$worker" 2>/dev/null || true
}
trap stop INT TERM EXIT

cat >&2 <<MSG

  Qunfang API    http://127.0.0.1:$PORT/api/v1/
  API docs       http://127.0.0.1:$PORT/api/docs
  OpenAPI spec   http://127.0.0.1:$PORT/api/v1/openapi.json
  Health         http://127.0.0.1:$PORT/healthz   http://127.0.0.1:$PORT/readyz
  Press Ctrl-C to stop the API and the job worker.

MSG
# Whichever stops first (crash or signal) brings the other down.
wait -n "$web" "$worker"
