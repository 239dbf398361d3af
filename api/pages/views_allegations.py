"""My queue, all allegations (filters, keyset pages), one allegation (and all its comments,
information or evidence, in pages), assign and comment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Response, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from api.context import request_id
from api.pages import bp, common, forms
from api.pages.session import signed_in
from tracker import policy
from tracker.domain.errors import ValidationError
from tracker.domain.values import STATUSES, allowed_next
from tracker.projections import Filters
from tracker.taxonomy import taxonomy

SAFE_SCHEMES = ("http", "https")
ENTRIES_PAGE_SIZE = 50
ENTRY_HEADINGS = {"comments": _l("Comments"), "information": _l("Information added"),
                  "evidence": _l("Evidence")}


def link_uri(uri: str | None) -> str | None:
    """The URI when it may be a link (http or https only), else None (shown as text)."""
    if not uri:
        return None
    try:
        scheme = urlsplit(uri.strip()).scheme.lower()
    except ValueError:
        return None
    return uri.strip() if scheme in SAFE_SCHEMES else None


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"link_uri": link_uri, "user_name": common.name}


@bp.route("/queue")
@signed_in
def queue() -> ResponseReturnValue:
    """Allegations assigned to me that await review, the longest waiting first."""
    who = common.me()
    if who.role != "reviewer":
        return redirect(url_for("pages.allegations"), 303)
    behind = common.views_behind()
    mine = common.views().queue(who, limit=200)
    triage = common.views().list_page(who, Filters(status=("received",), assignee="none"),
                                      limit=10)
    return render_template("queue.html", items=mine, triage=triage.items,
                           triage_more=triage.next_cursor is not None, behind=behind)


@bp.route("/allegations")
@signed_in
def allegations() -> ResponseReturnValue:
    """Every allegation I may see, newest first, with the API's filters and keyset pages."""
    who = common.me()
    query, problems = forms.list_query(request.args)
    page = None
    if not problems:
        cursor = query.pop("cursor", None)
        limit = query.pop("limit")
        try:
            page = common.views().list_page(who, Filters.of(query), limit=limit, cursor=cursor)
        except ValidationError as e:  # an altered cursor
            problems = e.errors
    behind = common.views_behind() if page is not None else False
    next_url = (forms.page_url(request.path, request.args, page.next_cursor)
                if page is not None and page.next_cursor else None)
    first_url = (forms.page_url(request.path, request.args, None)
                 if request.args.get("cursor") else None)
    html = render_template("list.html", page=page, problems=problems,
                           chosen=forms.chosen(request.args), active=forms.active(request.args),
                           statuses=STATUSES,
                           groups=taxonomy()["groups"], reviewers=common.reviewers(),
                           next_url=next_url, first_url=first_url, behind=behind)
    return make_response(html, 422 if problems else 200)


def render_allegation(aid: str, problems: dict[str, dict[str, list[str]]] | None = None,
                      values: dict[str, str] | None = None, status: int = 200) -> Response:
    """The allegation page, with the assign and comment forms (and their problems, if any)."""
    who = common.me()
    services = common.services()
    state = services.app.get(who, aid)
    history = services.app.history(who, aid) if policy.can(who, "history") else None
    html = render_template(
        "allegation.html", a=state, history=history, problems=problems or {},
        values=values or {}, next_statuses=allowed_next(state["status"]),
        can_change=policy.can(who, "change_status"), can_assign=policy.can(who, "assign"),
        can_comment=policy.can(who, "comment"), reviewers=common.reviewers(),
        form_key=common.new_form_key())
    return make_response(html, status)


@bp.route("/allegations/<aid>")
@signed_in
def allegation(aid: str) -> Response:
    """One allegation: facts, sources with their grading, evidence, personal data, timeline."""
    return render_allegation(aid)


@bp.route("/allegations/<aid>/<any(comments, information, evidence):kind>")
@signed_in
def entries(aid: str, kind: str) -> ResponseReturnValue:
    """All of an allegation's comments, information or evidence records, newest first, paged."""
    who = common.me()
    app = common.services().app
    state = app.get(who, aid)
    page = app.entries(who, aid, kind, limit=ENTRIES_PAGE_SIZE,
                       cursor=request.args.get("cursor") or None)
    next_url = (forms.page_url(request.path, request.args, page.next_cursor)
                if page.next_cursor else None)
    first_url = (forms.page_url(request.path, request.args, None)
                 if request.args.get("cursor") else None)
    return render_template("entries.html", a=state, kind=kind, heading=ENTRY_HEADINGS[kind],
                           total=state[f"{kind}_total"], page=page, next_url=next_url,
                           first_url=first_url)


@bp.route("/allegations/<aid>/assign", methods=["POST"])
@signed_in
def assign(aid: str) -> ResponseReturnValue:
    """Assign the allegation to a reviewer."""
    return _post(aid, "assign", forms.assignment, lambda app, who, v, rid, key: app.assign(
        who, aid, v["assignee"], rid, idempotency_key=key),
        lambda v: _("Assigned to %(name)s.", name=common.name(v["assignee"])))


@bp.route("/allegations/<aid>/comment", methods=["POST"])
@signed_in
def comment(aid: str) -> ResponseReturnValue:
    """Add a comment."""
    return _post(aid, "comment", forms.comment, lambda app, who, v, rid, key: app.comment(
        who, aid, v["text"], rid, idempotency_key=key),
        lambda _v: _("Comment added."), anchor="timeline")


def _post(aid: str, action: str, parse: Callable[[Any], tuple[dict[str, Any], Any]],
          write: Callable[[Any, Any, dict[str, Any], str, str | None], Any],
          done: Callable[[dict[str, Any]], str], anchor: str | None = None
          ) -> ResponseReturnValue:
    """A form on the allegation page: check the role, validate, write, then redirect with a
    message (303), or show the page again with the form's problems (422)."""
    who = common.me()
    policy.require(who, action)
    values, problems = parse(request.form)
    if not problems:
        try:
            result = write(common.services().app, who, values, request_id(), common.form_key())
        except ValidationError as e:
            problems = e.errors
    if problems:
        return render_allegation(aid, {action: problems}, dict(request.form), 422)
    common.wrote(result.position)
    flash(done(values), "success")
    return redirect(url_for("pages.allegation", aid=aid, _anchor=anchor), 303)
