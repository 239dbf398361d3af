"""Reading the audit log: entries with provenance and redacted data, and RFC 9162 proofs."""

from __future__ import annotations

from typing import Any

from tracker import presenter
from tracker.application import AllegationTracker
from tracker.audit import merkle
from tracker.audit.log import NodeStore, leaves_with_records, stored_event, tree_size
from tracker.domain.errors import ValidationError


def log_entries(app: AllegationTracker, after: int | None, limit: int) -> dict[str, Any]:
    """Entries after a position (all from 0 when None), protected fields redacted for everyone."""
    db = app.db
    start = -1 if after is None else after
    with db.read() as cur:
        rows = cur.execute(
            "SELECT l.position, l.allegation_id, l.version, l.topic, l.recorded_at,"
            " l.payload_sha256, l.leaf_hash, e.state AS e_state"
            + leaves_with_records(db, keep_missing=True)
            + " WHERE l.position > ? ORDER BY l.position LIMIT ?", (start, limit)).fetchall()
        size = tree_size(cur)
    entries = []
    for row in rows:
        entry: dict[str, Any] = {
            "position": int(row["position"]), "allegation_id": row["allegation_id"],
            "version": int(row["version"]), "topic": row["topic"],
            "type": presenter.event_type(row["topic"]), "recorded_at": row["recorded_at"],
            "payload_sha256": merkle.b64(bytes(row["payload_sha256"])),
            "leaf_hash": merkle.b64(bytes(row["leaf_hash"])),
        }
        if row["e_state"] is not None:
            event = app.mapper.to_domain_event(stored_event(
                row["allegation_id"], entry["version"], row["topic"], row["e_state"]))
            entry.update(presenter.provenance(event))
            entry["data"] = presenter.event_data(event, False, app.keys.data_key)
        entries.append(entry)
    last = entries[-1]["position"] if entries else None
    more = last is not None and last + 1 < size
    return {"entries": entries, "next_after": last if more else None, "tree_size": size}


def _size(app: AllegationTracker) -> int:
    with app.db.read() as cur:
        return tree_size(cur)


def inclusion(app: AllegationTracker, position: int, size: int | None) -> dict[str, Any]:
    """The audit path proving leaf `position` is in the tree of `size` leaves."""
    current = _size(app)
    size = current if size is None else size
    if not 0 < size <= current:
        raise ValidationError({"tree_size": [f"Must be between 1 and the log's size ({current})."]})
    if not 0 <= position < size:
        raise ValidationError({"position": [f"Must be between 0 and tree_size - 1 ({size - 1})."]})
    with app.db.read() as cur:
        get = NodeStore(cur).get
        path = merkle.inclusion_proof(position, size, get)
        leaf = get(0, position)
    return {"position": position, "tree_size": size, "leaf_hash": merkle.b64(leaf),
            "audit_path": [merkle.b64(h) for h in path]}


def consistency(app: AllegationTracker, old: int, new: int | None) -> dict[str, Any]:
    """The proof that the tree of `old` leaves is a prefix of the tree of `new` leaves."""
    current = _size(app)
    new = current if new is None else new
    if not 0 < new <= current:
        raise ValidationError({"to": [f"Must be between 1 and the log's size ({current})."]})
    if not 0 < old <= new:
        raise ValidationError({"from": [f"Must be between 1 and `to` ({new})."]})
    with app.db.read() as cur:
        proof = merkle.consistency_proof(old, new, NodeStore(cur).get)
    return {"from": old, "to": new, "consistency": [merkle.b64(h) for h in proof]}
