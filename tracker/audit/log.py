"""The audit log's write path and readers: one Merkle leaf per stored event, same transaction."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from tracker.audit import merkle
from tracker.persistence.db import Cursor, Database

_TS_PREFIX = b'{"timestamp":{"_type_":"datetime_iso","_data_":"'


def recorded_at_all(states: Sequence[bytes]) -> list[str]:
    """`recorded_at_of` of many payloads (verification's pages): one slice each, without a
    call per payload, when they all lead with the timestamp as the mapper writes it."""
    start = len(_TS_PREFIX)
    if all(s.startswith(_TS_PREFIX) for s in states):
        return [s[start:s.index(b'"', start)].decode() for s in states]
    return list(map(recorded_at_of, states))


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


_PLAIN = re.compile(r"[\x20-\x7e]*")


def canonical_bytes(
    position: int, allegation_id: str, version: int, topic: str, recorded_at: str,
    payload_sha256: bytes,
) -> bytes:
    """The bytes a leaf commits to (documented in the README; never plaintext personal data).

    The compact JSON array ``[position, allegation_id, version, topic, recorded_at,
    base64(payload SHA-256)]``, ASCII only.
    """
    digest = merkle.b64(payload_sha256)
    if _needs_no_escaping(f"{allegation_id}{topic}{recorded_at}"):
        return _plain(int(position), allegation_id, int(version), topic, recorded_at, digest)
    fields = [position, allegation_id, version, topic, recorded_at, digest]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _needs_no_escaping(text: str) -> bool:
    return '"' not in text and "\\" not in text and _PLAIN.fullmatch(text) is not None


def _plain(position: int, allegation_id: str, version: int, topic: str, recorded_at: str,
           digest: str) -> bytes:
    """The same bytes json.dumps writes for fields with nothing to escape, without its
    machinery."""
    return (f'[{position},"{allegation_id}",{version},"{topic}","{recorded_at}",'
            f'"{digest}"]').encode("ascii")


def canonical_page(positions: Sequence[int], ids: Sequence[str], versions: Sequence[int],
                   topics: Sequence[str], recorded_at: Sequence[str],
                   payloads: Sequence[bytes]) -> list[bytes]:
    """`canonical_bytes` of many records at once (verification's pages): the same bytes, with
    one check that nothing needs escaping for the whole page instead of one per record."""
    texts = [*ids, *topics, *recorded_at]
    # Type checks by set (one C pass each) rather than a generator per value.
    if set(map(type, texts)) <= {str} and _needs_no_escaping("".join(texts)) \
            and set(map(type, (*positions, *versions))) <= {int}:
        return list(map(_plain, positions, ids, versions, topics, recorded_at,
                        map(merkle.b64, payloads)))
    return list(map(canonical_bytes, positions, ids, versions, topics, recorded_at, payloads))


LeafMeta = tuple[int, str, int, str, str, bytes]
"""(notification id, allegation id, version, topic, recorded_at, payload SHA-256)."""


def leaf_meta(stored: StoredEvent | Any, notification_id: int) -> LeafMeta:
    """What a leaf records of a stored event, before it has a position."""
    return (int(notification_id), str(stored.originator_id), int(stored.originator_version),
            stored.topic, recorded_at_of(stored.state), hashlib.sha256(stored.state).digest())


def leaf_for(position: int, stored: StoredEvent | Any) -> tuple[bytes, bytes, str]:
    """(payload SHA-256, leaf hash, recorded_at) of a stored record at `position`."""
    _nid, aid, version, topic, recorded_at, payload = leaf_meta(stored, 0)
    data = canonical_bytes(position, aid, version, topic, recorded_at, payload)
    return payload, merkle.leaf_hash(data), recorded_at


def node_home(level: int, index: int) -> int:
    """The position of the leaf whose row stores tree node (level, index): the node's last
    leaf, the append that completed it. Its hash is bytes [32·level, 32·level + 32) of that
    row's `nodes` (level 0 is the tree's own copy of the leaf hash)."""
    return ((index + 1) << level) - 1


def node_levels(position: int) -> int:
    """How many hashes the row of the leaf at `position` holds in `nodes`: its own, and one per
    trailing one bit of the position (the perfect subtrees its append completed)."""
    return ((position + 1) & -(position + 1)).bit_length()


def nodes_blob(leaf: bytes, completed: Sequence[tuple[int, int, bytes]]) -> bytes:
    """A leaf row's `nodes`: its leaf hash, then the perfect subtrees its append completed,
    level 1 upwards (as `IncrementalTree.append` returns them)."""
    return leaf + b"".join(h for _level, _idx, h in completed)


def node_in(nodes: Any, level: int) -> bytes | None:
    """The hash at `level` in a row's `nodes` (None when the row holds no such node)."""
    if nodes is None:
        return None
    value = bytes(nodes[merkle.HASH_SIZE * level:merkle.HASH_SIZE * (level + 1)])
    return value if len(value) == merkle.HASH_SIZE else None


class NodeStore:
    """Reads tree nodes through one cursor (level 0: the tree's own copy of each leaf)."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur
        self.fresh: dict[tuple[int, int], bytes] = {}

    def get(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree (level, index)."""
        key = (level, index)
        if key in self.fresh:
            return self.fresh[key]
        value = node_in(self.cur.scalar("SELECT nodes FROM audit_leaves WHERE position = ?",
                                        (node_home(level, index),)), level)
        if value is None:
            raise LookupError(f"tree node ({level}, {index}) is missing")
        return value

    def load(self, keys: Sequence[tuple[int, int]]) -> None:
        """Read the nodes `keys` in one query (those missing are reported by `get`)."""
        homes = {node_home(level, index): (level, index) for level, index in keys}
        if not homes:
            return
        marks = ", ".join("?" * len(homes))
        rows = self.cur.execute(f"SELECT position, nodes FROM audit_leaves WHERE position IN"
                                f" ({marks})", list(homes)).fetchall()
        for row in rows:
            level, index = homes[int(row["position"])]
            value = node_in(row["nodes"], level)
            if value is not None:
                self.fresh[(level, index)] = value


def tree_size(cur: Cursor) -> int:
    """The number of leaves committed (positions are 0 .. size-1)."""
    value = cur.scalar("SELECT MAX(position) FROM audit_leaves")
    return 0 if value is None else int(value) + 1


class TreeCache:
    """The right edge of the tree as this process last wrote it, to append without reading
    sibling nodes back. Trusted only while the stored tree still ends where it was left
    (same size, same last leaf); otherwise rebuilt from the stored nodes in one query."""

    def __init__(self) -> None:
        self.tree: merkle.IncrementalTree | None = None
        self.last: bytes | None = None
        # The notification id of the last leaf this process appended (SQLite).
        self.last_nid: int | None = None

    def following(self, notification_id: int) -> tuple[int, bytes | None] | None:
        """The cached (size, last leaf) when the event just inserted with `notification_id`
        directly follows the last one this process appended, else None (ask the store).

        SQLite only: there the notification id is the rowid, max + 1 under the write lock,
        and every event commits with its leaf, so the next id means nobody appended in
        between. (Anything else — another process's append, a deleted row — gives another
        id, and the store is asked; a stale edge could only collide with a stored position
        and fail the write, never place a leaf wrongly.)"""
        if self.tree is None or self.last_nid is None or notification_id != self.last_nid + 1:
            return None
        return self.tree.size, self.last

    def at(self, cur: Cursor, end: tuple[int, bytes | None] | None = None
           ) -> merkle.IncrementalTree:
        """An incremental tree of the stored leaves; `end` = (size, last leaf) if known."""
        if end is None:
            row = cur.execute(_LAST_LEAF).fetchone()
            end = (0, None) if row is None else (int(row["position"]) + 1,
                                                 bytes(row["leaf_hash"]))
        size, last = end
        if self.tree is None or self.tree.size != size or self.last != last:
            self.tree = merkle.IncrementalTree.resume(size, _frontier(cur, size))
            self.last = last
        return self.tree

    def forget(self) -> None:
        """Drop the cached edge (after a rolled-back append)."""
        self.tree = None
        self.last_nid = None

    def grow(self, cur: Cursor, metas: Sequence[LeafMeta],
             end: tuple[int, bytes | None] | None = None) -> list[tuple[Any, ...]]:
        """The rows of the next leaves, in order, each with the tree nodes it completes.

        The caller holds the log's write lock (SQLite's) until those rows are committed (or
        calls `forget`)."""
        tree = self.at(cur, end)
        rows: list[tuple[Any, ...]] = []
        for position, (nid, aid, version, topic, recorded_at, payload) in enumerate(
                metas, tree.size):
            leaf = merkle.leaf_hash(canonical_bytes(position, aid, version, topic, recorded_at,
                                                    payload))
            # The tree keeps its own copy of each leaf (level 0 of `nodes`): a leaf hash
            # rewritten to match an altered record is then caught at its exact position.
            rows.append((position, nid, aid, version, topic, recorded_at, payload, leaf,
                         nodes_blob(leaf, tree.append(leaf))))
            self.last, self.last_nid = leaf, nid
        return rows


_LEAF_COLUMNS = "l.version, l.position, l.leaf_hash, l.recorded_at"
# SQLite: the leaf `l` of the stored event `e` (see `leaves_of`).
_LEAF_OF_EVENT = "l.position = e.rowid - 1 AND l.notification_id = e.rowid"
Query = tuple[str, tuple[Any, ...] | list[Any]]


def _leaf_rows(cur: Cursor, by_leaves: Query, through_events: Query,
               complete: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """SQLite: the rows of `through_events` (by the event store's primary key) when
    `complete` accepts them; otherwise, and on PostgreSQL, those of `by_leaves`."""
    if cur.dialect == "sqlite":
        rows = cur.execute(*through_events).fetchall()
        if complete(rows):
            return rows
    return cur.execute(*by_leaves).fetchall()


def _all_placed(rows: list[dict[str, Any]]) -> bool:
    return all(r["position"] is not None for r in rows)


def leaves_of(cur: Cursor, events_table: str, allegation_id: UUID) -> list[dict[str, Any]]:
    """The leaves of one allegation's events, by version: version, position, leaf hash and
    recorded_at (only events that have a position yet).

    PostgreSQL reads them by the `(allegation_id, version)` index. SQLite keeps no such
    index (it would cost each append a write at a random page): there every event commits
    with its leaf under the write lock and the rowid is max + 1, so the leaf of the event at
    rowid r sits at position r - 1, found through the event store's primary key. Where that
    does not hold — a record inserted or deleted behind the tracker's back, which
    verification reports — the leaves are found by scanning instead, so reads stay right.
    """
    return _leaf_rows(
        cur,
        (f"SELECT {_LEAF_COLUMNS} FROM audit_leaves l WHERE l.allegation_id = ?"
         " ORDER BY l.version", (str(allegation_id),)),
        (f"SELECT {_LEAF_COLUMNS} FROM {events_table} e LEFT JOIN audit_leaves l"
         f" ON {_LEAF_OF_EVENT} AND l.allegation_id = ?"
         " WHERE e.originator_id = ? ORDER BY e.originator_version",
         (str(allegation_id), allegation_id.hex)),
        _all_placed)


def first_positions(cur: Cursor, allegation_ids: Sequence[str],
                    events_table: str = "stored_events") -> dict[str, int]:
    """The position of each allegation's first event (its submission), for those that have
    one; found as `leaves_of` finds leaves."""
    if not allegation_ids:
        return {}
    wanted = set(allegation_ids)
    marks = ", ".join("?" * len(allegation_ids))
    rows = _leaf_rows(
        cur,
        (f"SELECT allegation_id, position FROM audit_leaves WHERE version = 1"
         f" AND allegation_id IN ({marks})", list(allegation_ids)),
        (f"SELECT l.allegation_id, l.position FROM {events_table} e JOIN audit_leaves l"
         f" ON {_LEAF_OF_EVENT} AND l.version = 1"
         f" WHERE e.originator_version = 1 AND e.originator_id IN ({marks})",
         [UUID(i).hex for i in allegation_ids]),
        lambda found: {r["allegation_id"] for r in found} >= wanted)
    return {r["allegation_id"]: int(r["position"]) for r in rows if r["allegation_id"] in wanted}


def records_of(cur: Cursor, db: Database, allegation_id: UUID, topic: str, max_version: int,
               limit: int) -> list[dict[str, Any]]:
    """An allegation's stored records of one topic up to `max_version`, newest first, at most
    `limit`: version, position, topic and state (only events that have a position yet);
    found as `leaves_of` finds leaves."""
    return _leaf_rows(
        cur,
        ("SELECT l.version, l.position, l.topic, e.state" + leaves_with_records(db)
         + " WHERE l.allegation_id = ? AND l.topic = ? AND l.version <= ?"
         " ORDER BY l.version DESC LIMIT ?", (str(allegation_id), topic, max_version, limit)),
        ("SELECT e.originator_version AS version, l.position, e.topic, e.state"
         f" FROM {db.events_table} e LEFT JOIN audit_leaves l ON {_LEAF_OF_EVENT}"
         " AND l.allegation_id = ?"
         " WHERE e.originator_id = ? AND e.topic = ? AND e.originator_version <= ?"
         " ORDER BY e.originator_version DESC LIMIT ?",
         (str(allegation_id), allegation_id.hex, topic, max_version, limit)),
        _all_placed)


_LAST_LEAF = "SELECT position, leaf_hash FROM audit_leaves ORDER BY position DESC LIMIT 1"


def _frontier(cur: Cursor, size: int) -> merkle.Getter:
    """A getter over the perfect subtrees covering [0, size), read in one query."""
    keys, start = [], 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    store = NodeStore(cur)
    store.load(keys)
    return store.get


INSERT_LEAVES = (
    "INSERT INTO audit_leaves (position, notification_id, allegation_id, version, topic,"
    " recorded_at, payload_sha256, leaf_hash, nodes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def append_leaves(
    cur: Cursor, stored_events: Sequence[StoredEvent], notification_ids: Sequence[int],
    cache: TreeCache | None = None,
) -> list[int]:
    """Write the leaves and completed nodes of newly inserted events; returns their positions.

    Runs inside the event store's insert transaction, after the insert took the write lock
    (SQLite), so positions are contiguous and follow commit order.
    """
    cache = cache or TreeCache()
    metas = [leaf_meta(s, nid) for s, nid in zip(stored_events, notification_ids, strict=True)]
    try:
        leaf_rows = cache.grow(cur, metas, cache.following(metas[0][0]) if metas else None)
        cur.executemany(INSERT_LEAVES, leaf_rows)
    except BaseException:
        cache.forget()
        raise
    return [row[0] for row in leaf_rows]


# ---- PostgreSQL: leaves held with the events, placed later by the sequencer -----------
# (`tracker.persistence.pg_place` places them: the same leaves and nodes, in the server.)

BATCH = 5000  # pending leaves placed per transaction

# Inserts events and, from what the insert returns, their pending leaves: one statement.
# `{insert}` is the event store's INSERT … SELECT; the leaves' content travels as one JSON text.
INSERT_WITH_PENDING = (
    "WITH e AS ({insert} RETURNING notification_id, originator_id, originator_version),"
    " p AS (INSERT INTO pending_leaves (notification_id, allegation_id, version, topic,"
    " recorded_at, payload_sha256) SELECT e.notification_id, m.aid, m.version, m.topic,"
    " m.recorded_at, decode(m.payload, 'hex') FROM e JOIN json_to_recordset(%s::json)"
    " AS m(aid text, version bigint, topic text, recorded_at text, payload text)"
    " ON e.originator_id::text = m.aid AND e.originator_version = m.version)"
    " SELECT notification_id, originator_id::text AS aid, originator_version AS version FROM e")


def pending_json(stored_events: Sequence[StoredEvent]) -> str:
    """What the events' leaves commit to, for `INSERT_WITH_PENDING` (positions come later)."""
    return json.dumps([{"aid": aid, "version": version, "topic": topic,
                        "recorded_at": recorded_at, "payload": payload.hex()}
                       for _nid, aid, version, topic, recorded_at, payload
                       in (leaf_meta(s, 0) for s in stored_events)], separators=(",", ":"))
