"""Helpers shared by the page views: services, names, form keys, reading one's own writes."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import current_app, g, request, session

from api.pages import session as pages_session
from tracker import policy
from tracker.bootstrap import Tracker
from tracker.domain.errors import AuthenticationError
from tracker.domain.values import Actor
from tracker.projections import Views

_FORM_KEY = re.compile(r"^[0-9a-f]{32}$")


def services() -> Tracker:
    """The tracker services of this process."""
    t: Tracker = current_app.extensions["tracker"]
    return t


def views() -> Views:
    """The read side (the one the API's list uses, or one made for the pages)."""
    found = current_app.extensions.get("tracker.views")
    if found is None:
        found = current_app.extensions.setdefault("tracker.pages.views",
                                                  Views(services().app.db))
    v: Views = found
    return v


def me() -> Actor:
    """The signed-in user (views are guarded by `signed_in`)."""
    who = pages_session.actor()
    if who is None:
        raise AuthenticationError("Sign in first.")
    return who


def names() -> dict[str, str]:
    """User id -> name, for those allowed to know who is who (not monitors)."""
    if "page_names" not in g:
        who = me()
        visible = policy.can(who, "history") or policy.can(who, "list_users")
        g.page_names = ({u["id"]: u["name"] for u in services().users.list()}
                        if visible else {who.id: who.name})
    found: dict[str, str] = g.page_names
    return found


def name(user_id: str | None) -> str:
    """A user's name, or their id when unknown (disabled, or not visible to this user)."""
    if not user_id:
        return ""
    return names().get(user_id, user_id)


def reviewers() -> list[dict[str, Any]]:
    """Reviewers one may assign (for reviewers and admins), by name."""
    if not policy.can(me(), "list_users"):
        return []
    return services().users.list(role="reviewer")


def new_form_key() -> str:
    """A fresh key for one rendering of a form (a double submit records once)."""
    return uuid.uuid4().hex


def form_key() -> str | None:
    """The submitted form's key as an Idempotency-Key, when well-formed."""
    key = request.form.get("form_key", "")
    return f"page-{key}" if _FORM_KEY.match(key) else None


def wrote(position: int) -> None:
    """Remember the log position of this user's last write (for the lists to wait for)."""
    session["seen"] = position


def views_behind() -> bool:
    """Wait (briefly) until the views include this user's last write; True if they do not."""
    seen = session.get("seen")
    if not isinstance(seen, int):
        return False
    timeout = float(current_app.config.get("PAGES_READ_YOUR_WRITES_TIMEOUT", 2.0))
    session.pop("seen", None)  # wait once: a stopped projector must not slow every page
    return not views().wait_for(seen, timeout)

