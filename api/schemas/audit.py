"""Audit query and output schemas."""

from __future__ import annotations

from marshmallow import fields as f
from marshmallow import validate as v

from api.schemas.inputs import Strict
from api.schemas.listing import MAX_POSITION
from api.schemas.outputs import Out


class LogQuery(Strict):
    after = f.Integer(validate=v.Range(-1, MAX_POSITION),
                      metadata={"description": "Positions > after"})
    limit = f.Integer(load_default=100, validate=v.Range(1, 200))


class InclusionQuery(Strict):
    position = f.Integer(required=True, validate=v.Range(0, MAX_POSITION))
    tree_size = f.Integer(validate=v.Range(1, MAX_POSITION))


class ConsistencyQuery(Strict):
    from_ = f.Integer(required=True, data_key="from", validate=v.Range(1, MAX_POSITION))
    to = f.Integer(validate=v.Range(1, MAX_POSITION))


class VerifyQuery(Strict):
    pass


class LogEntryOut(Out):
    position = f.Integer()
    allegation_id = f.String()
    version = f.Integer()
    topic = f.String()
    type = f.String()
    recorded_at = f.String()
    payload_sha256 = f.String()
    leaf_hash = f.String()
    actor = f.String()
    actor_role = f.String()
    organisation = f.String()
    request_id = f.String()
    idempotency_key = f.String(allow_none=True)
    data = f.Dict()


class LogOut(Out):
    entries = f.List(f.Nested(LogEntryOut))
    next_after = f.Integer(allow_none=True)
    tree_size = f.Integer()


class VerifyOut(Out):
    ok = f.Boolean()
    checked = f.Integer()
    tree_size = f.Integer()
    root_hash = f.String()
    heads_checked = f.Integer()
    first_bad_position = f.Integer(allow_none=True)
    reason = f.String()
    notes = f.List(f.String(), metadata={
        "description": "present when there is something to say, e.g. events committed but "
                       "still awaiting their position (PostgreSQL), which were not checked"})


class CheckpointOut(Out):
    origin = f.String()
    tree_size = f.Integer()
    root_hash = f.String()
    timestamp = f.String()
    signature = f.String()
    key_id = f.String()


class PublicKeyOut(Out):
    key_id = f.String()
    public_key = f.String(metadata={"description": "raw 32-byte Ed25519 key, base64"})


class InclusionOut(Out):
    position = f.Integer()
    tree_size = f.Integer()
    leaf_hash = f.String()
    audit_path = f.List(f.String())


class ConsistencyOut(Out):
    from_ = f.Integer(data_key="from")
    to = f.Integer()
    consistency = f.List(f.String())
