"""gunicorn's settings, read from the working directory (`make run`: scripts/serve.sh): JSON logs
with client addresses redacted, and no access log (the app logs each request itself, without
addresses).

`timeout` is the hard bound of a request: a sync worker silent for WEB_TIMEOUT_S seconds (a
request stuck on a database that accepts but never answers, which no client-side socket setting
can see) is killed and replaced by the arbiter. The softer bounds come first: DB_POOL_TIMEOUT_S
to get a connection, DB_CONNECT_TIMEOUT_S to make one, DB_STATEMENT_TIMEOUT_S per statement.
"""

import os

from app.core.logging import gunicorn_log_config

logconfig_dict = gunicorn_log_config(os.environ.get("LOG_LEVEL", "INFO"))
accesslog = None
bind = f"127.0.0.1:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("WEB_TIMEOUT_S", "30"))
graceful_timeout = 10
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "wsgi:app"
# gunicorn's control socket (one path per user, ~/.gunicorn/gunicorn.ctl) would be shared by
# every stack on the machine (make run, the fault tests' own); nothing here uses it.
control_socket_disable = True
