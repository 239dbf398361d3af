"""The allegation list and the statistics, read from the projections."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify
from marshmallow import RAISE

from api import context as ctx
from api.blueprints import Blueprint, health
from api.errors import problem
from api.schemas import listing as s
from api.schemas.outputs import ProblemOut
from tracker import policy
from tracker.domain.errors import ValidationError
from tracker.projections import Filters, Views
from tracker.projections.runner import lag

bp = Blueprint("listing", __name__, url_prefix="/v1",
               description="The allegation list and statistics (from the projections)")

MIN_POSITION_TIMEOUT = 5.0  # seconds; SPEC §3
RETRY_AFTER = 1


def views() -> Views:
    """The read side of this process."""
    v: Views = current_app.extensions["tracker.views"]
    return v


def _behind(query: dict[str, Any]) -> Response | None:
    """503 when the views do not include `min_position` within the bound, else None."""
    wanted = query.get("min_position")
    if wanted is None:
        return None
    size = views().log_size()
    if wanted >= size:
        # No write ever answered this position: a client error, not a wait.
        raise ValidationError({"min_position": [
            f"The log holds positions 0 to {size - 1}; use the X-Tracker-Position of a write."]})
    timeout = float(current_app.config.get("TRACKER_MIN_POSITION_TIMEOUT", MIN_POSITION_TIMEOUT))
    if views().wait_for(wanted, timeout):
        return None
    response = problem(503, "Views behind", (
        f"The views do not yet include log position {wanted} (they include up to "
        f"{views().position()}); retry shortly. If this lasts, the projector may be stopped: "
        "see /readyz."), typed=True)
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


_ERRORS = [(422, "Invalid filter, limit or cursor"), (503, "Views behind min_position")]


def _documented(view: Any) -> Any:
    for status, text in _ERRORS:
        view = bp.alt_response(status, schema=ProblemOut, description=text)(view)
    return view


@bp.route("/allegations", methods=["GET"])
@bp.arguments(s.ListQuerySchema, location="query", unknown=RAISE)  # typos are errors
@bp.response(200, s.ListPageOut)
@_documented
def list_allegations(query: dict[str, Any]) -> Response:
    """List allegations newest first, filtered, in pages (monitors: their organisation's)."""
    late = _behind(query)
    if late is not None:
        return late
    page = views().list_page(ctx.actor(), Filters.of(query), limit=query["limit"],
                        cursor=query.get("cursor"))
    return jsonify(s.ListPageOut().dump({"items": page.items, "next_cursor": page.next_cursor}))


@bp.route("/stats", methods=["GET"])
@bp.arguments(s.StatsQuerySchema, location="query", unknown=RAISE)
@bp.response(200, s.StatsOut)
@_documented
def stats(query: dict[str, Any]) -> Response:
    """Count allegations, victims and children, grouped by the chosen dimensions."""
    policy.require(ctx.actor(), "stats")  # before waiting for min_position
    late = _behind(query)
    if late is not None:
        return late
    result = views().stats(ctx.actor(), Filters.of(query), query["group_by"])
    return jsonify(s.StatsOut().dump(result))


def projection_check(app: Flask) -> dict[str, Any]:
    """Readiness detail: the views answer; their lag is reported (it does not fail readiness)."""
    services = app.extensions["tracker"]
    return {"ok": True, **lag(services.app)}


def projection_metrics(app: Flask, metrics: Any) -> None:
    """Scrape-time gauges of the views' position and lag."""
    now = lag(app.extensions["tracker"].app)
    metrics.gauge("tracker_projection_position",
                  "Last log position applied to the views (-1: none)").set(now["position"])
    metrics.gauge("tracker_projection_lag",
                  "Events in the log not yet applied to the views").set(now["lag"])


def init_app(app: Flask) -> None:
    """Create the views if missing, keep the read side, report lag on /readyz and /metrics."""
    app.extensions["tracker.views"] = Views(app.extensions["tracker"].app.db)
    health.CHECKS["projections"] = projection_check
    if projection_metrics not in health.SCRAPERS:
        health.SCRAPERS.append(projection_metrics)
