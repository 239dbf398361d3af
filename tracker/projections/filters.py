"""The list filters shared by the allegation list, the statistics and the reviewer queue.

Within one filter, values are alternatives (`status=received,under_review`); filters combine
with AND. `perpetrator` matches a perpetrator's type (e.g. `armed_group`) or name (any case).
Submission bounds are instants (a date alone means the whole day, UTC); incident bounds are
dates compared with the incident's date (`date_from` for a range).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from tracker import policy
from tracker.domain.values import Actor
from tracker.persistence.db import Dialect
from tracker.projections import search

NO_ASSIGNEE = "none"
ME = "me"


@dataclass(frozen=True)
class Filters:
    """What to select; empty fields select everything."""

    status: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    country: tuple[str, ...] = ()
    admin1: str | None = None
    perpetrator: str | None = None
    assignee: str | None = None  # a user id, "me" or "none"
    submitted_from: date | datetime | None = None
    submitted_to: date | datetime | None = None
    incident_from: date | None = None
    incident_to: date | None = None
    q: str | None = None

    @classmethod
    def of(cls, values: dict[str, Any]) -> Filters:
        """Filters from plain values (lists for the multi-valued ones); other keys ignored."""
        fields = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        for name in ("status", "category", "country"):
            if name in fields:
                fields[name] = tuple(dict.fromkeys(fields[name] or ()))
        return cls(**fields)


def instant(value: date | datetime, end: bool) -> str:
    """An instant as stored in the views (`isoformat()` in UTC); a date is its whole day."""
    if not isinstance(value, datetime):
        day = datetime.combine(value, time(), UTC)
        value = day + timedelta(days=1, microseconds=-1) if end else day
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _in(column: str, values: tuple[str, ...] | list[str], params: list[Any]) -> str:
    params.extend(values)
    return f"{column} IN ({', '.join('?' * len(values))})"


def category_join(f: Filters, params: list[Any]) -> str:
    """The join of a category per row (for grouping), limited to the filtered ones."""
    on = "c.seq = a.seq"
    if f.category:
        on += " AND " + _in("c.category", f.category, params)
    return f"JOIN allegation_categories c ON {on}"


def _perpetrator_match(alias: str, value: str, params: list[Any]) -> str:
    params.extend([value.casefold(), value])
    return f"({alias}.name_key = ? OR {alias}.type = ?)"


def perpetrator_join(f: Filters, params: list[Any]) -> str:
    """The join of a perpetrator per row (for grouping; none: NULL), limited to the filtered."""
    on = "p.seq = a.seq"
    if f.perpetrator:
        return ("JOIN allegation_perpetrators p ON " + on + " AND "
                + _perpetrator_match("p", f.perpetrator, params))
    return f"LEFT JOIN allegation_perpetrators p ON {on}"


def where(f: Filters, actor: Actor, dialect: Dialect, params: list[Any],
          joined: frozenset[str] = frozenset()) -> str:
    """The WHERE clause on `a` (allegation_list) for `actor`; `joined`: filters done by a join."""
    terms = ["1 = 1"]
    if policy.sees_organisation_only(actor):
        terms.append("a.organisation = ?")
        params.append(actor.organisation)
    if f.status:
        terms.append(_in("a.status", f.status, params))
    if f.country:
        terms.append(_in("a.country", f.country, params))
    if f.admin1:
        terms.append("a.admin1 = ?")
        params.append(f.admin1)
    if f.category and "category" not in joined:
        match = _in("fc.category", f.category, params)
        terms.append("EXISTS (SELECT 1 FROM allegation_categories fc"
                     f" WHERE fc.seq = a.seq AND {match})")
    if f.perpetrator and "perpetrator" not in joined:
        match = _perpetrator_match("fp", f.perpetrator, params)
        terms.append("EXISTS (SELECT 1 FROM allegation_perpetrators fp"
                     f" WHERE fp.seq = a.seq AND {match})")
    if f.assignee == NO_ASSIGNEE:
        terms.append("a.assignee IS NULL")
    elif f.assignee:
        terms.append("a.assignee = ?")
        params.append(actor.id if f.assignee == ME else f.assignee)
    if f.submitted_from is not None:
        terms.append("a.submitted_at >= ?")
        params.append(instant(f.submitted_from, end=False))
    if f.submitted_to is not None:
        terms.append("a.submitted_at <= ?")
        params.append(instant(f.submitted_to, end=True))
    if f.incident_from is not None:
        terms.append("a.incident_date >= ?")
        params.append(f.incident_from.isoformat())
    if f.incident_to is not None:
        terms.append("a.incident_date <= ?")
        params.append(f.incident_to.isoformat())
    if f.q:
        sql, values = search.condition(dialect, f.q)
        terms.append(sql)
        params.extend(values)
    return " AND ".join(terms)
