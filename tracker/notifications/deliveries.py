"""Delivery records: one row per (event, subscription), every attempt counted, dead letters kept."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.domain.errors import ConflictError, NotFoundError, ValidationError
from tracker.domain.values import Actor
from tracker.notifications import schema
from tracker.notifications.subscriptions import now
from tracker.persistence.db import Cursor, Database

STATES = ("pending", "delivered", "failed")
MAX_ERROR = 1000
_COLUMNS = ("id, subscription_id, owner, channel, position, allegation_id, event_type, state,"
            " attempts, last_error, created_at, updated_at, last_attempt_at, delivered_at,"
            " failed_at, drive")
_SELECT = f"SELECT {_COLUMNS} FROM notification_deliveries"


@dataclass(frozen=True)
class Planned:
    """A delivery the relay decided on (recorded pending once its job is enqueued)."""

    id: str
    subscription_id: str
    owner: str
    channel: str
    position: int
    allegation_id: str
    event_type: str


def job_id(delivery_id: str, drive: int) -> str:
    """The RQ job id of a delivery's drive: the delivery id itself, then `<id>_<n>`."""
    return delivery_id if drive == 0 else f"{delivery_id}_{drive}"


def record_pending(cur: Cursor, planned: list[Planned]) -> None:
    """Insert pending rows; a row a worker already created (or finished) is left alone."""
    stamp = now()
    cur.executemany(
        "INSERT INTO notification_deliveries (id, subscription_id, owner, channel, position,"
        " allegation_id, event_type, state, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (id) DO NOTHING",
        [(p.id, p.subscription_id, p.owner, p.channel, p.position, p.allegation_id,
          p.event_type, stamp, stamp) for p in planned])


