"""Queries of the list view: the allegation list (newest first, keyset pages), reviewer queues."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from tracker import policy
from tracker.domain.errors import ValidationError
from tracker.domain.values import Actor
from tracker.persistence.db import Cursor, Database
from tracker.projections import search
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
    if filters.q:
        search.query_words(filters.q)  # refused before anything is read
    params: list[Any] = []
    # Text search apart: the other filters, the cursor, then the words.
    cond = where(replace(filters, q=None), actor, db.dialect, params)
    if cursor is not None:
        at, aid = codec.decode(cursor)
        cond += " AND (a.submitted_at < ? OR (a.submitted_at = ? AND a.id < ?))"
        params.extend([at, at, aid])
    with db.read() as cur:
        snapshot(cur)
        position = read_position(cur)
        rows = None
        if filters.q and db.dialect == "sqlite":
            rows = _recent_matches(cur, cond, params, filters.q, limit + 1)
        if rows is None:
            words, values = search.condition(db.dialect, filters.q) if filters.q else ("", [])
            sql = (f"SELECT {_SELECT} FROM allegation_list a WHERE {cond}"
                   + (f" AND {words}" if words else "") + f" {_ORDER} LIMIT ?")
            rows = cur.execute(sql, [*params, *values, limit + 1]).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    after = codec.encode([rows[-1]["submitted_at"], rows[-1]["id"]]) if more else None
    return Page([item(r) for r in rows], after, position)


_ORDER = "ORDER BY a.submitted_at DESC, a.id DESC"
# Text search on SQLite first looks among this many of the newest rows that pass the other
# filters (see `_recent_matches`).
SEARCH_WINDOW = 2000


def _recent_matches(cur: Cursor, cond: str, params: list[Any], q: str, want: int
                    ) -> list[dict[str, Any]] | None:
    """The first `want` rows matching `q` and `cond`, found among the newest rows only, or
    None when these do not hold that many (then the caller asks the whole index).

    SQLite cannot weigh its full-text index against the list's order, so a common word made
    it collect every match to sort them (cost growing with the views). Here: take the
    `SEARCH_WINDOW` newest rows passing the other filters (along the list's own index), and
    ask the full-text index only about the log positions from the oldest of them on. Every
    row outside that window comes after every row in it, so when the window holds `want`
    matches, or is all there is, they are exactly the first `want` of the whole list.
    """
    newest = f"SELECT a.seq FROM allegation_list a WHERE {cond} {_ORDER} LIMIT ?"
    first = cur.scalar(f"SELECT MIN(seq) FROM ({newest})", [*params, SEARCH_WINDOW])
    if first is None:
        return []
    words, values = search.condition(cur.dialect, q, min_seq=int(first))
    last = cur.execute(f"SELECT a.submitted_at, a.id FROM allegation_list a WHERE {cond}"
                       f" {_ORDER} LIMIT 1 OFFSET ?", [*params, SEARCH_WINDOW - 1]).fetchone()
    if last is None:  # fewer rows than the window: all of them are in it
        sql = f"SELECT {_SELECT} FROM allegation_list a WHERE {cond} AND {words} {_ORDER} LIMIT ?"
        return cur.execute(sql, [*params, *values, want]).fetchall()
    rows = cur.execute(
        f"SELECT {_SELECT} FROM allegation_list a WHERE {cond}"
        " AND (a.submitted_at > ? OR (a.submitted_at = ? AND a.id >= ?))"
        f" AND {words} {_ORDER} LIMIT ?",
        [*params, last["submitted_at"], last["submitted_at"], last["id"], *values, want]
    ).fetchall()
    return rows if len(rows) >= want else None


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
