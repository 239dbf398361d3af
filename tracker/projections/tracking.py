"""The tracked position of each projection, advanced by compare-and-set with the view rows."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tracker.persistence.db import Cursor, Database
from tracker.projections.schema import PROJECTION, ensure


def read_position(cur: Cursor, name: str = PROJECTION) -> int:
    """The last log position applied to the views (-1: none yet)."""
    value = cur.scalar("SELECT position FROM projection_tracking WHERE name = ?", (name,))
    return -1 if value is None else int(value)


def advance(cur: Cursor, old: int, new: int, name: str = PROJECTION) -> bool:
    """Move the position from `old` to `new`; False when another projector moved it first.

    On SQLite this is the transaction's first statement, so it takes the write lock before
    anything is read; on PostgreSQL it locks the tracking row until commit.
    """
    cur.execute("UPDATE projection_tracking SET position = ?, updated_at = ?"
                " WHERE name = ? AND position = ?",
                (new, datetime.now(UTC).isoformat(), name, old))
    return cur.rowcount == 1


def current_position(db: Database, name: str = PROJECTION) -> int:
    """The views' position, read in a transaction of its own."""
    with db.read() as cur:
        return read_position(cur, name)


def wait_for_position(db: Database, position: int, timeout: float,
                      name: str = PROJECTION) -> bool:
    """Block until the views include log `position` (True), or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + max(0.0, timeout)
    ensure(db)  # a view never built is at position -1, not an error
    pause = 0.005
    while True:
        if current_position(db, name) >= position:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)
