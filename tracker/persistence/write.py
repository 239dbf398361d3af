"""What a save carries into the event store's transaction besides the events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from eventsourcing.persistence import StoredEvent

from tracker.audit.log import TreeCache, append_leaves, hold_leaves
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


def in_transaction(cur: Cursor, stored_events: list[StoredEvent], ids: list[int],
                   write: WriteContext | None, cache: TreeCache | None = None) -> None:
    """Everything that must commit atomically with the events.

    SQLite: the leaves with their positions (the write lock is held). PostgreSQL: what the
    leaves commit to, held unpositioned until the sequencer places them after the commit.
    """
    if cur.dialect == "sqlite":
        positions = append_leaves(cur, stored_events, ids, cache)
        if write is not None:
            write.positions = positions
    else:
        hold_leaves(cur, stored_events, ids)
    if write is None:
        return
    now = datetime.now(UTC).isoformat()
    cur.executemany(
        "INSERT INTO data_keys (allegation_id, wrapped, created_at) VALUES (?, ?, ?)",
        [(aid, wrapped, now) for aid, wrapped in write.new_keys.items()],
    )
    if write.new_keys and write.master_check is not None:
        require_check(cur, write.master_check)  # no key wrapped by a retired master key
    if write.erase_keys and cur.dialect == "sqlite":
        # Overwrite the freed bytes instead of leaving the key in free pages.
        cur.execute("PRAGMA secure_delete = ON")
    for aid, reason in write.erase_keys.items():
        cur.execute(
            "UPDATE data_keys SET wrapped = NULL, erased_at = ?, erase_reason = ?"
            " WHERE allegation_id = ?",
            (now, reason, aid),
        )
