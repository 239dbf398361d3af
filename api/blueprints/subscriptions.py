"""Notification subscriptions (reviewers and monitors, own only) and delivery records."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, url_for
from flask.views import MethodView

from api import context as ctx
from api.blueprints import Blueprint
from api.schemas import outputs as o
from api.schemas import subscriptions as s
from tracker import policy
from tracker.domain.values import Actor
from tracker.notifications.deliveries import Deliveries
from tracker.notifications.subscriptions import Subscriptions

bp = Blueprint("subscriptions", __name__, url_prefix="/v1",
               description="Notifications: subscriptions and deliveries")


def _subscriber() -> Actor:
    who = ctx.actor()
    if who.role != "monitor":  # monitors subscribe to requests for information
        policy.require(who, "subscribe")
    return who


def _subscriptions() -> Subscriptions:
    t = ctx.tracker()
    return Subscriptions(t.app.db, t.app.keys.master, t.config.webhook_deny_private)


def _deliveries() -> Deliveries:
    return Deliveries(ctx.tracker().app.db)


def _reader() -> Actor:
    who = ctx.actor()
    if who.role != "monitor":  # monitors read the deliveries of their own subscriptions
        policy.require(who, "notifications")
    return who


@bp.route("/subscriptions")
class SubscriptionList(MethodView):
    @bp.arguments(s.SubscriptionIn)
    @bp.response(201, s.SubscriptionOut)
    @bp.alt_response(422, schema=o.ProblemOut, description="Invalid or refused target")
    def post(self, body: dict[str, Any]) -> Response:
        """Subscribe a webhook or an e-mail address to the notifications that concern you."""
        record, generated = _subscriptions().create(_subscriber(), body)
        out = record.public()
        if generated:
            out["secret"] = generated
        response = jsonify(s.SubscriptionOut().dump(out))
        response.status_code = 201
        response.headers["Location"] = url_for(".SubscriptionItem", subscription_id=record.id)
        return response

    @bp.response(200, s.SubscriptionOut(many=True))
    def get(self) -> Response:
        """Your subscriptions (secrets are never shown)."""
        who = _subscriber()
        return jsonify([s.SubscriptionOut().dump(r.public())
                        for r in _subscriptions().of_owner(who.id)])


@bp.route("/subscriptions/<subscription_id>")
class SubscriptionItem(MethodView):
    @bp.response(200, s.SubscriptionOut)
    @bp.alt_response(404, schema=o.ProblemOut, description="Not one of yours")
    def get(self, subscription_id: str) -> Response:
        """One of your subscriptions."""
        record = _subscriptions().get(subscription_id, _subscriber().id)
        return jsonify(s.SubscriptionOut().dump(record.public()))

    @bp.response(204)
    @bp.alt_response(404, schema=o.ProblemOut, description="Not one of yours")
    def delete(self, subscription_id: str) -> Response:
        """Delete a subscription: nothing recorded from now on is sent to it."""
        _subscriptions().delete(subscription_id, _subscriber().id)
        return Response(status=204)


@bp.route("/notifications")
@bp.arguments(s.DeliveriesQuery, location="query")
@bp.response(200, s.DeliveriesPage)
def notifications(query: dict[str, Any]) -> Response:
    """Delivery records, newest first: yours, or everyone's for an admin."""
    who = _reader()
    items, cursor = _deliveries().page(None if who.role == "admin" else who.id,
                                       query.get("state"), query["limit"], query.get("cursor"))
    return jsonify(s.DeliveriesPage().dump({"items": items, "next_cursor": cursor}))


@bp.route("/notifications/<delivery_id>")
@bp.response(200, s.DeliveryOut)
@bp.alt_response(404, schema=o.ProblemOut, description="Unknown or not yours")
def notification(delivery_id: str) -> Response:
    """One delivery record: state, attempts, last error, timestamps."""
    return jsonify(s.DeliveryOut().dump(_deliveries().visible(_reader(), delivery_id)))


@bp.route("/notifications/<delivery_id>/retry", methods=["POST"])
@bp.response(202, s.DeliveryOut)
@bp.alt_response(409, schema=o.ProblemOut, description="Not a dead letter")
@bp.alt_response(404, schema=o.ProblemOut, description="Unknown or not yours")
def retry(delivery_id: str) -> Response:
    """Re-drive a dead letter (admin, or the subscription's owner); the relay enqueues it."""
    row = _deliveries().request_redrive(_reader(), delivery_id)
    response = jsonify(s.DeliveryOut().dump(row))
    response.status_code = 202
    return response
