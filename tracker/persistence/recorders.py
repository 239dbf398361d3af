"""Event-store recorders that write audit leaves and keys in the events' own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from tracker.persistence.db import Cursor
from tracker.persistence.write import in_transaction


class TrackerSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite: rowid is the notification id; writes are serialised by the database lock."""

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        assert ids is not None
        in_transaction(Cursor(c, "sqlite"), list(stored_events), list(ids), kwargs.get("write"))
        return ids


class TrackerPostgresRecorder(PostgresApplicationRecorder):
    """PostgreSQL: the library's EXCLUSIVE table lock orders positions by commit."""

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        assert ids is not None
        in_transaction(Cursor(curs, "postgres"), list(stored_events), list(ids),
                       kwargs.get("write"))
        return ids
