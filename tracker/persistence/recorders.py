"""Event-store recorders that write audit leaves and keys in the events' own transaction."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
)
from psycopg.sql import SQL, Identifier

from tracker.audit.log import INSERT_WITH_PENDING, TreeCache, pending_json
from tracker.domain.errors import MasterKeyError
from tracker.persistence import sequencer
from tracker.persistence.db import Cursor
from tracker.persistence.write import WriteContext, in_transaction, keys_in_transaction
from tracker.protection.keystore import queue_check, refused_as_rotated


class StatementCachingPool(SQLiteConnectionPool):
    """The library's SQLite connection pool, with a statement cache worth the name.

    eventsourcing 9.5 opens its connections with `cached_statements=True`, which `sqlite3`
    reads as a cache of one statement: every other statement is compiled again each time it
    runs (measured: 50 to 80 µs of a ~500 µs submission, 18 µs of each token check). This is the
    library's `_create_connection` with a cache of `CACHED_STATEMENTS`; the rest is unchanged.
    """

    CACHED_STATEMENTS = 256

    def _create_connection(self) -> SQLiteConnection:
        try:
            c = sqlite3.connect(database=self.db_name, uri=True, check_same_thread=False,
                                isolation_level=None,  # auto-commit mode, as the library's
                                cached_statements=self.CACHED_STATEMENTS,
                                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT)
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            mode = c.execute("PRAGMA journal_mode;").fetchone()[0]
            if mode.lower() != "wal":
                c.execute("PRAGMA journal_mode=WAL;")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        c.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=c, max_age=self.max_age)


class WriteQueue:
    """Lines up this database's writers across the tracker's processes (gunicorn workers, the
    CLI) on a kernel lock of a file beside it (`<database>.writers`, 0600).

    SQLite lets one writer in at a time; the others retry in its busy handler, which sleeps
    1, 2, 5, 10, … ms between tries — far longer than the ~0.3 ms write they wait for (and a
    waiter that polls instead loses the race to the writer that just finished, again and
    again). A writer waiting on `flock` is woken by the kernel the moment the lock is free,
    and the kernel releases the lock of a process that dies. The holder holds it only for its
    own insert and commit, which SQLite bounds (its lock timeout); a process frozen while
    holding it is ended by the server's worker timeout. SQLite's own lock still guards the
    data: other programs writing the file need not know of this queue.
    """

    def __init__(self, db_path: str, timeout: float) -> None:
        self.path = f"{db_path}.writers"
        self.timeout = timeout
        self.fd: int | None = None
        self.threads = threading.Lock()  # flock does not exclude threads of one process
        ref = weakref.ref(self)

        def in_child() -> None:
            queue = ref()
            if queue is not None:
                queue.forked()

        os.register_at_fork(after_in_child=in_child)

    def forked(self) -> None:
        """In a new child process: its own place in the queue (an inherited open file shares
        the parent's lock, and the parent's threads may have held the thread lock)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)  # the child's copy only: the parent keeps its own
        self.fd = None
        self.threads = threading.Lock()

    def __enter__(self) -> None:
        if not self.threads.acquire(timeout=self.timeout):
            raise OperationalError(f"database is locked: another thread of this process kept "
                                   f"writing for more than {self.timeout:g} s")
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self.threads.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()


class TrackerSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite: rowid is the notification id; writes are serialised by the database lock,
    so each append gives its leaves their positions in its own transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tree_cache = TreeCache()
        # Every recorder and query of the application shares this datastore's pool; no
        # connection is open yet (they open on first use).
        pool = self.datastore.pool
        if type(pool) is SQLiteConnectionPool:
            pool.__class__ = StatementCachingPool
        self.write_queue: WriteQueue | contextlib.nullcontext[None] = contextlib.nullcontext()
        if not pool.is_sqlite_memory_mode and not pool.db_name.startswith("file:"):
            self.write_queue = WriteQueue(pool.db_name,
                                          pool.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT)

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
            with self.write_queue:
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
        # Columns travel as parallel arrays, the payloads as binary (`%b`): the library's
        # array of composite values is dumped as text, every payload hex-escaped by a regex.
        # Rendered to text once, not at each write.
        self.insert_with_pending = SQL(INSERT_WITH_PENDING).format(insert=SQL(
            "INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %b::bytea[])").format(
                schema=Identifier(self.datastore.schema),
                table=Identifier(self.events_table_name))).as_string(None)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        """Insert the events with their pending leaves and keys, commit, then wait for their
        positions (the sequencer).

        Two round trips: one pipeline commits the events' transaction — events and pending
        leaves in one statement, keys, the master-key check — then one call of the server's
        sequencer function answers their positions. Unlike the library's, any exception — ours
        included — rolls the events' transaction back (the library commits when a hook
        raises), and no LOCK TABLE is taken: order comes from the sequencer."""
        if not stored_events:
            return []
        write: WriteContext | None = kwargs.get("write")
        with self.datastore.get_connection() as conn:
            assert conn.autocommit
            try:
                with conn.pipeline() as p, conn.cursor() as c, conn.cursor() as inserted:
                    c.execute("BEGIN")
                    inserted.execute(self.insert_with_pending, (
                        [s.originator_id for s in stored_events],
                        [s.originator_version for s in stored_events],
                        [s.topic for s in stored_events],
                        [s.state for s in stored_events], pending_json(stored_events)))
                    if write is not None:
                        keys_in_transaction(Cursor(c, "postgres"), write, queue_check)
                    c.execute("COMMIT")
                    p.sync()
                    ids = _ids(stored_events, inserted.fetchall())
            except BaseException as e:
                sequencer.abandon(conn)
                if isinstance(e, psycopg.errors.RaiseException) and refused_as_rotated(e):
                    raise MasterKeyError(str(e.diag.message_primary)) from None
                raise
            positions = self.sequence(ids, conn=conn)
        if write is not None:
            write.positions = [positions[i] for i in ids]
        return ids

    def sequence(self, ids: Sequence[int] = (), *, conn: Any = None) -> dict[int, int]:
        """The positions of the committed events `ids` (see `tracker.persistence.sequencer`);
        with no ids, place whatever is pending now (after a writer crashed, say)."""
        if conn is not None:
            return sequencer.sequence(conn, ids, self.channel_name)
        with self.datastore.get_connection() as own:
            assert own.autocommit
            positions: dict[int, int] = sequencer.sequence(own, ids, self.channel_name)
        return positions


def _ids(stored_events: Sequence[StoredEvent], rows: list[Any]) -> list[int]:
    """The notification ids the insert gave, in the order of the events."""
    given = {(r["aid"], int(r["version"])): int(r["notification_id"]) for r in rows}
    try:
        return [given[(str(s.originator_id), int(s.originator_version))] for s in stored_events]
    except KeyError:
        raise ProgrammingError(f"expected {len(stored_events)} notification ids, got "
                               f"{len(rows)}") from None
