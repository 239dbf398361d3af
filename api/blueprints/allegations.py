"""Allegations: submit, read (now, at a version, as known at a time), change, history, and the
pages of their comments, information and evidence."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, url_for
from flask.views import MethodView
from marshmallow import RAISE

from api import context as ctx
from api.blueprints import Blueprint
from api.schemas import inputs as i
from api.schemas import outputs as o
from api.schemas.fastdump import compile_dump
from tracker.application import Result
from tracker.domain.errors import StaleVersionError

bp = Blueprint("allegations", __name__, url_prefix="/v1/allegations",
               description="Allegations and their events")

_PROBLEMS = {"description": "problem+json (RFC 9457)"}
# Schemas are built once: building one per request costs milliseconds.
_OUT = o.AllegationOut()
_DUMP = compile_dump(_OUT)  # the same result as _OUT.dump, without marshmallow's per-field calls


def _written(result: Result, status: int = 200) -> Response:
    response = jsonify(_DUMP(result.state))
    response.status_code = status
    response.headers["X-Tracker-Position"] = str(result.position)
    response.headers["ETag"] = result.state["etag"]
    return response


def _write(call: Any, body: dict[str, Any], **kwargs: Any) -> Response:
    version = ctx.expected_version(body)
    try:
        result = call(ctx.actor(), request_id=ctx.request_id(), expected_version=version,
                      idempotency_key=ctx.idempotency_key(), **kwargs)
    except StaleVersionError as e:
        raise ctx.conflict_status_for_if_match(e) from None
    return _written(result)


@bp.route("")
class Allegations(MethodView):
    @bp.arguments(i.SubmissionSchema())
    @bp.response(201, o.AllegationOut)
    @bp.alt_response(200, schema=o.AllegationOut, description="A retry: the same allegation")
    @bp.alt_response(409, schema=o.ProblemOut, description="Idempotency-Key reused")
    @bp.alt_response(422, schema=o.ProblemOut, description="Invalid input")
    @bp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"},
                         "description": "Retry-safe submission: same key and body, same answer"}])
    def post(self, report: dict[str, Any]) -> Response:
        """Submit an allegation."""
        result = ctx.tracker().app.submit(ctx.actor(), report, ctx.request_id(),
                                          ctx.idempotency_key())
        response = _written(result, 201 if result.created else 200)
        response.headers["Location"] = url_for(".Allegation", allegation_id=result.state["id"])
        return response


@bp.route("/<allegation_id>")
class Allegation(MethodView):
    @bp.arguments(i.AllegationQuerySchema(), location="query")
    @bp.response(200, o.AllegationOut)
    @bp.alt_response(404, schema=o.ProblemOut, description="Unknown or not visible")
    def get(self, query: dict[str, Any], allegation_id: str) -> Response:
        """Read an allegation: now, at `version`, or as known at `as_of`."""
        state = ctx.tracker().app.get(ctx.actor(), allegation_id, version=query.get("version"),
                                      as_of=query.get("as_of"))
        response = jsonify(_DUMP(state))
        response.headers["ETag"] = state["etag"]
        return response


def _route(path: str, schema: type, doc: str, method: str,
           kwargs: Any) -> None:
    def view(body: dict[str, Any], allegation_id: str) -> Response:
        call = getattr(ctx.tracker().app, method)
        return _write(call, body, allegation_id=allegation_id, **kwargs(body))

    view.__doc__ = doc
    view.__name__ = method
    decorated = bp.alt_response(409, schema=o.ProblemOut, description="Conflict")(view)
    decorated = bp.alt_response(404, schema=o.ProblemOut, description="Not found")(decorated)
    decorated = bp.response(200, o.AllegationOut)(decorated)
    decorated = bp.arguments(schema())(decorated)
    bp.route(path, methods=["POST"], endpoint=method)(decorated)


_route("/<allegation_id>/status", i.StatusChangeSchema,
       "Change the status, with a reason (If-Match or expected_version refuses stale changes).",
       "change_status",
       lambda b: {"status": b["status"], "reason": b["reason"],
                  "duplicate_of": b.get("duplicate_of")})
_route("/<allegation_id>/assignment", i.AssignmentSchema, "Assign to a reviewer.", "assign",
       lambda b: {"assignee": b["assignee"]})
_route("/<allegation_id>/comments", i.CommentSchema, "Comment on the allegation.", "comment",
       lambda b: {"text": b["text"]})
_route("/<allegation_id>/information", i.InformationSchema,
       "Add information or a corroborating source (with its own grading).", "add_information",
       lambda b: {"text": b.get("text"), "source": b.get("source"),
                  "protected": b.get("protected")})
_route("/<allegation_id>/evidence", i.EvidenceSchema,
       "Record an evidence file by its SHA-256 (content-addressed).", "attach_evidence",
       lambda b: {"evidence": b})


def _entries_route(kind: str, page: type, doc: str) -> None:
    out = page()

    def view(query: dict[str, Any], allegation_id: str) -> Response:
        got = ctx.tracker().app.entries(ctx.actor(), allegation_id, kind, limit=query["limit"],
                                        cursor=query.get("cursor"))
        return jsonify(out.dump({"items": got.items, "next_cursor": got.next_cursor}))

    view.__doc__ = doc
    view.__name__ = f"list_{kind}"
    decorated = bp.alt_response(422, schema=o.ProblemOut,
                                description="Invalid limit or cursor")(view)
    decorated = bp.alt_response(404, schema=o.ProblemOut,
                                description="Unknown or not visible")(decorated)
    decorated = bp.response(200, page)(decorated)
    decorated = bp.arguments(i.EntriesQuerySchema(), location="query",
                             unknown=RAISE)(decorated)  # typos are errors
    bp.route(f"/<allegation_id>/{kind}", methods=["GET"], endpoint=f"list_{kind}")(decorated)


_entries_route("comments", o.CommentsPageOut,
               "The allegation's comments, newest first, in pages (`limit`, `cursor`).")
_entries_route("information", o.InformationPageOut,
               "The information added to the allegation, newest first, in pages.")
_entries_route("evidence", o.EvidencePageOut,
               "The allegation's evidence records, newest first, in pages.")


@bp.route("/<allegation_id>/erasure", methods=["POST"])
@bp.arguments(i.ErasureSchema())
@bp.response(200, o.AllegationOut)
def erase(body: dict[str, Any], allegation_id: str) -> Response:
    """Crypto-shred the allegation's personal data (admin)."""
    result = ctx.tracker().app.erase(ctx.actor(), allegation_id, body["reason"], ctx.request_id())
    return _written(result)


@bp.route("/<allegation_id>/history")
@bp.response(200, o.HistoryEntryOut(many=True))
def history(allegation_id: str) -> Response:
    """Every event of the allegation in order, with log positions and leaf hashes."""
    return jsonify(ctx.tracker().app.history(ctx.actor(), allegation_id))
