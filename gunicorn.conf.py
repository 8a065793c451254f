"""gunicorn's settings, read from the working directory: JSON logs with client addresses
redacted, and no access log (the app logs each request itself, without addresses)."""

import os

from app.core.logging import gunicorn_log_config

logconfig_dict = gunicorn_log_config(os.environ.get("LOG_LEVEL", "INFO"))
accesslog = None
