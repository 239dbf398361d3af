"""A database written with the old tree layout (one `merkle_nodes` row per node) is moved to
the current one (each leaf row carries its nodes) at start-up, losing and hiding nothing."""

from __future__ import annotations

from tests.conftest import REPORT
from tracker.audit import entries, merkle
from tracker.audit.verify import verify
from tracker.bootstrap import build
from tracker.persistence.schema import has_column, has_table


def _fill(services, submissions: int = 6) -> None:
    monitor, _ = services.users.add("M", "monitor", "org-a")
    reviewer, _ = services.users.add("R", "reviewer", "un")
    for i in range(submissions):
        aid = services.app.submit(monitor, REPORT, f"r{i}").state["id"]
        services.app.change_status(reviewer, aid, "under_review", "triage", None, f"s{i}")


def _to_old_layout(services) -> None:
    """Rewrite the tree the way the previous version stored it, from the leaf hashes alone."""
    with services.app.db.tx() as cur:
        cur.execute("CREATE TABLE merkle_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL,"
                    " hash BLOB NOT NULL, PRIMARY KEY (level, idx))"
                    if cur.dialect == "sqlite" else
                    "CREATE TABLE merkle_nodes (level BIGINT NOT NULL, idx BIGINT NOT NULL,"
                    " hash BYTEA NOT NULL, PRIMARY KEY (level, idx))")
        tree = merkle.IncrementalTree()
        for r in cur.execute("SELECT position, leaf_hash FROM audit_leaves ORDER BY position"
                             ).fetchall():
            leaf = bytes(r["leaf_hash"])
            rows = [(0, int(r["position"]), leaf), *tree.append(leaf)]
            cur.executemany("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)",
                            rows)
        cur.execute("ALTER TABLE audit_leaves DROP COLUMN nodes")


def _verify(services):
    return verify(services.app.db, services.heads.signer.public, services.heads.all())


def _proofs(services, size: int) -> list[list[str]]:
    return [entries.inclusion(services.app, p, size)["audit_path"] for p in range(size)] + [
        entries.consistency(services.app, old, size)["consistency"] for old in range(1, size)]


def test_the_old_layout_is_migrated_with_the_same_roots_and_proofs(services, config):
    _fill(services)
    head = services.heads.issue()
    size = head["tree_size"]
    before = _proofs(services, size)
    _to_old_layout(services)
    services.close()

    migrated = build(config)
    try:
        with migrated.app.db.read() as cur:
            assert not has_table(cur, "merkle_nodes")
            assert has_column(cur, "audit_leaves", "nodes")
        outcome = _verify(migrated)
        assert outcome.ok, outcome
        assert outcome.root_hash == head["root_hash"]
        assert _proofs(migrated, size) == before
        # The log goes on growing on the new layout, and still verifies.
        _fill(migrated, 3)
        assert _verify(migrated).ok
        assert migrated.heads.issue()["tree_size"] == size + 6
    finally:
        migrated.close()


def test_tampering_done_before_the_migration_is_still_caught(services, config):
    _fill(services)
    services.heads.issue()
    _to_old_layout(services)
    with services.app.db.tx() as cur:
        # The tree's own copy of leaf 4 rewritten, and an interior node deleted.
        cur.execute("UPDATE merkle_nodes SET hash = ? WHERE level = 0 AND idx = 4",
                    (bytes(32),))
        cur.execute("DELETE FROM merkle_nodes WHERE level = 1 AND idx = 5")
    services.close()

    migrated = build(config)
    try:
        outcome = _verify(migrated)
        assert (outcome.ok, outcome.first_bad_position) == (False, 4)
        assert "rewritten" in outcome.reason
        with migrated.app.db.read() as cur:
            nodes = bytes(cur.scalar("SELECT nodes FROM audit_leaves WHERE position = 11"))
        assert nodes[32:64] == bytes(32)  # the missing node stays visible, as zero bytes
    finally:
        migrated.close()
