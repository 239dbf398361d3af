"""Query and output schemas of the allegation list and the statistics."""

from __future__ import annotations

import datetime as dt
from typing import Any

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v
from webargs.fields import DelimitedList

from api.schemas.inputs import Strict, _country
from api.schemas.outputs import Out, PerpetratorOut
from tracker.domain.values import STATUSES
from tracker.projections.listing import DEFAULT_LIMIT, MAX_LIMIT
from tracker.projections.stats import DIMENSIONS
from tracker.taxonomy import category_codes


class Instant(f.Field[dt.date | dt.datetime]):
    """An ISO 8601 date (the whole day, UTC) or date-time (without a zone: UTC)."""

    default_error_messages = {"invalid": "Not an ISO 8601 date or date-time."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any
                     ) -> dt.date | dt.datetime:
        if not isinstance(value, str) or not 10 <= len(value) <= 40:
            raise self.make_error("invalid")
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value)
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _bounds(data: dict[str, Any], low: str, high: str) -> None:
    a, b = data.get(low), data.get(high)
    if a is None or b is None:
        return
    a_day = a.date() if isinstance(a, dt.datetime) else a
    b_day = b.date() if isinstance(b, dt.datetime) else b
    same_kind = isinstance(a, dt.datetime) == isinstance(b, dt.datetime)
    if (a > b) if same_kind else a_day > b_day:
        raise ma.ValidationError(f"Must not be after {high}.", low)


MAX_POSITION = 2**62  # positions are 64-bit integers in both databases


class FiltersSchema(Strict):
    """The filters shared by the list and the statistics."""

    # "?status=" is refused (422) rather than read as "no filter": omit a filter to not filter.
    status = DelimitedList(f.String(validate=v.OneOf(STATUSES)), validate=v.Length(min=1),
                           metadata={"description": "Comma-separated statuses (any of)"})
    category = DelimitedList(f.String(validate=v.OneOf(sorted(category_codes()))),
                             validate=v.Length(min=1),
                             metadata={"description": "Comma-separated category codes (any of)"})
    country = DelimitedList(f.String(validate=_country), validate=v.Length(min=1),
                            metadata={"description": "Comma-separated ISO 3166-1 alpha-2 codes"})
    admin1 = f.String(validate=v.Length(1, 100), metadata={"description": "Exact admin1 name"})
    perpetrator = f.String(validate=v.Length(1, 200), metadata={
        "description": "A perpetrator type (e.g. armed_group) or name (any case)"})
    assignee = f.String(validate=v.Length(1, 100), metadata={
        "description": "A reviewer's user id, `me`, or `none` (unassigned)"})
    submitted_from = Instant(metadata={"description": "Submitted at or after (date: whole day)"})
    submitted_to = Instant(metadata={"description": "Submitted at or before (date: whole day)"})
    incident_from = f.Date(metadata={"description": "Incident on or after (ranges: date_from)"})
    incident_to = f.Date(metadata={"description": "Incident on or before (ranges: date_from)"})
    q = f.String(validate=v.Length(1, 200), metadata={
        "description": "Words that must all appear (summary, description, place, perpetrator "
                       "names, added information); case and accents ignored"})
    min_position = f.Integer(validate=v.Range(0, MAX_POSITION), metadata={
        "description": "Wait (at most 5 s) until the views include this log position; "
                       "503 with Retry-After if they do not"})

    @ma.validates_schema
    def _ordered_bounds(self, data: dict[str, Any], **_: Any) -> None:
        _bounds(data, "submitted_from", "submitted_to")
        _bounds(data, "incident_from", "incident_to")


class ListQuerySchema(FiltersSchema):
    limit = f.Integer(load_default=DEFAULT_LIMIT, validate=v.Range(1, MAX_LIMIT),
                      metadata={"description": f"Page size, at most {MAX_LIMIT}"})
    cursor = f.String(validate=v.Length(1, 1000),
                      metadata={"description": "`next_cursor` of the previous page (opaque)"})


class StatsQuerySchema(FiltersSchema):
    group_by = DelimitedList(f.String(validate=v.OneOf(list(DIMENSIONS))), load_default=list,
                             validate=v.Length(min=1),
                             metadata={"description": "Comma-separated dimensions: "
                                                      + ", ".join(DIMENSIONS)})


class ListItemOut(Out):
    id = f.String()
    status = f.String()
    summary = f.String()
    categories = f.List(f.String())
    incident_date = f.String(allow_none=True, metadata={"description": "date, or date_from"})
    incident_date_to = f.String(allow_none=True, metadata={"description": "end of a range"})
    incident_date_precision = f.String(allow_none=True,
                                       metadata={"description": "day, month, year or range"})
    incident_month = f.String(allow_none=True, metadata={"description": "YYYY-MM, if known"})
    country = f.String(allow_none=True)
    admin1 = f.String(allow_none=True)
    place = f.String(allow_none=True)
    alleged_perpetrators = f.List(f.Nested(PerpetratorOut))
    victims = f.Integer(allow_none=True)
    children = f.Integer(allow_none=True)
    assignee = f.String(allow_none=True)
    duplicate_of = f.String(allow_none=True)
    organisation = f.String()
    personal_data_erased = f.Boolean()
    sources = f.Integer(metadata={"description": "sources graded so far (corroboration)"})
    information = f.Integer()
    evidence = f.Integer()
    comments = f.Integer()
    version = f.Integer()
    submitted_at = f.String()
    updated_at = f.String()
    position = f.Integer(metadata={"description": "log position of its last event"})


class ListPageOut(Out):
    items = f.List(f.Nested(ListItemOut))
    next_cursor = f.String(allow_none=True, metadata={"description": "null on the last page"})


class StatsGroupOut(Out):
    key = f.Dict(keys=f.String(), values=f.String(allow_none=True))
    allegations = f.Integer()
    victims = f.Integer()
    children = f.Integer()


class StatsOut(Out):
    position = f.Integer(metadata={"description": "the views' log position of these counts"})
    groups = f.List(f.Nested(StatsGroupOut))
