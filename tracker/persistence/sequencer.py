"""PostgreSQL group commit: writers commit concurrently, one sequencer at a time places leaves.

Writers insert their events (and each event's pending leaf) without any table lock, so their
commits overlap. Positions — the one numbering that followers, proofs and clients use — are
given afterwards by whichever writer holds the sequencer lock: it places every committed
pending leaf in one transaction, then lets the next one in. A writer that finds the
sequencer busy waits on a shared lock (every waiter wakes at once, no CPU spent), then
usually finds its leaves placed. Positions therefore commit strictly in order and never
with gaps: a follower reading by position can never skip an event that commits late.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from tracker.audit.log import MOVE_PENDING, POSITIONS_OF, TreeCache, pending_batch, positions_of
from tracker.persistence.db import Cursor

LOCK = 7_340_112_002  # advisory-lock id of the sequencer


def sequence(conn: Any, ids: Sequence[int], cache: TreeCache, channel: str) -> dict[int, int]:
    """The positions of the committed events `ids`, placing them (and every other pending
    leaf) if no sequencer already did; with no ids, place whatever is pending now.

    `conn` is an autocommit psycopg connection with no transaction open; `channel` is
    notified (LISTEN/NOTIFY) whenever a batch of positions commits.
    """
    if not ids:
        with conn.cursor() as c:
            # Usually nothing waits (writers place their own): no lock to take then.
            if c.execute("SELECT 1 FROM pending_leaves LIMIT 1").fetchone() is None:
                return {}
    while True:
        with conn.cursor() as c:
            if ids:
                leader = Cursor(c, "postgres").scalar("SELECT pg_try_advisory_lock(?)",
                                                          (LOCK,))
            else:
                c.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
                leader = True
        if leader:
            placed = _lead(conn, cache, channel)
            wanted = {i: placed[i] for i in ids if i in placed}
            if len(wanted) < len(ids):  # placed by an earlier sequencer
                with conn.cursor() as c:
                    wanted.update(positions_of(Cursor(c, "postgres"),
                                               [i for i in ids if i not in wanted]))
            if len(wanted) != len(ids):
                missing = sorted(set(ids) - set(wanted))
                raise LookupError(f"events {missing} are neither pending nor in the audit log")
            return wanted
        # Wait for the sequencer at work to finish, then look: one round trip. A wait longer
        # than the connection's lock_timeout just goes round again (the events are committed).
        try:
            with conn.pipeline(), conn.cursor() as wait, conn.cursor() as look:
                wait.execute("SELECT pg_advisory_lock_shared(%s),"
                             " pg_advisory_unlock_shared(%s)", (LOCK, LOCK))
                look.execute(POSITIONS_OF.format(marks=", ".join(["%s"] * len(ids))),
                             list(ids))
                rows = look.fetchall()
        except psycopg.errors.LockNotAvailable:
            continue
        if len(rows) == len(ids):
            return {int(r["notification_id"]): int(r["position"]) for r in rows}


def _lead(conn: Any, cache: TreeCache, channel: str) -> dict[int, int]:
    """Place every pending leaf, batch by batch, each batch one statement (one transaction);
    release the lock in the same round trip as the last batch's commit."""
    placed: dict[int, int] = {}
    released = False
    try:
        with conn.cursor() as c:
            while True:
                batch = pending_batch(Cursor(c, "postgres"), cache, channel)
                if batch is None:
                    break
                params, positions, more = batch
                sql = MOVE_PENDING.replace("?", "%s")
                if more:
                    c.execute(sql, params)
                else:
                    with conn.pipeline() as p:
                        c.execute(sql, params)
                        p.sync()  # the batch commits before the lock is released
                        c.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
                    released = True
                placed.update(positions)
                if not more:
                    break
    except BaseException:
        cache.forget()
        raise
    finally:
        if not released:
            _release(conn)
    return placed


def _release(conn: Any) -> None:
    """Release the sequencer lock; if that fails, close the connection (the server then
    releases the session's locks), so that a broken connection back in the pool can never
    keep every writer waiting."""
    try:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    except Exception:  # noqa: BLE001 - any failure: drop the session instead
        conn.close()
