"""Per-request context: the tracker services, the caller, the request id, version headers."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import current_app, g, request

from api.errors import PreconditionFailed
from tracker.bootstrap import Tracker
from tracker.domain.errors import AuthenticationError, ValidationError
from tracker.domain.values import Actor

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
_ETAG = re.compile(r'^(?:W/)?"(\d{1,12})"$')


def tracker() -> Tracker:
    """The services of this process."""
    t: Tracker = current_app.extensions["tracker"]
    return t


def actor() -> Actor:
    """The authenticated caller (set by the auth hook)."""
    who: Actor | None = g.get("actor")
    if who is None:
        raise AuthenticationError("Send 'Authorization: Bearer <token>'.")
    return who


def request_id() -> str:
    """The client's X-Request-Id when well-formed, else a new one."""
    if "request_id" not in g:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    rid: str = g.request_id
    return rid


def idempotency_key() -> str | None:
    """The Idempotency-Key header, validated."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise ValidationError({"Idempotency-Key": [
            "Must be 1 to 200 visible ASCII characters (a UUID is a good choice)."]})
    return key


def expected_version(body: dict[str, Any]) -> int | None:
    """The version the client expects, from If-Match or `expected_version`."""
    from_body = body.pop("expected_version", None)
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return from_body if isinstance(from_body, int) else None
    m = _ETAG.match(header.strip())
    if not m:
        raise ValidationError({"If-Match": ['Must be an ETag of this API, e.g. "3".']})
    version = int(m.group(1))
    if from_body is not None and from_body != version:
        raise ValidationError({"expected_version": ["Differs from If-Match; send one."]})
    g.if_match = True  # a mismatch is then answered 412
    return version


def conflict_status_for_if_match(error: Exception) -> Exception:
    """A stale If-Match is answered 412, a stale `expected_version` 409."""
    from tracker.domain.errors import StaleVersionError

    if g.get("if_match") and isinstance(error, StaleVersionError) and not isinstance(
            error, PreconditionFailed):
        stale = PreconditionFailed(0, 0)
        stale.detail, stale.extra = error.detail, error.extra
        return stale
    return error
