"""Reading the event log by audit position, and the relay's own position and facts."""

from __future__ import annotations

import json
from typing import Any

from tracker import presenter
from tracker.application import AllegationTracker
from tracker.audit.log import leaves_with_records, stored_event, tree_size
from tracker.notifications.rules import Facts, LoggedEvent
from tracker.persistence.db import Cursor
from tracker.protection.sealed import Sealed

# Never sent out: personal data (sealed values) and the keyed fingerprint of the report.
_PRIVATE = frozenset({"protected", "fingerprint"})


def _select(app: AllegationTracker) -> str:
    return ("SELECT l.position, e.originator_id, e.originator_version, e.topic, e.state"
            + leaves_with_records(app.db))


def read(app: AllegationTracker, cur: Cursor, start: int, limit: int) -> list[tuple[int, Any]]:
    """Up to `limit` (position, domain event) pairs from position `start` on, in order."""
    rows = cur.execute(_select(app) + " WHERE l.position >= ? ORDER BY l.position LIMIT ?",
                       (start, limit)).fetchall()
    return [(int(r["position"]), _decode(app, r)) for r in rows]


def event_at(app: AllegationTracker, position: int, cur: Cursor | None = None) -> Any | None:
    """The domain event at a log position, or None when there is none."""
    if cur is None:
        with app.db.read() as own:
            return event_at(app, position, own)
    row = cur.execute(_select(app) + " WHERE l.position = ?", (position,)).fetchone()
    return None if row is None else _decode(app, row)


def _decode(app: AllegationTracker, row: dict[str, Any]) -> Any:
    return app.mapper.to_domain_event(stored_event(
        row["originator_id"], row["originator_version"], row["topic"], row["state"]))


def public_data(event: Any) -> dict[str, Any]:
    """The event's own data with every protected field left out entirely (never redacted)."""
    data = presenter.event_data(event, clear=False, key_of=lambda _aid: None)
    return {k: v for k, v in data.items()
            if k not in _PRIVATE and not isinstance(getattr(event, k, None), Sealed)}


def logged(position: int, event: Any) -> LoggedEvent:
    """The rules' view of a domain event."""
    return LoggedEvent(position=position, allegation_id=str(event.originator_id),
                       event_type=presenter.event_type(type(event).TOPIC),
                       actor=str(event.actor), organisation=str(event.organisation),
                       data=public_data(event))


# ---- the relay's tracked position and per-allegation facts --------------------------------


def relay_position(cur: Cursor, name: str) -> int:
    """The next log position the relay `name` has to read (0 at first)."""
    value = cur.scalar("SELECT position FROM notification_relay WHERE name = ?", (name,))
    return 0 if value is None else int(value)


def relay_lag(cur: Cursor, name: str = "notifications") -> dict[str, int]:
    """Read-only: the relay's next position, the log's size and the events it has yet to read."""
    position = relay_position(cur, name)
    size = tree_size(cur)
    return {"position": position, "log_size": size, "lag": max(0, size - position)}


def advance(cur: Cursor, name: str, old: int, new: int) -> bool:
    """Move the position from `old` to `new`; False when another relay moved it first."""
    cur.execute("INSERT INTO notification_relay (name, position) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position"
                " WHERE notification_relay.position = ?", (name, new, old))
    return cur.rowcount == 1


def load_facts(cur: Cursor, allegation_ids: set[str]) -> dict[str, Facts]:
    """The facts the relay keeps about these allegations."""
    out: dict[str, Facts] = {}
    ids = sorted(allegation_ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT * FROM notification_facts WHERE allegation_id IN ({marks})"
        for r in cur.execute(sql, chunk).fetchall():
            out[r["allegation_id"]] = Facts(
                organisation=r["organisation"], categories=tuple(json.loads(r["categories"])),
                country=r["country"], assignee=r["assignee"], status=r["status"])
    return out


def save_facts(cur: Cursor, facts: dict[str, tuple[Facts, int]]) -> None:
    """Upsert facts (each with the position it is current at)."""
    cur.executemany(
        "INSERT INTO notification_facts (allegation_id, organisation, categories, country,"
        " assignee, status, position) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (allegation_id)"
        " DO UPDATE SET organisation = excluded.organisation, categories = excluded.categories,"
        " country = excluded.country, assignee = excluded.assignee, status = excluded.status,"
        " position = excluded.position",
        [(aid, f.organisation, json.dumps(list(f.categories)), f.country, f.assignee, f.status,
          position) for aid, (f, position) in facts.items()])
