"""Input schemas: every body and query parameter is checked here before the application."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import marshmallow as ma
import pycountry
from marshmallow import fields as f
from marshmallow import validate as v

from tracker.application import MAX_ENTRIES_PAGE, RECENT_ENTRIES
from tracker.domain.values import (
    CREDIBILITY,
    DATE_PRECISIONS,
    LOCATION_PRECISIONS,
    OFFICIAL_RESPONSE_TYPES,
    PERPETRATOR_TYPES,
    RELIABILITY,
    SOURCE_TYPES,
    STATUSES,
    victims_problems,
)
from tracker.taxonomy import category_codes

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                   r"[0-9a-fA-F]{12}$")


def _country(value: str) -> None:
    if not (len(value) == 2 and value.isupper() and pycountry.countries.get(alpha_2=value)):
        raise ma.ValidationError("Not an ISO 3166-1 alpha-2 country code (e.g. 'ML').")


def _not_future(value: dt.date) -> None:
    if value > dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1):
        raise ma.ValidationError("Must not be in the future.")


def _text(lo: int, hi: int, **kw: Any) -> f.String:
    return f.String(validate=v.Length(lo, hi), **kw)


class Strict(ma.Schema):
    """Unknown fields are refused: a client cannot set what the server sets."""

    class Meta:
        unknown = ma.RAISE


class LocationSchema(Strict):
    country = f.String(required=True, validate=_country,
                       metadata={"description": "ISO 3166-1 alpha-2", "example": "ML"})
    admin1 = _text(1, 100)
    place = _text(1, 200)
    lat = f.Float(validate=v.Range(-90, 90), allow_nan=False)
    lon = f.Float(validate=v.Range(-180, 180), allow_nan=False)
    precision = f.String(validate=v.OneOf(LOCATION_PRECISIONS), load_default="approximate")

    @ma.validates_schema
    def _both_coordinates(self, data: dict[str, Any], **_: Any) -> None:
        if ("lat" in data) != ("lon" in data):
            raise ma.ValidationError("Give both lat and lon, or neither.", "lat")


class IncidentSchema(Strict):
    date = f.Date(validate=_not_future)
    date_precision = f.String(validate=v.OneOf(DATE_PRECISIONS))
    date_from = f.Date(validate=_not_future)
    date_to = f.Date(validate=_not_future)
    location = f.Nested(LocationSchema, required=True)

    @ma.validates_schema
    def _one_way_of_dating(self, data: dict[str, Any], **_: Any) -> None:
        single = "date" in data
        ranged = "date_from" in data or "date_to" in data
        if single == ranged:
            raise ma.ValidationError(
                "Give either `date` with `date_precision`, or `date_from` and `date_to`.", "date")
        if single and "date_precision" not in data:
            raise ma.ValidationError("Required with `date`.", "date_precision")
        if ranged:
            if "date_from" not in data or "date_to" not in data:
                raise ma.ValidationError("Give both date_from and date_to.", "date_from")
            if data["date_from"] > data["date_to"]:
                raise ma.ValidationError("Must not be after date_to.", "date_from")

    @ma.post_load
    def _as_text(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        # Events store plain JSON values.
        return {k: (x.isoformat() if isinstance(x, dt.date) else x) for k, x in data.items()}


class SourceSchema(Strict):
    type = f.String(required=True, validate=v.OneOf(SOURCE_TYPES))
    reliability = f.String(required=True, validate=v.OneOf(RELIABILITY),
                           metadata={"description": "Admiralty source reliability, A to F"})
    credibility = f.Integer(required=True, strict=True, validate=v.OneOf(CREDIBILITY),
                            metadata={"description": "Admiralty information credibility, 1 to 6"})
    description = _text(1, 5000, required=True)


class PerpetratorSchema(Strict):
    name = _text(1, 200, required=True)
    type = f.String(required=True, validate=v.OneOf(PERPETRATOR_TYPES))


def _count(**kw: Any) -> f.Integer:
    return f.Integer(strict=True, validate=v.Range(0, 10_000_000), **kw)


class VictimsSchema(Strict):
    count = _count(required=True)
    children = _count(allow_none=True)
    female = _count(allow_none=True)
    male = _count(allow_none=True)
    unknown_sex = _count(allow_none=True)
    groups = f.List(_text(1, 100), validate=v.Length(max=20))

    @ma.validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        problems = victims_problems(data)
        if problems:
            raise ma.ValidationError({k.removeprefix("victims."): m for k, m in problems.items()})


def _names() -> f.List[str]:
    return f.List(_text(1, 300), validate=v.Length(max=200))


class ProtectedSchema(Strict):
    victim_names = _names()
    witness_names = _names()
    contacts = _names()
    source_identity = _text(1, 2000)
    notes = _text(1, 20_000)


class ConsentSchema(Strict):
    share_with_partners = f.Boolean(required=True)
    identify_victims = f.Boolean(required=True)


class OfficialResponseSchema(Strict):
    type = f.String(required=True, validate=v.OneOf(OFFICIAL_RESPONSE_TYPES))
    text = _text(1, 20_000, required=True)
    date = f.Date(validate=_not_future)

    @ma.post_load
    def _as_text(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {k: (x.isoformat() if isinstance(x, dt.date) else x) for k, x in data.items()}


class SubmissionSchema(Strict):
    summary = _text(1, 300, required=True)
    description = _text(1, 20_000, required=True)
    categories = f.List(f.String(validate=v.OneOf(sorted(category_codes()))), required=True,
                        validate=v.Length(1, 15))
    incident = f.Nested(IncidentSchema, required=True)
    source = f.Nested(SourceSchema, required=True)
    alleged_perpetrators = f.List(f.Nested(PerpetratorSchema), validate=v.Length(max=50))
    victims = f.Nested(VictimsSchema)
    protected = f.Nested(ProtectedSchema)
    consent = f.Nested(ConsentSchema)
    language = f.String(validate=v.Regexp(_LANG, error="Not a language tag such as 'fr' or 'en'."))
    official_response = f.Nested(OfficialResponseSchema)

    @ma.validates("categories")
    def _no_repeats(self, value: list[str], **_: Any) -> None:
        if len(set(value)) != len(value):
            raise ma.ValidationError("A category is repeated.")


class VersionedSchema(Strict):
    expected_version = f.Integer(strict=True, validate=v.Range(1, 2**62),
                                 metadata={"description": "Refuse (409) unless this is current."})


class StatusChangeSchema(VersionedSchema):
    status = f.String(required=True, validate=v.OneOf(STATUSES))
    reason = _text(1, 2000, required=True)
    duplicate_of = f.String(validate=v.Regexp(_UUID, error="Not an allegation id."),
                            allow_none=True)


class AssignmentSchema(VersionedSchema):
    assignee = _text(1, 100, required=True, metadata={"description": "A reviewer's user id"})


class CommentSchema(VersionedSchema):
    text = _text(1, 20_000, required=True)


class InformationSchema(VersionedSchema):
    text = _text(1, 20_000)
    source = f.Nested(SourceSchema)
    protected = f.Nested(ProtectedSchema)

    @ma.validates_schema
    def _something(self, data: dict[str, Any], **_: Any) -> None:
        if "text" not in data and "source" not in data:
            raise ma.ValidationError("Give `text`, a `source`, or both.", "text")


class EvidenceSchema(VersionedSchema):
    sha256 = f.String(required=True, validate=v.Regexp(_SHA256, error="Not a SHA-256 (64 hex)."))
    media_type = f.String(required=True, validate=v.Regexp(
        _MEDIA_TYPE, error="Not a media type (e.g. image/jpeg)."))
    size = f.Integer(required=True, strict=True, validate=v.Range(0, 1 << 44))
    description = _text(1, 5000, required=True)
    uri = f.Url(schemes={"http", "https", "s3", "ipfs"}, require_tld=False)


class ErasureSchema(Strict):
    reason = _text(1, 2000, required=True)


class AllegationQuerySchema(Strict):
    version = f.Integer(validate=v.Range(1, 2**62))
    as_of = f.AwareDateTime(default_timezone=dt.UTC,
                            metadata={"description": "ISO 8601 time; the state as known then"})

    @ma.validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if "version" in data and "as_of" in data:
            raise ma.ValidationError("Give `version` or `as_of`, not both.", "as_of")


class EntriesQuerySchema(Strict):
    """A page of an allegation's comments, information or evidence (newest first)."""

    limit = f.Integer(load_default=RECENT_ENTRIES, validate=v.Range(1, MAX_ENTRIES_PAGE),
                      metadata={"description": f"Page size, at most {MAX_ENTRIES_PAGE}"})
    cursor = f.String(validate=v.Length(1, 1000),
                      metadata={"description": "`next_cursor` of the previous page (opaque)"})


class UsersQuerySchema(Strict):
    role = f.String(validate=v.OneOf(("monitor", "reviewer", "auditor", "admin")))
