"""The audit log's write path and readers: one Merkle leaf per stored event, same transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from tracker.audit import merkle
from tracker.persistence.db import Cursor, Database

_TS_PREFIX = b'{"timestamp":{"_type_":"datetime_iso","_data_":"'


def recorded_at_of(state: bytes) -> str:
    """The event's `timestamp` exactly as stored in its payload (ISO 8601, UTC).

    A byte slice when it leads the payload, as the mapper writes it (no JSON parse on the
    write path); otherwise the payload is parsed.
    """
    if state.startswith(_TS_PREFIX):
        end = state.index(b'"', len(_TS_PREFIX))
        return state[len(_TS_PREFIX):end].decode()
    value = json.loads(state)["timestamp"]
    return str(value["_data_"] if isinstance(value, dict) else value)


def leaves_with_records(db: Database, *, keep_missing: bool = False) -> str:
    """`FROM` leaves `l` joined to their stored records `e` (LEFT: keep leaves whose record is
    gone, for verification)."""
    join = "LEFT JOIN" if keep_missing else "JOIN"
    return (f" FROM audit_leaves l {join} {db.events_table} e"
            f" ON e.{db.events_id} = l.notification_id")


def stored_event(originator_id: Any, version: int, topic: str, state: Any) -> StoredEvent:
    """A row of the event store as the library's mapper decodes it."""
    oid = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
    return StoredEvent(originator_id=oid, originator_version=int(version), topic=topic,
                       state=bytes(state))


def canonical_bytes(
    position: int, allegation_id: str, version: int, topic: str, recorded_at: str,
    payload_sha256: bytes,
) -> bytes:
    """The bytes a leaf commits to (documented in the README; never plaintext personal data)."""
    fields = [position, allegation_id, version, topic, recorded_at, merkle.b64(payload_sha256)]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def leaf_for(position: int, stored: StoredEvent | Any) -> tuple[bytes, bytes, str]:
    """(payload SHA-256, leaf hash, recorded_at) of a stored record at `position`."""
    payload = hashlib.sha256(stored.state).digest()
    recorded_at = recorded_at_of(stored.state)
    data = canonical_bytes(
        position, str(stored.originator_id), stored.originator_version, stored.topic,
        recorded_at, payload,
    )
    return payload, merkle.leaf_hash(data), recorded_at


class NodeStore:
    """Reads tree nodes (level 0: the leaves' own copy) through one cursor, and what it wrote."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur
        self.fresh: dict[tuple[int, int], bytes] = {}

    def get(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree (level, index)."""
        key = (level, index)
        if key in self.fresh:
            return self.fresh[key]
        value = self.cur.scalar(
            "SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", (level, index))
        if value is None:
            raise LookupError(f"tree node ({level}, {index}) is missing")
        return bytes(value)


def tree_size(cur: Cursor) -> int:
    """The number of leaves committed (positions are 0 .. size-1)."""
    value = cur.scalar("SELECT MAX(position) FROM audit_leaves")
    return 0 if value is None else int(value) + 1


def append_leaves(
    cur: Cursor, stored_events: Sequence[StoredEvent], notification_ids: Sequence[int],
) -> list[int]:
    """Write the leaves and completed nodes of newly inserted events; returns their positions.

    Runs inside the event store's insert transaction, after the insert took the write lock,
    so positions are contiguous and follow commit order.
    """
    position = tree_size(cur)
    nodes = NodeStore(cur)
    leaf_rows: list[tuple[Any, ...]] = []
    node_rows: list[tuple[int, int, bytes]] = []
    positions: list[int] = []
    for stored, nid in zip(stored_events, notification_ids, strict=True):
        payload, leaf, recorded_at = leaf_for(position, stored)
        leaf_rows.append((position, nid, str(stored.originator_id), stored.originator_version,
                          stored.topic, recorded_at, payload, leaf))
        nodes.fresh[(0, position)] = leaf
        # The tree keeps its own copy of each leaf (level 0): a leaf hash rewritten in
        # audit_leaves to match an altered record is then caught at its exact position.
        node_rows.append((0, position, leaf))
        for level, index, value in merkle.nodes_completed_by_append(position, nodes.get, leaf):
            nodes.fresh[(level, index)] = value
            node_rows.append((level, index, value))
        positions.append(position)
        position += 1
    cur.executemany(
        "INSERT INTO audit_leaves (position, notification_id, allegation_id, version, topic,"
        " recorded_at, payload_sha256, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        leaf_rows,
    )
    cur.executemany("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)", node_rows)
    return positions
