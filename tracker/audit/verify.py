"""Re-verify the stored log: every leaf from its record, every root against the signed heads."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracker.audit import merkle
from tracker.audit.heads import current_root, verify_head
from tracker.audit.log import (
    canonical_bytes,
    canonical_page,
    leaves_with_records,
    recorded_at_all,
    recorded_at_of,
)
from tracker.persistence.db import Cursor, Database

PAGE = 1000

# The columns of a page row, in this order (see page_sql): the leaf as stored, the tree's own
# copy of it (the first hash of the row's `nodes`), and the stored record it covers (all None
# when the record is gone).
Row = tuple[Any, ...]


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
            answer: dict[str, Any] = {
                "ok": True, "checked": self.checked, "tree_size": self.tree_size,
                "root_hash": self.root_hash, "heads_checked": self.heads_checked}
            if self.notes:
                answer["notes"] = list(self.notes)
            return answer
        return {"ok": False, "first_bad_position": self.first_bad_position,
                "reason": self.reason, "checked": self.checked, "tree_size": self.tree_size}


def page_sql(db: Database) -> str:
    """One page of leaves, in position order, with their records: parameters are (after
    position, tree size, page length). The benchmark's baseline reads exactly this."""
    return ("SELECT l.position, l.allegation_id, l.version, l.topic, l.recorded_at,"
            " l.payload_sha256, l.leaf_hash, substr(l.nodes, 1, 32) AS node_leaf,"
            " e.originator_id AS e_id, e.originator_version AS e_version, e.topic AS e_topic,"
            f" e.state AS e_state{leaves_with_records(db, keep_missing=True)}"
            " WHERE l.position > ? AND l.position < ? ORDER BY l.position LIMIT ?")


def _tuples(cur: Cursor, sql: str, params: tuple[Any, ...]) -> list[Row]:
    """All rows of a query as plain tuples, through the wrapper's own DB-API cursor.

    The wrapper turns rows into dicts (half the cost of verifying); this cursor is used for
    nothing else, so its row factory is switched for it alone.
    """
    raw = cur.raw
    if cur.dialect == "sqlite":
        getattr(raw, "sqlite_cursor", raw).row_factory = None
    else:
        from psycopg.rows import tuple_row

        raw.row_factory = tuple_row
    cur.execute(sql, params)
    return list(raw.fetchall())


def _pages(db: Database, size: int) -> Iterator[list[Row]]:
    """The leaves at positions [0, size) with their records, PAGE at a time."""
    sql, after = page_sql(db), -1
    while True:
        with db.read() as cur:
            page = _tuples(cur, sql, (after, size, PAGE))
        if not page:
            return
        yield page
        after = int(page[-1][0])


def _dashed(e_id: Any) -> str:
    text = str(e_id)
    if len(text) == 32 and "-" not in text:  # SQLite stores UUIDs as hex
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def _as_bytes(value: Any) -> bytes:
    # SQLite may hand back TEXT; drivers may hand back memoryview.
    return value.encode() if isinstance(value, str) else bytes(value)


def _check_row(row: Row, expected: int) -> tuple[bytes | None, str | None]:
    """(leaf, None) when the row verifies, else (leaf or None, why): the precise diagnosis."""
    (position, l_id, l_version, l_topic, l_recorded_at, l_payload, l_leaf, node_leaf,
     e_id, e_version, e_topic, e_state) = row
    position = int(position)
    if position != expected:
        return None, (f"position {expected} is missing from the log (the next stored leaf is "
                      f"{position}): a record was deleted")
    if e_state is None:
        return None, "the stored record of this leaf is missing: it was deleted"
    state = _as_bytes(e_state)
    e_id = _dashed(e_id)
    payload = hashlib.sha256(state).digest()
    try:
        recorded_at = recorded_at_of(state)
    except (ValueError, KeyError, TypeError):
        return None, "the stored record's payload is not a valid event: it was altered"
    canonical = canonical_bytes(position, e_id, e_version, e_topic, recorded_at, payload)
    leaf = merkle.leaf_hash(canonical)
    # Compared as stored (no int()): a version rewritten as 3.5 or '3' is an alteration.
    if payload != bytes(l_payload) or (e_id, e_version, e_topic, recorded_at) \
            != (l_id, l_version, l_topic, l_recorded_at) or e_version.__class__ is not int:
        return leaf, "the stored record was altered: it no longer matches its leaf"
    if leaf != bytes(l_leaf):
        return leaf, "the leaf hash does not match the stored record"
    if node_leaf is None or leaf != _as_bytes(node_leaf):
        return leaf, ("the leaf hash was rewritten to match an altered record: the tree's own "
                      "copy of this leaf differs")
    return leaf, None


def _page_leaves(page: Sequence[Row], expected: int) -> tuple[list[bytes], str | None]:
    """The leaf hashes of a page's rows from `expected` on, up to the first row that does not
    verify, and why that one does not (None when the whole page verifies)."""
    leaves = _whole_page(page, expected)
    if leaves is not None:
        return leaves, None
    # Something differs somewhere in this page: row by row, for the first one and why.
    leaves = []
    for row in page:
        leaf, problem = _check_row(row, expected + len(leaves))
        if problem:
            return leaves, problem
        assert leaf is not None
        leaves.append(leaf)
    return leaves, None


