"""Schemas of notification subscriptions and delivery records (inputs and outputs apart)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from api.schemas.inputs import Strict, _country
from api.schemas.outputs import Out
from tracker.notifications.deliveries import STATES
from tracker.notifications.rules import CHANNELS, EVENT_TYPES
from tracker.taxonomy import category_codes


class SubscriptionIn(Strict):
    channel = f.String(required=True, validate=v.OneOf(CHANNELS))
    url = f.String(validate=v.Length(1, 2000),
                   metadata={"description": "webhook: an http(s) URL receiving a signed POST"})
    secret = f.String(validate=v.Length(16, 256), load_only=True,
                      metadata={"description": "webhook: HMAC key for X-Tracker-Signature; "
                                               "omit it and one is generated (shown once)"})
    address = f.String(validate=v.Length(3, 254), metadata={"description": "email: recipient"})
    categories = f.List(f.String(validate=v.OneOf(sorted(category_codes()))),
                        validate=v.Length(max=30),
                        metadata={"description": "new allegations in any of these categories"})
    countries = f.List(f.String(validate=_country), validate=v.Length(max=250),
                       metadata={"description": "new allegations in any of these countries"})
    event_types = f.List(f.String(validate=v.OneOf(EVENT_TYPES)), validate=v.Length(max=20),
                         metadata={"description": "new-allegation notifications only when "
                                                  "this includes `Submitted`"})

    @ma.validates_schema
    def _channel_fields(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("channel") == "webhook":
            if "url" not in data:
                raise ma.ValidationError("Required for a webhook.", "url")
            if "address" in data:
                raise ma.ValidationError("Only for channel `email`.", "address")
        elif data.get("channel") == "email":
            if "address" not in data:
                raise ma.ValidationError("Required for an e-mail subscription.", "address")
            for name in ("url", "secret"):
                if name in data:
                    raise ma.ValidationError("Only for channel `webhook`.", name)


class SubscriptionOut(Out):
    id = f.String()
    channel = f.String()
    url = f.String()
    address = f.String()
    categories = f.List(f.String())
    countries = f.List(f.String())
    event_types = f.List(f.String())
    created_at = f.String()
    secret = f.String(metadata={"description": "only in the creation answer, and only when "
                                               "the server generated it"})


class DeliveriesQuery(Strict):
    state = f.String(validate=v.OneOf(STATES))
    limit = f.Integer(load_default=50, validate=v.Range(1, 200))
    cursor = f.String(validate=v.Length(1, 200))


class DeliveryOut(Out):
    id = f.String(metadata={"description": "also sent as X-Tracker-Delivery"})
    subscription_id = f.String()
    owner = f.String()
    channel = f.String()
    state = f.String(metadata={"description": "pending, delivered or failed (dead letter)"})
    event_type = f.String()
    allegation_id = f.String()
    position = f.Integer()
    attempts = f.Integer()
    last_error = f.String(allow_none=True)
    created_at = f.String()
    updated_at = f.String()
    last_attempt_at = f.String(allow_none=True)
    delivered_at = f.String(allow_none=True)
    failed_at = f.String(allow_none=True)
    redrives = f.Integer(attribute="drive")


class DeliveriesPage(Out):
    items = f.List(f.Nested(DeliveryOut))
    next_cursor = f.String(allow_none=True)
