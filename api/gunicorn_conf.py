"""gunicorn settings from the tracker's configuration (HOST, PORT, WEB_CONCURRENCY)."""

from __future__ import annotations

import os

from tracker.config import from_env

_config = from_env()
bind = f"{_config.host}:{_config.port}"
# One worker per core by default, as in production; the app is built in each worker after fork.
workers = int(os.environ.get("WEB_CONCURRENCY", str(os.cpu_count() or 1)))
preload_app = False
timeout = 30
graceful_timeout = 10
keepalive = 5
accesslog = "-"
# Never log query strings or headers (tokens, personal data): method, path, status, time only.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
