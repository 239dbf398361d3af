"""Reads the event log by audit position: leaves joined to stored events, decoded in order."""

from __future__ import annotations

from typing import Any, NamedTuple

from tracker.audit.log import leaves_with_records, stored_event, tree_size
from tracker.persistence.db import Cursor


class Entry(NamedTuple):
    """One event of the log with its audit leaf's position, allegation id and time."""

    position: int
    allegation_id: str
    recorded_at: str  # the event's timestamp exactly as stored (ISO 8601, UTC)
    event: Any


def page_sql(app: Any) -> str:
    """The SELECT of stored records after a position, in log order (both dialects)."""
    return ("SELECT l.position, e.originator_id, e.originator_version, e.topic, e.state,"
            " l.allegation_id, l.recorded_at" + leaves_with_records(app.db) +
            " WHERE l.position > ? ORDER BY l.position LIMIT ?")


def read_rows(cur: Cursor, app: Any, after: int, limit: int) -> list[tuple[Any, ...]]:
    """Raw rows (position, originator_id, version, topic, state, allegation id, time)."""
    cur.execute(page_sql(app), (after, limit))
    rows: list[tuple[Any, ...]] = cur.raw.fetchall()
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]


def read_page(app: Any, after: int, limit: int) -> list[Entry]:
    """Up to `limit` decoded events after position `after` (contiguous, in log order)."""
    with app.db.read() as cur:
        rows = read_rows(cur, app, after, limit)
    out: list[Entry] = []
    expected = after + 1
    to_domain_event = app.mapper.to_domain_event
    for position, originator_id, version, topic, state, allegation_id, recorded_at in rows:
        if position != expected:
            break  # never expected (positions are contiguous); stop rather than skip one
        stored = stored_event(originator_id, version, topic, state)
        out.append(Entry(position, allegation_id, recorded_at, to_domain_event(stored)))
        expected += 1
    return out


def log_size(app: Any) -> int:
    """How many events the log holds (positions 0 .. size-1)."""
    with app.db.read() as cur:
        return tree_size(cur)
