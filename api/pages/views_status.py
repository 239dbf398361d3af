"""Changing an allegation's status: only legal next statuses, a reason, never a blind overwrite."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from api.context import request_id
from api.pages import bp, common, forms, i18n
from api.pages.session import signed_in
from tracker import policy
from tracker.domain.errors import IllegalTransitionError, StaleVersionError, ValidationError
from tracker.domain.values import allowed_next


def _render(aid: str, values: dict[str, Any] | None = None,
            problems: dict[str, list[str]] | None = None, conflict: dict[str, Any] | None = None,
            status: int = 200) -> Response:
    who = common.me()
    services = common.services()
    state = services.app.get(who, aid)
    changes: list[dict[str, Any]] = []
    if conflict is not None:
        since = int(conflict["expected"])
        changes = [e for e in services.app.history(who, aid) if e["version"] > since]
    html = render_template(
        "status.html", a=state, options=allowed_next(state["status"]), values=values or {},
        problems=problems or {}, conflict=conflict, changes=changes,
        form_key=common.new_form_key())
    return make_response(html, status)


@bp.route("/allegations/<aid>/status", methods=["GET"])
@signed_in
def status_form(aid: str) -> Response:
    """The status form, offering only the statuses the workflow allows next."""
    policy.require(common.me(), "change_status")
    return _render(aid)


@bp.route("/allegations/<aid>/status", methods=["POST"], endpoint="status")
@signed_in
def change_status(aid: str) -> ResponseReturnValue:
    """Record a status change with its reason, refusing a form made from a stale version."""
    who = common.me()
    policy.require(who, "change_status")
    values, problems = forms.status_change(request.form)
    shown = dict(request.form)
    expected = values.get("expected_version")
    if expected is None and not problems:
        problems = {"expected_version": [_("This form is incomplete; reload it and retry.")]}
    if problems:
        return _render(aid, shown, problems, status=422)
    try:
        result = common.services().app.change_status(
            who, aid, values["status"], values["reason"], values.get("duplicate_of") or None,
            request_id(), expected_version=expected, idempotency_key=common.form_key())
    except StaleVersionError as e:
        conflict = {"expected": expected, "by": common.name(e.extra.get("changed_by")),
                    "at": i18n.moment(e.extra.get("changed_at"))}
        # The form is shown again at the current version, with what was typed, to be
        # reviewed and resubmitted deliberately.
        shown.pop("expected_version", None)
        return _render(aid, shown, conflict=conflict, status=409)
    except IllegalTransitionError as e:
        return _render(aid, shown, {"status": [e.detail]}, status=409)
    except ValidationError as e:
        return _render(aid, shown, e.errors, status=422)
    common.wrote(result.position)
    flash(_("Status changed to “%(status)s”.",
            status=i18n.label(i18n.STATUS, result.state["status"])), "success")
    return redirect(url_for("pages.allegation", aid=aid, _anchor="timeline"), 303)
