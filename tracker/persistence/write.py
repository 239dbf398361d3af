"""What a save carries into the event store's transaction besides the events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import StoredEvent

from tracker.audit.log import TreeCache, append_leaves
from tracker.persistence.db import Cursor
from tracker.protection.keystore import require_check


@dataclass
class WriteContext:
    """Keys to store or destroy with the events; filled in with the events' log positions."""

    new_keys: dict[str, bytes] = field(default_factory=dict)
    erase_keys: dict[str, str] = field(default_factory=dict)
    positions: list[int] = field(default_factory=list)
    # The master-key check value `new_keys` were wrapped under, verified in the transaction.
    master_check: bytes | None = None

    def store_keys(self, now: str) -> tuple[str, list[tuple[Any, ...]]] | None:
        """The statement (`?` marks) and rows that store the new data keys, if any."""
        if not self.new_keys:
            return None
        return ("INSERT INTO data_keys (allegation_id, wrapped, created_at) VALUES (?, ?, ?)",
                [(aid, wrapped, now) for aid, wrapped in self.new_keys.items()])

    def destroy_keys(self, now: str) -> tuple[str, list[tuple[Any, ...]]] | None:
        """The statement (`?` marks) and rows that destroy the erased data keys, if any."""
        if not self.erase_keys:
            return None
        return ("UPDATE data_keys SET wrapped = NULL, erased_at = ?, erase_reason = ?"
                " WHERE allegation_id = ?",
                [(now, reason, aid) for aid, reason in self.erase_keys.items()])

    @property
    def checks_master(self) -> bool:
        """Whether the transaction must refuse keys wrapped by a retired master key."""
        return bool(self.new_keys) and self.master_check is not None


def now_text() -> str:
    """The time keys are stored or destroyed at."""
    return datetime.now(UTC).isoformat()


def in_transaction(cur: Cursor, stored_events: list[StoredEvent], ids: list[int],
                   write: WriteContext | None, cache: TreeCache | None = None) -> None:
    """SQLite: everything that must commit atomically with the events — the leaves with
    their positions (the write lock is held) and the keys. (PostgreSQL sends the same in one
    pipeline: `tracker.persistence.recorders.TrackerPostgresRecorder`.)"""
    positions = append_leaves(cur, stored_events, ids, cache)
    if write is not None:
        write.positions = positions
        keys_in_transaction(cur, write)


def keys_in_transaction(cur: Cursor, write: WriteContext,
                        check: Callable[[Cursor, bytes], None] = require_check) -> None:
    """Store and destroy the write's data keys, in the events' transaction; refuse keys wrapped
    by a retired master key with `check` (after their insert; PostgreSQL's pipelined write
    passes `keystore.queue_check`)."""
    now = now_text()
    store = write.store_keys(now)
    if store is not None:
        cur.executemany(*store)
    if write.checks_master:
        assert write.master_check is not None
        check(cur, write.master_check)  # no key wrapped by a retired master key
    destroy = write.destroy_keys(now)
    if destroy is not None:
        if cur.dialect == "sqlite":
            # Overwrite the freed bytes instead of leaving the key in free pages.
            cur.execute("PRAGMA secure_delete = ON")
        cur.executemany(*destroy)
