"""Server-rendered pages for reviewers and auditors (Jinja2, English and French, no inline JS)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask

bp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/assets")

# The modules below attach their hooks, error pages and views to `bp` when imported.
from api.pages import (  # noqa: E402
    errors,
    i18n,
    session,
    views_allegations,
    views_audit,
    views_auth,
    views_stats,
    views_status,
)

__all__ = ["bp", "errors", "init_app", "views_allegations", "views_audit", "views_auth",
           "views_stats", "views_status"]


def init_app(app: Flask) -> None:
    """Mount the pages at `/`: session cookie, secret, languages and the blueprint."""
    services = app.extensions["tracker"]
    session.install_secrets(app, services.app.db)
    app.session_interface = session.PagesSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=session.COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.config.setdefault("PAGES_READ_YOUR_WRITES_TIMEOUT", 2.0)
    app.config.setdefault("PAGES_SECURE_COOKIES",
                          services.config.public_url.startswith("https://"))
    i18n.init_app(app)
    app.register_blueprint(bp)
