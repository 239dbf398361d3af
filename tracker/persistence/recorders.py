"""Event-store recorders that write audit leaves and keys in the events' own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from tracker.audit.log import TreeCache
from tracker.persistence import sequencer
from tracker.persistence.db import Cursor
from tracker.persistence.write import WriteContext, in_transaction


class TrackerSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite: rowid is the notification id; writes are serialised by the database lock,
    so each append gives its leaves their positions in its own transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tree_cache = TreeCache()

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        assert ids is not None
        in_transaction(Cursor(c, "sqlite"), list(stored_events), list(ids),
                       kwargs.get("write"), self.tree_cache)
        return ids

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        try:
            return super().insert_events(stored_events, **kwargs)
        except BaseException:
            # The insert or the commit failed after the cached tree moved on.
            self.tree_cache.forget()
            raise


class TrackerPostgresRecorder(PostgresApplicationRecorder):
    """PostgreSQL, group commit: writers insert concurrently (no table lock); each event's
    leaf content commits with it, unpositioned; then the sequencer gives leaves their
    positions, one transaction at a time, many writers' events per transaction.

    The log that followers read is the tree (`audit_leaves` by position), whose positions
    commit strictly in order, so a follower never skips an event that commits late.
    A write returns only after its events have positions (acknowledged after that commit).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tree_cache = TreeCache()

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        """Insert the events with their pending leaves and keys, commit, then wait for their
        positions (the sequencer). Unlike the library's, any exception — ours included —
        rolls the whole transaction back (the library commits when a hook raises), and no
        LOCK TABLE is taken: order comes from the sequencer."""
        if not stored_events:
            return []
        write: WriteContext | None = kwargs.get("write")
        with self.datastore.get_connection() as conn, conn.pipeline() as pipeline, \
                conn.transaction(), conn.cursor() as curs:
            PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events)
            pipeline.sync()  # a duplicate version raises here, as IntegrityError
            ids = [int(row["notification_id"]) for row in curs.fetchall()]
            if len(ids) != len(stored_events):
                raise ProgrammingError(f"expected {len(stored_events)} notification ids,"
                                       f" got {len(ids)}")
            in_transaction(Cursor(curs, "postgres"), list(stored_events), ids, write)
        positions = self.sequence(ids)
        if write is not None:
            write.positions = [positions[i] for i in ids]
        return ids

    def sequence(self, ids: Sequence[int] = ()) -> dict[int, int]:
        """The positions of the committed events `ids` (see `tracker.persistence.sequencer`);
        with no ids, place whatever is pending now (after a writer crashed, say)."""
        with self.datastore.get_connection() as conn:
            assert conn.autocommit
            positions: dict[int, int] = sequencer.sequence(conn, ids, self.tree_cache,
                                                              self.channel_name)
        return positions
