"""Reads the event log by audit position: leaves joined to their stored records, in order."""

from __future__ import annotations

from typing import Any

from tracker.audit.log import leaves_with_records, tree_size
from tracker.persistence.db import Cursor


def page_sql(app: Any) -> str:
    """The SELECT of stored records after a position, in log order (both dialects)."""
    return ("SELECT l.position, e.originator_id, e.originator_version, e.topic, e.state,"
            " l.allegation_id, l.recorded_at" + leaves_with_records(app.db) +
            " WHERE l.position > ? ORDER BY l.position LIMIT ?")


def _tuples(cur: Cursor) -> None:
    """Make this cursor's rows plain tuples (cheaper than dicts for many rows)."""
    if cur.dialect == "postgres":
        from psycopg.rows import tuple_row

        cur.raw.row_factory = tuple_row
    else:
        getattr(cur.raw, "sqlite_cursor", cur.raw).row_factory = None


def read_rows(cur: Cursor, app: Any, after: int, limit: int) -> list[tuple[Any, ...]]:
    """Raw rows (position, originator_id, version, topic, state, allegation id, time)."""
    _tuples(cur)
    cur.execute(page_sql(app), (after, limit))
    rows: list[tuple[Any, ...]] = cur.raw.fetchall()
    return rows


def records_sql(app: Any) -> str:
    """The SELECT of what the projector reads: (position, topic, version, state, allegation
    id, recorded_at) after a position, in log order. `l.position > ?` leaves out leaves not
    yet given a position."""
    return ("SELECT l.position, e.topic, e.originator_version, e.state, l.allegation_id,"
            " l.recorded_at" + leaves_with_records(app.db) +
            " WHERE l.position > ? ORDER BY l.position LIMIT ?")


def read_records(cur: Cursor, app: Any, after: int, limit: int) -> list[tuple[Any, ...]]:
    """Up to `limit` stored events after position `after`, contiguous, in log order (the
    cursor's rows become tuples: use it for nothing else afterwards)."""
    _tuples(cur)
    cur.execute(records_sql(app), (after, limit))
    rows: list[tuple[Any, ...]] = cur.raw.fetchall()
    if rows and (rows[0][0] != after + 1 or rows[-1][0] != after + len(rows)):
        # Never expected (positions are contiguous): keep what comes before the first gap.
        expected = after + 1
        for n, row in enumerate(rows):
            if row[0] != expected + n:
                return rows[:n]
    return rows


def log_size(app: Any) -> int:
    """How many events the log holds (positions 0 .. size-1)."""
    with app.db.read() as cur:
        return tree_size(cur)
