"""PostgreSQL group commit: writers commit concurrently, one sequencer at a time places leaves.

Writers insert their events (and each event's pending leaf) without any table lock, so their
commits overlap. Positions — the one numbering that followers, proofs and clients use — are
given afterwards by the server-side function `tracker_place` (`tracker.persistence.pg_place`),
which every writer calls after its commit: it waits for the sequencer's lock, places every
committed pending leaf in one transaction, whose commit releases the lock, and answers the
writer's positions. Writers that commit while a round runs queue on the lock; the first of
them places all of their leaves at once, and the others find theirs placed. Positions
therefore commit strictly in order and never with gaps: a follower reading by position can
never skip an event that commits late. The lock is held only while the server works and
commits, never across a round trip to a client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq

from tracker.audit.log import BATCH
from tracker.persistence.pg_place import LOCK

__all__ = ["LOCK", "PLACE", "abandon", "sequence"]

PLACE = "SELECT notification_id, position FROM tracker_place(%s::bigint[], %s, %s)"
_ANY_PENDING = "SELECT 1 FROM pending_leaves ORDER BY notification_id LIMIT 1"  # by the index
_STILL_PENDING = "SELECT 1 FROM pending_leaves WHERE notification_id = ANY (%s::bigint[]) LIMIT 1"


def sequence(conn: Any, ids: Sequence[int], channel: str) -> dict[int, int]:
    """The positions of the committed events `ids`, placing them (and every other pending
    leaf) if no sequencer already did; with no ids, place whatever is pending now.

    `conn` is an autocommit psycopg connection. `channel` is notified (LISTEN/NOTIFY)
    whenever a batch of positions commits. On any failure the round's transaction is rolled
    back, which releases the lock.
    """
    wanted: dict[int, int] = {}
    try:
        if not ids:
            # Usually nothing waits (writers place their own): no lock to take then.
            if conn.execute(_ANY_PENDING).fetchone() is None:
                return {}
        while True:
            try:
                rows = conn.execute(PLACE, (list(ids), channel, BATCH)).fetchall()
            except psycopg.errors.LockNotAvailable:
                continue  # waited longer than lock_timeout: ask again
            wanted.update({int(r["notification_id"]): int(r["position"]) for r in rows})
            missing = [i for i in ids if i not in wanted]
            if not missing:
                return wanted
            # More than a batch was pending ahead of them: another round. Or they are gone.
            if conn.execute(_STILL_PENDING, (missing,)).fetchone() is None:
                raise LookupError(f"events {missing} are neither pending nor in the audit log")
    except BaseException:
        abandon(conn)
        raise


def abandon(conn: Any) -> None:
    """Roll back whatever transaction the connection has open (releasing the sequencer lock
    if it held it); if that fails, close the connection (the server then releases the
    session's locks), so that a broken connection back in the pool can never keep every
    writer waiting."""
    try:
        if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.rollback()
    except Exception:  # noqa: BLE001 - any failure: drop the session instead
        conn.close()
