"""The caller and the user directory."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from api import context as ctx
from api.blueprints import Blueprint
from api.schemas import inputs as i
from api.schemas import outputs as o
from tracker import policy
from tracker.users import as_dict

bp = Blueprint("users", __name__, url_prefix="/v1", description="Users")


@bp.route("/me")
@bp.response(200, o.UserOut)
def me() -> Response:
    """The caller: id, name, role and organisation."""
    return jsonify(as_dict(ctx.actor()))


@bp.route("/users")
@bp.arguments(i.UsersQuerySchema, location="query")
@bp.response(200, o.UserOut(many=True))
def users(query: dict[str, Any]) -> Response:
    """Active users, e.g. `?role=reviewer` to choose an assignee."""
    policy.require(ctx.actor(), "list_users")
    return jsonify(ctx.tracker().users.list(query.get("role")))
