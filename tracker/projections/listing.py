"""Queries of the list view: the allegation list (newest first, keyset pages), reviewer queues."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tracker import policy
from tracker.domain.errors import ValidationError
from tracker.domain.values import Actor
from tracker.persistence.db import Cursor, Database
from tracker.projections.allegations import COLUMNS
from tracker.projections.cursor import CursorCodec
from tracker.projections.filters import Filters, where
from tracker.projections.tracking import read_position

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
# A reviewer's queue: what still waits for a review decision.
QUEUE_STATUSES = ("received", "under_review", "needs_information")

_SELECT = ", ".join(f"a.{c}" for c in COLUMNS)


@dataclass(frozen=True)
class Page:
    """One page of the list, the cursor of the next (None on the last) and the views position."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    position: int


def item(row: dict[str, Any]) -> dict[str, Any]:
    """A view row as the list shows it."""
    return {
        "id": row["id"], "status": row["status"], "summary": row["summary"],
        "categories": json.loads(row["categories"]),
        "incident_date": row["incident_date"], "incident_date_to": row["incident_date_to"],
        "incident_date_precision": row["incident_precision"],
        "incident_month": row["incident_month"],
        "country": row["country"], "admin1": row["admin1"], "place": row["place"],
        "alleged_perpetrators": json.loads(row["perpetrators"]),
        "victims": row["victims"], "children": row["children"],
        "assignee": row["assignee"], "duplicate_of": row["duplicate_of"],
        "organisation": row["organisation"], "personal_data_erased": bool(row["erased"]),
        "sources": row["sources"], "information": row["information"],
        "evidence": row["evidence"], "comments": row["comments"],
        "version": row["version"], "submitted_at": row["submitted_at"],
        "updated_at": row["updated_at"], "position": row["position"],
    }


def snapshot(cur: Cursor) -> None:
    """Make the rest of this read transaction see one snapshot (SQLite reads always do)."""
    if cur.dialect == "postgres":
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def check_limit(limit: int) -> None:
    """Refuse a page size outside 1..MAX_LIMIT."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": [f"Must be between 1 and {MAX_LIMIT}."]})


def list_allegations(db: Database, actor: Actor, filters: Filters, codec: CursorCodec,
                     limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page:
    """Allegations newest first (by submission, then id); monitors see their organisation's."""
    policy.require(actor, "read")
    check_limit(limit)
    params: list[Any] = []
    cond = where(filters, actor, db.dialect, params)
    sql = f"SELECT {_SELECT} FROM allegation_list a WHERE {cond}"
    if cursor is not None:
        at, aid = codec.decode(cursor)
        sql += " AND (a.submitted_at < ? OR (a.submitted_at = ? AND a.id < ?))"
        params.extend([at, at, aid])
    sql += " ORDER BY a.submitted_at DESC, a.id DESC LIMIT ?"
    params.append(limit + 1)
    with db.read() as cur:
        snapshot(cur)
        position = read_position(cur)
        rows = cur.execute(sql, params).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    after = codec.encode([rows[-1]["submitted_at"], rows[-1]["id"]]) if more else None
    return Page([item(r) for r in rows], after, position)


def reviewer_queue(db: Database, reviewer: Actor, limit: int = DEFAULT_LIMIT,
                   statuses: tuple[str, ...] = QUEUE_STATUSES) -> list[dict[str, Any]]:
    """Allegations assigned to `reviewer` awaiting review, the longest untouched first."""
    check_limit(limit)
    if not statuses:
        return []
    marks = ", ".join("?" * len(statuses))
    with db.read() as cur:
        rows = cur.execute(
            f"SELECT {_SELECT} FROM allegation_list a WHERE a.assignee = ?"
            f" AND a.status IN ({marks}) ORDER BY a.updated_at, a.id LIMIT ?",
            [reviewer.id, *statuses, limit]).fetchall()
    return [item(r) for r in rows]
