"""Page sessions: a token exchanged for a signed cookie, re-checked on every request; CSRF.

The cookie (Flask's signed session) holds the user id, the token's hash and the token itself
sealed with AES-GCM under a key only the server knows, so each request can ask
`services.users.authenticate` whether the token is still valid (revoked tokens and disabled
users are signed out at once) while the cookie never reveals a usable API token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.exceptions import BadRequest

from api.pages import bp
from tracker.domain.values import Actor
from tracker.persistence.db import Database, meta_secret
from tracker.users import token_hash

COOKIE = "tracker_session"
SIGN_IN_COOKIE = "tracker_sign_in"
CSRF_FIELD = "csrf_token"
_META_NAME = "pages_secret"
# Views that write: their POSTs count against the same per-token rate as the API's writes.
WRITES = frozenset({"pages.status", "pages.assign", "pages.comment"})

F = TypeVar("F", bound=Callable[..., Any])


class CsrfRefused(BadRequest):
    """A form without this session's CSRF token (forged, or from an expired session)."""

    description = "csrf"


def _secret(db: Database) -> bytes:
    """The deployment's page secret, created on first use and shared by every worker."""
    return meta_secret(db, _META_NAME)


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, b"pages|" + purpose, hashlib.sha256).digest()


def install_secrets(app: Flask, db: Database) -> None:
    """Set Flask's SECRET_KEY (session signing) and the token-sealing key from one secret."""
    secret = _secret(db)
    app.secret_key = _derive(secret, b"session-signing")
    app.extensions["tracker.pages.seal"] = _derive(secret, b"token-sealing")


def _seal_key() -> AESGCM:
    return AESGCM(current_app.extensions["tracker.pages.seal"])


def _seal(token: str, user_id: str) -> str:
    nonce = secrets.token_bytes(12)
    box = _seal_key().encrypt(nonce, token.encode(), user_id.encode())
    return base64.urlsafe_b64encode(nonce + box).decode()


def _unseal(sealed: str, user_id: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return _seal_key().decrypt(raw[:12], raw[12:], user_id.encode()).decode()
    except (InvalidTag, ValueError, TypeError, KeyError):
        return None


def secure() -> bool:
    """Whether cookies must be Secure: the request came over HTTPS, or the deployment's public
    address (TRACKER_PUBLIC_URL) is https, as behind a proxy that terminates TLS."""
    return bool(request.is_secure or current_app.config.get("PAGES_SECURE_COOKIES"))


class PagesSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure whenever the pages are served over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure on HTTPS."""
        return secure()

    def open_session(self, app: Flask, request: Any) -> Any:
        """Flask's, without building the signing serializer for a request with no cookie (every
        API call): Flask answers such a request with a new empty session all the same."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def sign_in(actor: Actor, token: str) -> None:
    """Start a fresh session for this user (the old one, and its CSRF token, are dropped)."""
    session.clear()
    session.permanent = True
    session.update({"uid": actor.id, "th": token_hash(token), "tk": _seal(token, actor.id),
                    "csrf": secrets.token_urlsafe(32)})


def sign_out() -> None:
    """End the session."""
    session.clear()


def token() -> str | None:
    """The signed-in user's token (for the shared write rate), or None."""
    tk: str | None = g.get("page_token")
    return tk


def actor() -> Actor | None:
    """The signed-in user of this request, or None."""
    who: Actor | None = g.get("page_actor")
    return who


def _load_actor() -> None:
    """Re-check the session's token with the user directory on every request."""
    g.page_actor = None
    uid, sealed, th = session.get("uid"), session.get("tk"), session.get("th")
    if not (isinstance(uid, str) and isinstance(sealed, str) and isinstance(th, str)):
        if "uid" in session:
            session.clear()
        return
    raw = _unseal(sealed, uid)
    services = current_app.extensions["tracker"]
    who = services.users.authenticate(raw) if raw else None
    if who is None or who.id != uid or not hmac.compare_digest(token_hash(raw or ""), th):
        session.clear()  # revoked token, disabled user or a forged cookie: signed out
        return
    g.page_actor, g.page_token = who, raw


def csrf_token() -> str:
    """The token every form of this session carries (sign-in: a double-submit cookie)."""
    value = session.get("csrf")
    if isinstance(value, str):
        return value
    if "sign_in_csrf" not in g:
        g.sign_in_csrf = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    nonce: str = g.sign_in_csrf
    return nonce


def remember_sign_in_csrf(response: Response) -> Response:
    """Set the sign-in form's double-submit cookie."""
    response.set_cookie(SIGN_IN_COOKIE, csrf_token(), max_age=3600, path="/sign-in",
                        secure=secure(), httponly=True, samesite="Strict")
    return response


def _check_csrf() -> None:
    """Refuse (400) a POST whose form token does not match this session's."""
    given = request.form.get(CSRF_FIELD, "")
    if request.endpoint == "pages.sign_in" and not isinstance(session.get("csrf"), str):
        expected = request.cookies.get(SIGN_IN_COOKIE, "")
    else:
        expected = session.get("csrf") or ""
    if not (given and expected and hmac.compare_digest(given.encode(), str(expected).encode())):
        raise CsrfRefused()


def _limit_writes() -> None:
    limits = current_app.extensions.get("tracker.limits")
    raw = token()
    if limits is not None and raw and request.endpoint in WRITES:
        limits.check_write(hashlib.sha256(raw.encode()).hexdigest()[:24])


def _cross_site_bounce() -> str | None:
    """A link followed from another site (an e-mail) arrives without the SameSite=Strict
    cookie: one same-site hop (a meta refresh, no script) brings it along."""
    if (request.method == "GET" and request.headers.get("Sec-Fetch-Site") == "cross-site"
            and COOKIE not in request.cookies):
        target = safe_next(request.full_path.rstrip("?")) or "/"
        return render_template("bounce.html", target=target)
    return None


@bp.before_request
def _before() -> Any:
    if request.endpoint == "pages.static":
        return None  # stylesheets need no session
    bounce = _cross_site_bounce()
    if bounce is not None:
        return bounce
    _load_actor()
    if request.method == "POST":
        _check_csrf()
        _limit_writes()
    return None


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "me": actor()}


def safe_next(target: str | None) -> str | None:
    """A local path to go back to after signing in; anything else (other hosts) is dropped."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def signed_in(view: F) -> F:
    """Send visitors who are not signed in to the sign-in page, then back here."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if actor() is None:
            if request.method != "GET":
                abort(401)
            return redirect(url_for("pages.sign_in", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
