"""Friendly error pages for the tracker's refusals (the API answers problem+json instead)."""

from __future__ import annotations

import logging

from flask import Response, make_response, render_template
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from api.errors import TooManyRequests
from api.pages import bp
from api.pages.session import CsrfRefused
from tracker.domain import errors as E

log = logging.getLogger("tracker.pages")

_STATUS: list[tuple[type[E.TrackerError], int]] = [
    (TooManyRequests, 429),
    (E.ValidationError, 422),
    (E.NotFoundError, 404),
    (E.PermissionDeniedError, 403),
    (E.AuthenticationError, 401),
    (E.ConflictError, 409),
    (E.IllegalTransitionError, 409),
    (E.MasterKeyError, 503),
]

TITLES = {
    400: _l("The request could not be understood"),
    401: _l("Please sign in"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Not allowed"),
    409: _l("Conflict"),
    413: _l("Too large"),
    422: _l("Some values are not valid"),
    429: _l("Too many requests"),
    500: _l("Something went wrong"),
    503: _l("Temporarily unavailable"),
}
EXPLAIN = {
    401: _l("Your session has ended or your token is no longer valid. Sign in again."),
    403: _l("Your role does not allow this. Ask an admin if you think it should."),
    404: _l("There is nothing here that you may see. It may not exist, or belong to another "
            "organisation."),
    429: _l("Wait a little, then try again."),
    500: _l("The server failed to handle this request. If it was a change, nothing was "
            "recorded. Try again later; if it persists, report the request id below."),
}


def page(status: int, detail: str | None = None, headers: dict[str, str] | None = None
         ) -> Response:
    """An HTML error page with this status."""
    from api.context import request_id

    html = render_template("error.html", status=status, title=TITLES.get(status, TITLES[400]),
                           explain=EXPLAIN.get(status), detail=detail, request_id=request_id())
    response = make_response(html, status)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


@bp.errorhandler(E.TrackerError)
def tracker_error(error: E.TrackerError) -> Response:
    """The tracker's refusals: 404 for what may not be seen, 403, 409, 422, 429."""
    status = next((code for cls, code in _STATUS if isinstance(error, cls)), 500)
    headers = {}
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.retry_after)
    if status == 500:
        log.error("unmapped tracker error on a page: %s", type(error).__name__)
        return page(500)
    return page(status, error.detail, headers)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    """Werkzeug's HTTP errors on pages; a refused CSRF token says how to recover."""
    if isinstance(error, CsrfRefused):
        return page(400, str(_l("This form has expired or did not come from this site, so "
                                "nothing was recorded. Reload the page and submit it again.")))
    status = error.code or 500
    return page(status, None, {k: v for k, v in error.get_headers()
                               if k.lower() in ("allow", "retry-after")})


@bp.errorhandler(Exception)
def unexpected(error: Exception) -> Response:
    """Anything unforeseen: logged on the server, a plain page for the user."""
    log.exception("unexpected error on a page: %s", type(error).__name__)
    return page(500)
