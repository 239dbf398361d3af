"""The auditor's page: the latest signed tree head, verification on demand, the log download."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, render_template, stream_with_context

from api.pages import bp, common
from api.pages.session import signed_in
from tracker import policy
from tracker.audit import entries
from tracker.audit.verify import verify

LOG_PAGE = 1000


def _render(outcome: dict[str, Any] | None = None) -> str:
    services = common.services()
    return render_template("audit.html", head=services.heads.issue(),
                           public_key=services.heads.public_key(), outcome=outcome)


@bp.route("/audit")
@signed_in
def audit() -> str:
    """The latest signed tree head (issued now if the log grew) and the log's public key."""
    policy.require(common.me(), "audit")
    return _render()


@bp.route("/audit/verify", methods=["POST"])
@signed_in
def audit_verify() -> str:
    """Re-verify every stored record and every signed head, and show the verdict."""
    policy.require(common.me(), "audit")
    services = common.services()
    outcome = verify(services.app.db, services.heads.signer.public, services.heads.all())
    return _render(outcome.as_dict())


@bp.route("/audit/log.jsonl")
@signed_in
def audit_log() -> Response:
    """The whole log as JSON lines, in commit order, personal data redacted."""
    policy.require(common.me(), "audit")
    app = common.services().app
    dumps = current_app.json.dumps

    def lines() -> Iterator[str]:
        after: int | None = None
        while True:
            page = entries.log_entries(app, after, LOG_PAGE)
            for entry in page["entries"]:
                yield dumps(entry) + "\n"
            if page["next_after"] is None:
                return
            after = page["next_after"]

    response = Response(stream_with_context(lines()), mimetype="application/x-ndjson")
    response.headers["Content-Disposition"] = 'attachment; filename="tracker-log.jsonl"'
    return response
