"""Output schemas: what the API answers (documented in /openapi.json)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f

from tracker.application import RECENT_ENTRIES


class Out(ma.Schema):
    """Output schemas keep field order as declared."""

    class Meta:
        ordered = True


def _s(**kw: object) -> f.String:
    return f.String(allow_none=True, **kw)  # type: ignore[arg-type]


class LocationOut(Out):
    country = f.String()
    admin1 = _s()
    place = _s()
    lat = f.Float(allow_none=True)
    lon = f.Float(allow_none=True)
    precision = _s()


class IncidentOut(Out):
    date = _s()
    date_precision = _s()
    date_from = _s()
    date_to = _s()
    location = f.Nested(LocationOut)


class SourceOut(Out):
    id = f.String()
    type = f.String()
    reliability = f.String()
    credibility = f.Integer()
    description = f.String()
    version = f.Integer()
    recorded_at = f.String()
    actor = f.String()
    organisation = f.String()


class PerpetratorOut(Out):
    name = f.String()
    type = f.String()


class VictimsOut(Out):
    count = f.Integer()
    children = f.Integer(allow_none=True)
    female = f.Integer(allow_none=True)
    male = f.Integer(allow_none=True)
    unknown_sex = f.Integer(allow_none=True)
    groups = f.List(f.String())


_PROTECTED_VALUE = {"description": "Personal data in clear for the assigned reviewer and "
                    "admins; otherwise each value reads \"[protected]\" (or \"[erased]\")."}


class ProtectedOut(Out):
    victim_names = f.List(f.String(), metadata=_PROTECTED_VALUE)
    witness_names = f.List(f.String(), metadata=_PROTECTED_VALUE)
    contacts = f.List(f.String(), metadata=_PROTECTED_VALUE)
    source_identity = f.String(metadata=_PROTECTED_VALUE)
    notes = f.String(metadata=_PROTECTED_VALUE)


_POSITION = {"description": "0-based position of its event in the global log"}


class CommentOut(Out):
    text = f.String()
    version = f.Integer(metadata={"description": "the allegation's version this event made"})
    recorded_at = f.String()
    actor = f.String()
    organisation = f.String()
    position = f.Integer(metadata=_POSITION)


class InformationOut(CommentOut):
    """A piece of added information."""

    source_id = f.String(allow_none=True, metadata={
        "description": "the source (in `sources`) this information came with, if any"})


class EvidenceOut(Out):
    sha256 = f.String()
    media_type = f.String()
    size = f.Integer()
    description = f.String()
    uri = _s()
    version = f.Integer()
    recorded_at = f.String()
    actor = f.String()
    organisation = f.String()
    position = f.Integer(metadata=_POSITION)


_NEXT = {"description": "`cursor` of the next (older) page, null on the last page"}


class CommentsPageOut(Out):
    items = f.List(f.Nested(CommentOut), metadata={"description": "newest first"})
    next_cursor = _s(metadata=_NEXT)


class InformationPageOut(Out):
    items = f.List(f.Nested(InformationOut), metadata={"description": "newest first"})
    next_cursor = _s(metadata=_NEXT)


class EvidencePageOut(Out):
    items = f.List(f.Nested(EvidenceOut), metadata={"description": "newest first"})
    next_cursor = _s(metadata=_NEXT)


class OfficialResponseOut(Out):
    type = f.String()
    text = f.String()
    date = _s()


class AllegationOut(Out):
    id = f.String()
    status = f.String()
    version = f.Integer()
    submitted_at = f.String()
    updated_at = f.String()
    organisation = f.String()
    submitted_by = f.String()
    summary = f.String()
    description = f.String()
    categories = f.List(f.String())
    incident = f.Nested(IncidentOut)
    source = f.Nested(SourceOut)
    sources = f.List(f.Nested(SourceOut))
    alleged_perpetrators = f.List(f.Nested(PerpetratorOut))
    victims = f.Nested(VictimsOut, allow_none=True)
    protected = f.Nested(ProtectedOut, allow_none=True)
    consent = f.Dict(keys=f.String(), values=f.Boolean(), allow_none=True)
    language = _s()
    official_responses = f.List(f.Nested(OfficialResponseOut))
    assignee = _s()
    duplicate_of = _s()
    personal_data_erased = f.Boolean()
    information_total = f.Integer(metadata={"description": "pieces of information added"})
    information = f.List(f.Nested(InformationOut), metadata={
        "description": f"the latest {RECENT_ENTRIES} (at most), newest first; every one: "
                       "GET /v1/allegations/{id}/information"})
    information_next_cursor = _s(metadata=_NEXT)
    evidence_total = f.Integer(metadata={"description": "evidence records"})
    evidence = f.List(f.Nested(EvidenceOut), metadata={
        "description": f"the latest {RECENT_ENTRIES} (at most), newest first; every one: "
                       "GET /v1/allegations/{id}/evidence"})
    evidence_next_cursor = _s(metadata=_NEXT)
    comments_total = f.Integer(metadata={"description": "comments"})
    comments = f.List(f.Nested(CommentOut), metadata={
        "description": f"the latest {RECENT_ENTRIES} (at most), newest first; every one: "
                       "GET /v1/allegations/{id}/comments"})
    comments_next_cursor = _s(metadata=_NEXT)


class HistoryEntryOut(Out):
    position = f.Integer(metadata={"description": "0-based position in the global log"})
    type = f.String()
    version = f.Integer()
    recorded_at = f.String()
    actor = f.String()
    actor_role = f.String()
    organisation = f.String()
    request_id = f.String()
    idempotency_key = _s()
    data = f.Dict()
    leaf_hash = f.String(metadata={"description": "base64 RFC 9162 leaf hash"})


class UserOut(Out):
    id = f.String()
    name = f.String()
    role = f.String()
    organisation = f.String()


class ProblemOut(Out):
    type = f.String()
    title = f.String()
    status = f.Integer()
    detail = f.String()
    errors = f.Dict(keys=f.String(), values=f.List(f.String()))