def _whole_page(page: Sequence[Row], expected: int) -> list[bytes] | None:
    """The page's leaf hashes when every row verifies, else None.

    Column by column, so that the per-row work runs in C (map, comprehensions, list
    equality); it only answers "is everything equal?", and any doubt (a missing record, a
    TEXT payload, an unreadable one, any difference) sends the page to _check_row, which has
    the last word.
    """
    (positions, l_ids, l_versions, l_topics, l_recorded_at, l_payloads, l_leaves, node_leaves,
     e_ids, e_versions, e_topics, states) = zip(*page, strict=True)
    if positions != tuple(range(expected, expected + len(page))) \
            or any(s.__class__ is not bytes for s in states):
        return None
    sha = hashlib.sha256
    payloads = tuple([sha(s).digest() for s in states])
    try:
        recorded_at = tuple(recorded_at_all(states))
    except (ValueError, KeyError, TypeError):
        return None
    # As _dashed: SQLite stores UUIDs as hex.
    ids = tuple([f"{e[:8]}-{e[8:12]}-{e[12:16]}-{e[16:20]}-{e[20:]}"
                 if len(e) == 32 and "-" not in e else e for e in map(str, e_ids)])
    # merkle.leaf_hash, inline: SHA-256(0x00 || canonical bytes).
    leaves = [sha(b"\x00" + c).digest() for c in canonical_page(
        positions, ids, e_versions, e_topics, recorded_at, payloads)]
    if (tuple(leaves) == l_leaves == node_leaves and payloads == l_payloads and ids == l_ids
            and e_versions == l_versions and e_topics == l_topics
            and recorded_at == l_recorded_at):
        return leaves
    return None


def _counts(db: Database) -> tuple[int, int, int]:
    """(tree size, stored records, records awaiting sequencing), in one statement so that all
    three come from one snapshot while writers go on."""
    with db.read() as cur:
        row = _tuples(cur, "SELECT (SELECT MAX(position) FROM audit_leaves),"
                           f" (SELECT COUNT(*) FROM {db.events_table}),"
                           " (SELECT COUNT(*) FROM pending_leaves)", ())[0]
    last, events, waiting = row
    return (0 if last is None else int(last) + 1), int(events), int(waiting)


def verify(db: Database, public_key: bytes, heads: list[dict[str, Any]],
           progress: Callable[[int, int], None] | None = None) -> Outcome:
    """Recompute every leaf and the root at every signed head; report the first problem.

    Covers the tree as it was when verification started (leaves [0, size)); records written
    meanwhile are left for the next run.
    """
    size, events, waiting = _counts(db)
    for head in heads:
        try:
            verify_head(head, public_key)
        except Exception:  # noqa: BLE001 - any failure to verify is a bad head
            return Outcome(False, tree_size=size, first_bad_position=None,
                           reason=f"the signed head of tree size {head['tree_size']} does not "
                                  "verify with the log's key")
    # A head of size 0 says nothing (every log extends the empty one).
    pending = sorted((h for h in heads if int(h["tree_size"]) > 0),
                     key=lambda h: int(h["tree_size"]))
    for head in pending:
        if int(head["tree_size"]) > size:
            return Outcome(False, tree_size=size, first_bad_position=size,
                           reason=f"the log has {size} records but a signed head covers "
                                  f"{head['tree_size']}: the log was truncated")
    tree = merkle.IncrementalTree()
    checked = 0
    for page in _pages(db, size):
        leaves, problem = _page_leaves(page, checked)
        # Into the tree, checking each signed head's root as soon as the tree reaches its size
        # (before looking at the record at that position, as one-by-one appends would).
        taken = 0
        while pending and int(pending[0]["tree_size"]) <= checked + len(leaves):
            head = pending.pop(0)
            cut = int(head["tree_size"]) - checked
            tree.extend(leaves[taken:cut])
            taken = cut
            if merkle.b64(tree.root()) != head["root_hash"]:
                return Outcome(False, int(head["tree_size"]), size, first_bad_position=None,
                               reason=f"the root of the first {head['tree_size']} records no "
                                      "longer matches the signed head of that size: a record "
                                      "before this position was altered and its leaf hashes "
                                      "rewritten")
        tree.extend(leaves[taken:])
        checked += len(leaves)
        if problem:
            return Outcome(False, checked, size, first_bad_position=checked, reason=problem)
        if progress:
            progress(checked, size)
    # Every stored record has its leaf, or (PostgreSQL) waits in pending_leaves for one.
    if events != checked + waiting:
        why = ("a record was inserted outside the log" if events > checked + waiting else
               "a record awaiting sequencing is missing from the event store")
        also = f" and {waiting} awaiting sequencing" if waiting else ""
        return Outcome(False, checked, size, first_bad_position=checked,
                       reason=f"the event store holds {events} records but the log has "
                              f"{checked} leaves{also}: {why}")
    notes = [f"{waiting} events awaiting sequencing were not checked"] if waiting else []
    root = tree.root()
    with db.read() as cur:
        stored = current_root(cur, size)
    if stored != root:
        return Outcome(False, checked, size, first_bad_position=None,
                       reason="the stored tree nodes do not match the records: the tree was "
                              "altered")
    return Outcome(True, checked, size, root_hash=merkle.b64(root), heads_checked=len(heads),
                   notes=notes)
