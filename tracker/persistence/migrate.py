"""Bringing a database written by an earlier version of the tracker up to date."""

from __future__ import annotations

import logging

from tracker.audit.log import node_levels
from tracker.persistence.db import Cursor

log = logging.getLogger("tracker.migrate")

PAGE = 5000


def tree_nodes_into_leaves(cur: Cursor) -> int:
    """Move the audit tree's nodes from the old `merkle_nodes` table (one row per node, keyed
    by level and index) into `audit_leaves.nodes` (each leaf row carries its own copy of the
    leaf hash and the nodes its append completed), then drop the old table.

    Runs inside the schema's transaction: all or nothing. Hashes are copied as stored, never
    recomputed, so tampering done before the migration stays visible to verification; a node
    missing from the old table is written as 32 zero bytes, which verification reports.
    Returns the number of leaves migrated.
    """
    size = int(cur.scalar("SELECT COUNT(*) FROM audit_leaves"))
    missing = done = 0
    after = -1
    log.info("audit tree: moving the nodes of %d leaves into audit_leaves.nodes", size)
    while True:
        positions = [int(r["position"]) for r in cur.execute(
            "SELECT position FROM audit_leaves WHERE position > ? ORDER BY position LIMIT ?",
            (after, PAGE)).fetchall()]
        if not positions:
            break
        first, last = positions[0], positions[-1]
        nodes: dict[tuple[int, int], bytes] = {}
        for level in range((last + 1).bit_length()):
            low, high = ((first + 1) >> level) - 1, ((last + 1) >> level) - 1
            for r in cur.execute("SELECT idx, hash FROM merkle_nodes WHERE level = ?"
                                 " AND idx >= ? AND idx <= ?", (level, max(low, 0), high)
                                 ).fetchall():
                nodes[(level, int(r["idx"]))] = bytes(r["hash"])
        rows = []
        for position in positions:
            values = [nodes.get((level, ((position + 1) >> level) - 1))
                      for level in range(node_levels(position))]
            missing += values.count(None)
            rows.append((b"".join(v or bytes(32) for v in values), position))
        cur.executemany("UPDATE audit_leaves SET nodes = ? WHERE position = ?", rows)
        done += len(positions)
        after = last
        log.info("audit tree: %d/%d leaves migrated", done, size)
    cur.execute("DROP TABLE merkle_nodes")
    if missing:
        log.warning("audit tree: %d nodes were missing from merkle_nodes (written as zero "
                    "bytes): run `tracker audit verify`", missing)
    return done
