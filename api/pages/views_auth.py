"""Signing in with an API token, signing out, and the front door."""

from __future__ import annotations

from flask import Response, current_app, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from api.pages import bp, session
from tracker import policy


@bp.route("/")
def index() -> ResponseReturnValue:
    """Reviewers start at their queue, others at the list; visitors at the sign-in page."""
    who = session.actor()
    if who is None:
        return redirect(url_for("pages.sign_in"), 303)
    target = "pages.queue" if who.role == "reviewer" else "pages.allegations"
    return redirect(url_for(target), 303)


def _form(error: str | None = None, status: int = 200) -> Response:
    nxt = session.safe_next(request.values.get("next"))
    response = make_response(render_template("sign_in.html", error=error, next=nxt), status)
    if session.actor() is None:
        session.remember_sign_in_csrf(response)
    return response


@bp.route("/sign-in", methods=["GET"])
def sign_in_form() -> Response:
    """The sign-in form."""
    return _form()


@bp.route("/sign-in", methods=["POST"], endpoint="sign_in")
def sign_in() -> ResponseReturnValue:
    """Exchange an API token for a session cookie; a bad token is refused (and counted)."""
    limits = current_app.extensions.get("tracker.limits")
    address = request.remote_addr or "unknown"
    if limits is not None:
        limits.check_address(address)  # 429 after too many failures, as the API does
    raw = request.form.get("token", "").strip()
    who = current_app.extensions["tracker"].users.authenticate(raw) if raw else None
    if who is None:
        if limits is not None:
            limits.auth_failed(address)
        return _form(_("This token is not valid (unknown or revoked). Check it, or ask an "
                       "admin for a new one."), 401)
    session.sign_in(who, raw)
    target = session.safe_next(request.form.get("next"))
    if target is None:
        target = url_for("pages.queue" if who.role == "reviewer" else "pages.allegations")
    response = redirect(target, 303)
    response.delete_cookie(session.SIGN_IN_COOKIE, path="/sign-in")
    return response


@bp.route("/sign-out", methods=["POST"])
def sign_out() -> ResponseReturnValue:
    """End the session."""
    session.sign_out()
    return redirect(url_for("pages.sign_in"), 303)


def nav() -> list[tuple[str, str]]:
    """The navigation entries (endpoint, label) the signed-in user may use."""
    who = session.actor()
    if who is None:
        return []
    entries = []
    if who.role == "reviewer":
        entries.append(("pages.queue", _("My queue")))
    entries.append(("pages.allegations", _("All allegations")))
    if policy.can(who, "stats"):
        entries.append(("pages.statistics", _("Statistics")))
    if policy.can(who, "audit"):
        entries.append(("pages.audit", _("Audit")))
    return entries


@bp.app_context_processor
def _nav() -> dict[str, object]:
    return {"nav": nav}
