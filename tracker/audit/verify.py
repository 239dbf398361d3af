"""Re-verify the stored log: every leaf from its record, every root against the signed heads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tracker.audit import merkle
from tracker.audit.heads import current_root, verify_head
from tracker.audit.log import canonical_bytes, leaves_with_records, recorded_at_of, tree_size
from tracker.persistence.db import Database

PAGE = 1000


@dataclass
class Outcome:
    """The verdict: ok, or the first bad position and why."""

    ok: bool
    checked: int = 0
    tree_size: int = 0
    root_hash: str | None = None
    first_bad_position: int | None = None
    reason: str | None = None
    heads_checked: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The API's answer."""
        if self.ok:
            return {"ok": True, "checked": self.checked, "tree_size": self.tree_size,
                    "root_hash": self.root_hash, "heads_checked": self.heads_checked}
        return {"ok": False, "first_bad_position": self.first_bad_position,
                "reason": self.reason, "checked": self.checked, "tree_size": self.tree_size}


def _rows(db: Database, after: int) -> Iterator[list[dict[str, Any]]]:
    sql = (f"SELECT l.position, l.notification_id, l.allegation_id, l.version, l.topic,"
           f" l.recorded_at, l.payload_sha256, l.leaf_hash, n.hash AS node_leaf,"
           f" e.originator_id AS e_id, e.originator_version AS e_version, e.topic AS e_topic,"
           f" e.state AS e_state{leaves_with_records(db, keep_missing=True)}"
           f" LEFT JOIN merkle_nodes n ON n.level = 0 AND n.idx = l.position"
           f" WHERE l.position > ? ORDER BY l.position LIMIT ?")
    while True:
        with db.read() as cur:
            page = cur.execute(sql, (after, PAGE)).fetchall()
        if not page:
            return
        yield page
        after = int(page[-1]["position"])


def _check_row(row: dict[str, Any], expected: int) -> tuple[bytes | None, str | None]:
    position = int(row["position"])
    if position != expected:
        return None, (f"position {expected} is missing from the log (the next stored leaf is "
                      f"{position}): a record was deleted")
    if row["e_state"] is None:
        return None, "the stored record of this leaf is missing: it was deleted"
    raw = row["e_state"]
    state = raw.encode() if isinstance(raw, str) else bytes(raw)  # SQLite may hand back TEXT
    e_id = str(row["e_id"])
    if len(e_id) == 32 and "-" not in e_id:  # SQLite stores UUIDs as hex
        e_id = f"{e_id[:8]}-{e_id[8:12]}-{e_id[12:16]}-{e_id[16:20]}-{e_id[20:]}"
    payload = hashlib.sha256(state).digest()
    try:
        recorded_at = recorded_at_of(state)
    except (ValueError, KeyError, TypeError):
        return None, "the stored record's payload is not a valid event: it was altered"
    canonical = canonical_bytes(position, e_id, int(row["e_version"]), row["e_topic"],
                                recorded_at, payload)
    leaf = merkle.leaf_hash(canonical)
    if payload != bytes(row["payload_sha256"]) or (e_id, int(row["e_version"]), row["e_topic"]) \
            != (row["allegation_id"], int(row["version"]), row["topic"]):
        return leaf, "the stored record was altered: it no longer matches its leaf"
    if leaf != bytes(row["leaf_hash"]):
        return leaf, "the leaf hash does not match the stored record"
    if row["node_leaf"] is None or leaf != bytes(row["node_leaf"]):
        return leaf, ("the leaf hash was rewritten to match an altered record: the tree's own "
                      "copy of this leaf differs")
    return leaf, None


def verify(db: Database, public_key: bytes, heads: list[dict[str, Any]],
           progress: Callable[[int, int], None] | None = None) -> Outcome:
    """Recompute every leaf and the root at every signed head; report the first problem."""
    with db.read() as cur:
        size = tree_size(cur)
        events = int(cur.scalar(f"SELECT COUNT(*) FROM {db.events_table}"))
    for head in heads:
        try:
            verify_head(head, public_key)
        except Exception:  # noqa: BLE001 - any failure to verify is a bad head
            return Outcome(False, tree_size=size, first_bad_position=None,
                           reason=f"the signed head of tree size {head['tree_size']} does not "
                                  "verify with the log's key")
    pending = sorted(heads, key=lambda h: int(h["tree_size"]))
    for head in pending:
        if int(head["tree_size"]) > size:
            return Outcome(False, tree_size=size, first_bad_position=size,
                           reason=f"the log has {size} records but a signed head covers "
                                  f"{head['tree_size']}: the log was truncated")
    tree = merkle.IncrementalTree()
    checked = 0
    for page in _rows(db, -1):
        for row in page:
            leaf, problem = _check_row(row, checked)
            if problem:
                return Outcome(False, checked, size, first_bad_position=checked, reason=problem)
            assert leaf is not None
            tree.append(leaf)
            checked += 1
            while pending and int(pending[0]["tree_size"]) == checked:
                head = pending.pop(0)
                if merkle.b64(tree.root()) != head["root_hash"]:
                    return Outcome(False, checked, size, first_bad_position=None,
                                   reason=f"the root of the first {checked} records no longer "
                                          "matches the signed head of that size: a record "
                                          "before this position was altered and its leaf "
                                          "hashes rewritten")
        if progress:
            progress(checked, size)
    while pending and int(pending[0]["tree_size"]) == 0:
        pending.pop(0)
    if events != checked:
        return Outcome(False, checked, size, first_bad_position=checked,
                       reason=f"the event store holds {events} records but the log has "
                              f"{checked} leaves: a record was inserted outside the log")
    root = tree.root()
    with db.read() as cur:
        stored = current_root(cur, size)
    if stored != root:
        return Outcome(False, checked, size, first_bad_position=None,
                       reason="the stored tree nodes do not match the records: the tree was "
                              "altered")
    return Outcome(True, checked, size, root_hash=merkle.b64(root), heads_checked=len(heads))