class Deliveries:
    """The delivery table: what workers record and what the API lists and re-drives."""

    def __init__(self, db: Database) -> None:
        self.db = db
        schema.ensure(db)

    def begin_attempt(self, planned: Planned, lease_seconds: float) -> dict[str, Any] | None:
        """Claim a pending delivery for one attempt (counted now); None if done or in flight.

        The row is created first if the relay has not committed it yet (a job can run first).
        """
        stamp = now()
        until = (datetime.now(UTC) + timedelta(seconds=lease_seconds)).isoformat(
            timespec="microseconds")
        with self.db.tx() as cur:
            record_pending(cur, [planned])
            cur.execute(
                "UPDATE notification_deliveries SET attempts = attempts + 1,"
                " last_attempt_at = ?, updated_at = ?, lease_until = ? WHERE id = ?"
                " AND state = 'pending' AND (lease_until IS NULL OR lease_until < ?)",
                (stamp, stamp, until, planned.id, stamp))
            if cur.rowcount != 1:
                return None
            claimed: dict[str, Any] | None = cur.execute(
                _SELECT + " WHERE id = ?", (planned.id,)).fetchone()
            return claimed

    def delivered(self, delivery_id: str) -> None:
        """Record success."""
        stamp = now()
        with self.db.tx() as cur:
            cur.execute("UPDATE notification_deliveries SET state = 'delivered',"
                        " delivered_at = ?, updated_at = ?, lease_until = NULL WHERE id = ?",
                        (stamp, stamp, delivery_id))

    def attempt_failed(self, delivery_id: str, error: str, final: bool) -> None:
        """Record a failed attempt; the last one turns the delivery into a dead letter."""
        stamp = now()
        with self.db.tx() as cur:
            cur.execute(
                "UPDATE notification_deliveries SET last_error = ?, updated_at = ?,"
                " lease_until = NULL, state = ?, failed_at = ? WHERE id = ? AND state = 'pending'",
                (error[:MAX_ERROR], stamp, "failed" if final else "pending",
                 stamp if final else None, delivery_id))

    def give_up(self, delivery_id: str, error: str) -> None:
        """Make a pending delivery a dead letter without an attempt (e.g. subscription gone)."""
        self.attempt_failed(delivery_id, error, final=True)

    def get(self, delivery_id: str) -> dict[str, Any]:
        """One delivery record."""
        with self.db.read() as cur:
            row = cur.execute(_SELECT + " WHERE id = ?", (delivery_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"No delivery {delivery_id!r} is visible to you; list them "
                                "with GET /v1/notifications.")
        found: dict[str, Any] = row
        return found

    def visible(self, actor: Actor, delivery_id: str) -> dict[str, Any]:
        """A delivery the actor may see: an admin any, others their own (else 404)."""
        row = self.get(delivery_id)
        if actor.role != "admin" and row["owner"] != actor.id:
            raise NotFoundError(f"No delivery {delivery_id!r} is visible to you; list them "
                                "with GET /v1/notifications.")
        return row

    def page(self, owner: str | None, state: str | None, limit: int,
             cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first (by log position); `owner` None lists everyone's (admin)."""
        sql = _SELECT + " WHERE 1 = 1"
        params: list[Any] = []
        if owner is not None:
            sql, params = sql + " AND owner = ?", [*params, owner]
        if state is not None:
            sql, params = sql + " AND state = ?", [*params, state]
        if cursor:
            position, last = decode_cursor(cursor)
            sql += " AND (position < ? OR (position = ? AND id < ?))"
            params += [position, position, last]
        sql += " ORDER BY position DESC, id DESC LIMIT ?"
        with self.db.read() as cur:
            rows = cur.execute(sql, [*params, limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1]["position"], rows[-1]["id"]) if more else None)

    def request_redrive(self, actor: Actor, delivery_id: str) -> dict[str, Any]:
        """Put a dead letter back in line; the relay enqueues it with a fresh set of attempts."""
        row = self.visible(actor, delivery_id)
        if row["state"] != "failed":
            raise ConflictError(
                f"Delivery {delivery_id} is {row['state']}; only failed deliveries (dead "
                "letters) can be re-driven. A pending one is still being retried.")
        with self.db.tx() as cur:
            cur.execute("UPDATE notification_deliveries SET state = 'pending', failed_at = NULL,"
                        " drive = drive + 1, updated_at = ? WHERE id = ? AND state = 'failed'",
                        (now(), delivery_id))
        return self.get(delivery_id)

    def drives_due(self, limit: int) -> list[dict[str, Any]]:
        """Re-drives requested but not yet enqueued."""
        with self.db.read() as cur:
            due: list[dict[str, Any]] = cur.execute(
                "SELECT id, subscription_id, position, drive FROM notification_deliveries"
                " WHERE drive > enqueued_drive ORDER BY updated_at LIMIT ?", (limit,)).fetchall()
        return due

    def mark_enqueued(self, drives: list[tuple[str, int]]) -> None:
        """Remember that these drives are in the queue."""
        with self.db.tx() as cur:
            cur.executemany("UPDATE notification_deliveries SET enqueued_drive = ?"
                            " WHERE id = ? AND enqueued_drive < ?",
                            [(drive, did, drive) for did, drive in drives])

    def stale_pending(self, older_than: timedelta, limit: int) -> list[dict[str, Any]]:
        """Pending deliveries untouched for a while (their job may be lost)."""
        cutoff = (datetime.now(UTC) - older_than).isoformat(timespec="microseconds")
        with self.db.read() as cur:
            stale: list[dict[str, Any]] = cur.execute(
                _SELECT + " WHERE state = 'pending' AND updated_at < ?"
                " AND drive = enqueued_drive ORDER BY updated_at LIMIT ?",
                (cutoff, limit)).fetchall()
        return stale

    def redrive_lost(self, delivery_id: str, drive: int) -> None:
        """Enqueue a pending delivery again under a new job id (its job vanished)."""
        with self.db.tx() as cur:
            cur.execute("UPDATE notification_deliveries SET drive = drive + 1, updated_at = ?"
                        " WHERE id = ? AND drive = ? AND state = 'pending'",
                        (now(), delivery_id, drive))


def encode_cursor(position: int, delivery_id: str) -> str:
    """An opaque page cursor."""
    raw = json.dumps([int(position), delivery_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Read a cursor made by `encode_cursor`, refusing anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position, delivery_id = json.loads(raw)
        if not isinstance(position, int) or not isinstance(delivery_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise ValidationError({"cursor": ["Malformed cursor: pass back `next_cursor` exactly "
                                          "as a previous page gave it."]}) from None
    return position, delivery_id
