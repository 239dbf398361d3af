"""Bearer-token authentication for /v1, before any view runs."""

from __future__ import annotations

import hashlib

from flask import Flask, current_app, g, request

from api.context import tracker
from api.limits import Limits
from tracker.domain.errors import AuthenticationError

PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/static/")


def authenticate() -> None:
    """Set g.actor from the Authorization header, or refuse with 401."""
    if not request.path.startswith("/v1/") or request.routing_exception is not None:
        return  # public, or an unknown route or method (404/405 say so)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        _failed()
        raise AuthenticationError(
            "Missing or malformed Authorization header: send 'Authorization: Bearer <token>'. "
            "An admin creates tokens with `tracker users add`.")
    # Looked up on every request (one query): revoking a token or disabling a user takes
    # effect at once.
    who = tracker().users.authenticate(token)
    if who is None:
        _failed()
        raise AuthenticationError("This token is not valid (unknown or revoked). "
                                  "Ask an admin for a new one.")
    g.actor = who
    limiter = tracker_limits()
    if limiter is not None and request.method in ("POST", "PUT", "PATCH", "DELETE"):
        limiter.check_write(hashlib.sha256(token.encode()).hexdigest()[:24])


def _failed() -> None:
    limiter = tracker_limits()
    if limiter is not None:
        limiter.auth_failed(request.remote_addr or "unknown")


def tracker_limits() -> Limits | None:
    """The rate limiter, when configured."""
    limits: Limits | None = current_app.extensions.get("tracker.limits")
    return limits


def init_app(app: Flask) -> None:
    """Install the hook."""
    app.before_request(authenticate)
