"""The audit log, its verification, signed tree heads and RFC 9162 proofs (auditor, admin)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from api import context as ctx
from api.blueprints import Blueprint
from api.schemas import audit as s
from tracker import policy
from tracker.audit import entries
from tracker.audit.verify import verify

bp = Blueprint("audit", __name__, url_prefix="/v1/audit",
               description="Verifiable log (RFC 9162 Merkle tree, Ed25519 tree heads)")


def _auditor() -> Any:
    policy.require(ctx.actor(), "audit")
    return ctx.tracker()


@bp.route("/log")
@bp.arguments(s.LogQuery, location="query")
@bp.response(200, s.LogOut)
def log(query: dict[str, Any]) -> Response:
    """The global event log in commit order, personal data redacted."""
    t = _auditor()
    return jsonify(entries.log_entries(t.app, query.get("after"), query["limit"]))


@bp.route("/verify")
@bp.response(200, s.VerifyOut)
def verify_now() -> Response:
    """Re-verify every stored record against its leaf and every signed head."""
    t = _auditor()
    outcome = verify(t.app.db, t.heads.signer.public, t.heads.all())
    return jsonify(outcome.as_dict())


@bp.route("/checkpoint")
@bp.response(200, s.CheckpointOut)
def checkpoint() -> Response:
    """The latest signed tree head (issued now if the log grew since the last one)."""
    return jsonify(_auditor().heads.issue())


@bp.route("/public-key")
@bp.response(200, s.PublicKeyOut)
def public_key() -> Response:
    """The log's Ed25519 public key (raw 32 bytes, base64) and its id."""
    return jsonify(_auditor().heads.public_key())


@bp.route("/proof/inclusion")
@bp.arguments(s.InclusionQuery, location="query")
@bp.response(200, s.InclusionOut)
def inclusion(query: dict[str, Any]) -> Response:
    """The audit path proving that leaf `position` is in the tree of `tree_size` leaves."""
    t = _auditor()
    return jsonify(entries.inclusion(t.app, query["position"], query.get("tree_size")))


@bp.route("/proof/consistency")
@bp.arguments(s.ConsistencyQuery, location="query")
@bp.response(200, s.ConsistencyOut)
def consistency(query: dict[str, Any]) -> Response:
    """The proof that the tree of size `from` is a prefix of the tree of size `to`."""
    t = _auditor()
    return jsonify(entries.consistency(t.app, query["from_"], query.get("to")))
