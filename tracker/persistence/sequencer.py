"""PostgreSQL group commit: writers commit concurrently, one sequencer at a time places leaves.

Writers insert their events (and each event's pending leaf) without any table lock, so their
commits overlap. Positions — the one numbering that followers, proofs and clients use — are
given afterwards by whichever writer holds the sequencer lock: it places every committed
pending leaf in one transaction, which releases the lock as it commits. A writer that finds
the sequencer busy waits on a shared lock (every waiter wakes at once, no CPU spent), then
usually finds its leaves placed. Positions therefore commit strictly in order and never
with gaps: a follower reading by position can never skip an event that commits late.

Round trips: a writer's first one commits its events and, in the same pipeline, opens the
sequencer's transaction (tries the lock, reads what is pending); its second one either places
the batch and commits (the leader) or waits for the leader and reads its positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq

from tracker.audit.log import (
    MOVE_PENDING,
    PENDING,
    POSITIONS_OF,
    TreeCache,
    pending_batch,
    positions_of,
)
from tracker.persistence.db import Cursor

LOCK = 7_340_112_002  # advisory-lock id of the sequencer (transaction-level when leading)

TRY_LEAD = "SELECT pg_try_advisory_xact_lock(%s) AS got"
LEAD = "SELECT true AS got FROM (SELECT pg_advisory_xact_lock(%s)) AS waited"
_MOVE = MOVE_PENDING.replace("?", "%s")
_WAIT = "SELECT pg_advisory_lock_shared(%s), pg_advisory_unlock_shared(%s)"

Opening = tuple[bool, list[dict[str, Any]]]
"""(whether this session now leads, in an open transaction; the pending leaves it read)."""


def open_round(conn: Any, *, wait: bool = False) -> tuple[Any, Any]:
    """Queue, on a connection in pipeline mode, the start of a sequencer round: a transaction
    that takes the lock (or, with `wait`, waits for it), then — in the next statement, so
    with a snapshot taken after the lock — reads what is pending. Returns the two cursors
    whose rows `opened` reads after the pipeline's sync."""
    lock, pending = conn.cursor(), conn.cursor()
    conn.execute("BEGIN")
    lock.execute(LEAD if wait else TRY_LEAD, (LOCK,))
    pending.execute(PENDING)
    return lock, pending


def opened(cursors: tuple[Any, Any]) -> Opening:
    """What `open_round`'s statements found."""
    lock, pending = cursors
    got = bool(lock.fetchone()["got"])
    rows = list(pending.fetchall())
    lock.close()
    pending.close()
    return got, rows


def sequence(conn: Any, ids: Sequence[int], cache: TreeCache, channel: str,
             opening: Opening | None = None) -> dict[int, int]:
    """The positions of the committed events `ids`, placing them (and every other pending
    leaf) if no sequencer already did; with no ids, place whatever is pending now.

    `conn` is an autocommit psycopg connection; `opening` is what the writer's own pipeline
    found when it opened a round (`open_round`) after its commit, if it did; otherwise one is
    opened here. `channel` is notified (LISTEN/NOTIFY) whenever a batch of positions commits.
    On any failure the round's transaction is rolled back (which releases the lock).
    """
    wanted: dict[int, int] = {}
    try:
        if not ids:
            # Usually nothing waits (writers place their own): no lock to take then.
            if conn.execute("SELECT 1 FROM pending_leaves LIMIT 1").fetchone() is None:
                return {}
        while True:
            if opening is None:
                with conn.pipeline() as p:
                    cursors = open_round(conn, wait=not ids)
                    p.sync()
                    opening = opened(cursors)
            got, rows = opening
            opening = None
            if got:
                placed, more = _place(conn, rows, cache, channel)
                wanted.update({i: placed[i] for i in ids if i in placed})
                if more:
                    continue
                if len(wanted) < len(ids):  # placed by an earlier sequencer
                    with conn.cursor() as c:
                        wanted.update(positions_of(Cursor(c, "postgres"),
                                                   [i for i in ids if i not in wanted]))
                if len(wanted) != len(ids):
                    missing = sorted(set(ids) - set(wanted))
                    raise LookupError(f"events {missing} are neither pending nor in the audit "
                                      "log")
                return wanted
            # Another session leads: end this round, wait for the leader's commit, then look
            # (one round trip). A wait longer than lock_timeout just goes round again.
            try:
                with conn.pipeline() as p, conn.cursor() as c, conn.cursor() as look:
                    c.execute("COMMIT")
                    c.execute(_WAIT, (LOCK, LOCK))
                    look.execute(POSITIONS_OF.format(marks=", ".join(["%s"] * len(ids))),
                                 list(ids))
                    p.sync()
                    rows = look.fetchall()
            except psycopg.errors.LockNotAvailable:
                continue
            if len(rows) == len(ids):
                return {int(r["notification_id"]): int(r["position"]) for r in rows}
    except BaseException:
        abandon(conn)
        raise


def _place(conn: Any, rows: list[dict[str, Any]], cache: TreeCache, channel: str
           ) -> tuple[dict[int, int], bool]:
    """Leading: place the pending leaves read, and commit (which releases the lock).
    Returns their positions and whether more may be pending."""
    try:
        with conn.cursor() as c:
            batch = pending_batch(rows, Cursor(c, "postgres"), cache, channel)
            if batch is None:
                c.execute("COMMIT")
                return {}, False
            params, positions, more = batch
            with conn.pipeline():
                c.execute(_MOVE, params)
                c.execute("COMMIT")
        return positions, more
    except BaseException:
        cache.forget()
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
