"""One error shape for everything: RFC 9457 problem+json, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from tracker.domain import errors as E

log = logging.getLogger("tracker.api")

PROBLEM = "application/problem+json"

_STATUS: list[tuple[type[E.TrackerError], int]] = [
    (E.ValidationError, 422),
    (E.NotFoundError, 404),
    (E.PermissionDeniedError, 403),
    (E.AuthenticationError, 401),
    (E.IllegalTransitionError, 409),
    (E.ConflictError, 409),
    (E.MasterKeyError, 503),
]


class PreconditionFailed(E.StaleVersionError):
    """A stale If-Match: the same conflict, answered 412 as HTTP asks."""


class TooManyRequests(E.TrackerError):
    """A rate limit was exceeded."""

    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def _slug(title: str) -> str:
    return title.lower().replace(" ", "-").replace("'", "")


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """A problem+json response."""
    body = {"type": "about:blank" if not extra.pop("typed", False) else f"/problems/{_slug(title)}",
            "title": title, "status": status, "detail": detail, **extra}
    return Response(json.dumps(body), status=status, mimetype=PROBLEM)


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs/marshmallow nested messages -> {"a.b.c": [..]} (list indexes kept)."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key in ("json", "query", "form", "headers", "view_args") and not prefix:
                out.update(flatten(value, ""))
                continue
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "body"
            out.update(flatten(value, name))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out.setdefault(prefix or "body", []).extend(messages)
    elif isinstance(messages, list):
        for item in messages:
            out.update(flatten(item, prefix))
    else:
        out.setdefault(prefix or "body", []).append(str(messages))
    return out


def tracker_error(error: E.TrackerError) -> Response:
    """Map the domain's refusals to HTTP."""
    if isinstance(error, TooManyRequests):
        response = problem(429, error.title, error.detail, typed=True)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    status = 500
    for cls, code in _STATUS:
        if isinstance(error, cls):
            status = code
            break
    if isinstance(error, PreconditionFailed):
        status = 412
    extra: dict[str, Any] = {k: v for k, v in error.extra.items() if v is not None}
    if isinstance(error, E.ValidationError):
        extra["errors"] = error.errors
    if isinstance(error, E.IllegalTransitionError):
        extra["allowed"] = error.allowed
    response = problem(status, error.title, error.detail, typed=True, **extra)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="tracker"'
    return response


def http_error(error: HTTPException) -> Response:
    """Werkzeug's HTTP errors, including webargs' validation failures."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    if status == 422 and "messages" in data:
        errors = flatten(data["messages"])
        where = ", ".join(sorted(errors))
        return problem(422, "Invalid input",
                       f"Some fields are invalid: {where}. Correct them and retry.",
                       typed=True, errors=errors)
    detail = {
        413: "The request body is larger than the limit (1 MiB). Send less data.",
        415: "Send the body as JSON with 'Content-Type: application/json'.",
        405: "This method is not allowed on this resource; see /docs.",
        404: "No such resource; see /docs for the API.",
    }.get(status, error.description or error.name)
    extra: dict[str, Any] = {}
    if status == 400 and "messages" in data:
        extra["errors"] = flatten(data["messages"])
        detail = "The body is not valid JSON: " + "; ".join(
            m for ms in extra["errors"].values() for m in ms)
    elif status == 400 and error.description and not error.description.startswith("The browser"):
        detail = error.description
    elif status == 400:
        detail = "The request is malformed (for a body: not valid JSON). Correct it and retry."
    response = problem(status, error.name, detail, **extra)
    for key, value in error.get_headers():
        if key.lower() in ("allow", "retry-after"):
            response.headers[key] = value
    for key, value in (data.get("headers") or {}).items():
        response.headers[key] = value
    return response


def unexpected(error: Exception) -> Response:
    """Anything unforeseen: logged on the server, a plain 500 for the client."""
    log.exception("unexpected error: %s", type(error).__name__)
    return problem(500, "Internal Server Error",
                   "The server failed to handle this request; nothing was recorded if it was a "
                   "write. Retry later, and report the X-Request-Id if it persists.")


def init_app(app: Flask) -> None:
    """Register the handlers (after flask-smorest's, which they replace)."""
    app.register_error_handler(E.TrackerError, tracker_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)
