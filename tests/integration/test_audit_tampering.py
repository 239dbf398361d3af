"""Tampering with the stored log by plain SQL is detected, naming the right position."""

from __future__ import annotations

import pytest

from tests.conftest import REPORT
from tracker.audit.verify import verify


def _fill(services, n: int = 6) -> None:
    monitor, _ = services.users.add("M", "monitor", "org-a")
    reviewer, _ = services.users.add("R", "reviewer", "un")
    ids = []
    for i in range(n // 2):
        ids.append(services.app.submit(monitor, REPORT, f"r{i}").state["id"])
    for i, aid in enumerate(ids):
        services.app.change_status(reviewer, aid, "under_review", "triage", None, f"s{i}")


def _verify(services):
    return verify(services.app.db, services.heads.signer.public, services.heads.all())


def _sql(services, statement: str, params=()):
    with services.app.db.tx() as cur:
        cur.execute(statement, params)


def _events(services) -> tuple[str, str]:
    return services.app.db.events_table, services.app.db.events_id


def _forge(services, nid: int, old: str, new: str) -> None:
    """Rewrite text inside a stored record's payload, as an attacker with SQL access would."""
    table, key = _events(services)
    if services.app.db.dialect == "sqlite":
        expr = "CAST(REPLACE(CAST(state AS TEXT), ?, ?) AS BLOB)"
    else:
        expr = "convert_to(replace(convert_from(state, 'UTF8'), ?, ?), 'UTF8')"
    _sql(services, f"UPDATE {table} SET state = {expr} WHERE {key} = ?", (old, new, nid))


def _stored(services, nid: int):
    from types import SimpleNamespace
    from uuid import UUID

    table, key = _events(services)
    with services.app.db.read() as cur:
        row = cur.execute(f"SELECT originator_id, originator_version, topic, state FROM {table}"
                          f" WHERE {key} = ?", (nid,)).fetchone()
    return SimpleNamespace(originator_id=str(UUID(str(row["originator_id"]))),
                           originator_version=row["originator_version"], topic=row["topic"],
                           state=bytes(row["state"]))


def _nid(services, position: int) -> int:
    with services.app.db.read() as cur:
        return int(cur.scalar("SELECT notification_id FROM audit_leaves WHERE position = ?",
                              (position,)))


def _size(services) -> int:
    from tracker.audit.log import tree_size

    with services.app.db.read() as cur:
        return tree_size(cur)


def test_an_untouched_log_verifies(services):
    _fill(services)
    services.heads.issue()
    outcome = _verify(services)
    assert outcome.ok, outcome
    assert outcome.checked == outcome.tree_size == 6
    assert outcome.heads_checked == 1


def test_a_records_data_altered(services):
    _fill(services)
    assert b"triage" in _stored(services, _nid(services, 4)).state
    _forge(services, _nid(services, 4), "triage", "TRIAGE")
    outcome = _verify(services)
    assert not outcome.ok
    assert outcome.first_bad_position == 4
    assert "altered" in outcome.reason


def test_a_record_deleted(services):
    _fill(services)
    table, key = _events(services)
    _sql(services, f"DELETE FROM {table} WHERE {key} = ?", (_nid(services, 2),))
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 2)
    assert "deleted" in outcome.reason


def test_a_record_and_its_leaf_deleted(services):
    _fill(services)
    table, key = _events(services)
    nid = _nid(services, 3)
    _sql(services, f"DELETE FROM {table} WHERE {key} = ?", (nid,))
    _sql(services, "DELETE FROM audit_leaves WHERE position = 3")
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 3)


def test_a_record_inserted_outside_the_log(services):
    _fill(services)
    _write_outside_the_log(services)
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 6)
    assert "inserted" in outcome.reason


def test_two_records_swapped(services):
    _fill(services)
    table, key = _events(services)
    a, b = _nid(services, 1), _nid(services, 2)
    with services.app.db.read() as cur:
        sa = cur.scalar(f"SELECT state FROM {table} WHERE {key} = ?", (a,))
        sb = cur.scalar(f"SELECT state FROM {table} WHERE {key} = ?", (b,))
    _sql(services, f"UPDATE {table} SET state = ? WHERE {key} = ?", (sb, a))
    _sql(services, f"UPDATE {table} SET state = ? WHERE {key} = ?", (sa, b))
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 1)


def test_the_log_truncated_after_a_published_head(services):
    _fill(services)
    services.heads.issue()
    table, key = _events(services)
    for position in (5, 4):
        _sql(services, f"DELETE FROM {table} WHERE {key} = ?", (_nid(services, position),))
        _sql(services, "DELETE FROM audit_leaves WHERE position = ?", (position,))
    outcome = _verify(services)
    assert not outcome.ok
    assert outcome.first_bad_position == 4
    assert "truncated" in outcome.reason


def test_a_leaf_hash_rewritten_to_match_an_altered_record(services):
    from tracker.audit.log import leaf_for

    _fill(services)
    nid = _nid(services, 4)
    _forge(services, nid, "triage", "forged")
    payload, leaf, _ = leaf_for(4, _stored(services, nid))
    _sql(services, "UPDATE audit_leaves SET payload_sha256 = ?, leaf_hash = ? WHERE position = 4",
         (payload, leaf))
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 4)
    assert "rewritten" in outcome.reason
    # An attacker who also rewrites the tree's own copy is caught by the signed head.


def _rewrite_everything(services, position: int, old: str, new: str) -> None:
    """An attacker with write access: the record at `position` altered, its leaf and the tree's
    copy rewritten to match, and every interior node recomputed so the tree is consistent."""
    from tracker.audit import merkle
    from tracker.audit.log import leaf_for

    nid = _nid(services, position)
    _forge(services, nid, old, new)
    payload, leaf, _ = leaf_for(position, _stored(services, nid))
    _sql(services, "UPDATE audit_leaves SET payload_sha256 = ?, leaf_hash = ? WHERE position = ?",
         (payload, leaf, position))
    with services.app.db.tx() as cur:
        # Every leaf row's nodes recomputed from the (partly forged) leaf hashes.
        tree = merkle.IncrementalTree()
        for r in cur.execute("SELECT position, leaf_hash FROM audit_leaves ORDER BY position"
                             ).fetchall():
            leaf = bytes(r["leaf_hash"])
            nodes = leaf + b"".join(h for _, _, h in tree.append(leaf))
            cur.execute("UPDATE audit_leaves SET nodes = ? WHERE position = ?",
                        (nodes, r["position"]))


def test_everything_rewritten_is_still_caught_by_the_signed_head(services):

    _fill(services)
    services.heads.issue()
    _rewrite_everything(services, 3, "triage", "forged")
    outcome = _verify(services)
    assert not outcome.ok
    assert "signed head" in outcome.reason


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9])
def test_roots_and_proofs_agree_with_a_recomputation(services, n):
    from tracker.audit import entries, merkle

    monitor, _ = services.users.add("M", "monitor", "org-a")
    for i in range(n):
        services.app.submit(monitor, REPORT, f"r{i}")
    head = services.heads.issue()
    assert head["tree_size"] == n
    root = merkle.unb64(head["root_hash"])
    for position in range(n):
        proof = entries.inclusion(services.app, position, n)
        merkle.verify_inclusion(position, n, merkle.unb64(proof["leaf_hash"]),
                                [merkle.unb64(h) for h in proof["audit_path"]], root)
    for old in range(1, n + 1):
        c = entries.consistency(services.app, old, n)
        old_root = merkle.root(old, _getter(services))
        merkle.verify_consistency(old, n, old_root, root,
                                  [merkle.unb64(h) for h in c["consistency"]])


def _getter(services):
    from tracker.audit.log import NodeStore

    def get(level, index):
        with services.app.db.read() as cur:
            return NodeStore(cur).get(level, index)

    return get




def test_a_leafs_recorded_at_altered(services):
    # The time replay --as-of and the served log entries use is the leaf's own column.
    _fill(services)
    _sql(services, "UPDATE audit_leaves SET recorded_at = ? WHERE position = 2",
         ("2001-01-01T00:00:00+00:00",))
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 2)
    assert "altered" in outcome.reason


def test_a_record_with_text_state_verifies_as_its_bytes(services):
    if services.app.db.dialect != "sqlite":
        pytest.skip("only SQLite can hand back a BLOB column as TEXT")
    _fill(services)
    table, key = _events(services)
    _sql(services, f"UPDATE {table} SET state = CAST(state AS TEXT) WHERE {key} = ?",
         (_nid(services, 1),))
    assert _verify(services).ok


def test_progress_is_reported_per_page(services, monkeypatch):
    from tracker.audit import verify as module

    monkeypatch.setattr(module, "PAGE", 4)
    _fill(services, 10)
    calls: list[tuple[int, int]] = []
    outcome = verify(services.app.db, services.heads.signer.public, services.heads.all(),
                     lambda done, total: calls.append((done, total)))
    assert outcome.ok, outcome
    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_every_signed_head_is_checked_where_the_tree_reaches_it(services, monkeypatch):
    """Heads inside and at the edges of pages; a rewrite after the first head is caught by the
    second, and a record altered before any head at its own position."""
    from tracker.audit import verify as module

    monkeypatch.setattr(module, "PAGE", 4)
    monitor, _ = services.users.add("M", "monitor", "org-a")
    for size in (1, 3, 4, 5, 8, 11):
        for i in range(size - _size(services)):
            services.app.submit(monitor, REPORT, f"r{size}-{i}")
        assert services.heads.issue()["tree_size"] == size
    outcome = _verify(services)
    assert outcome.ok and outcome.heads_checked == 6, outcome
    # Everything about position 6 rewritten (record, leaf, both copies, interior nodes):
    # heads 1..5 still match, the head of size 8 does not.
    _rewrite_everything(services, 6, "Allegation", "Allegatiom")
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position, outcome.checked) == (False, None, 8)
    assert "the first 8 records" in outcome.reason
    # A record altered (leaf left alone) at position 2 is named before any later head fails.
    _forge(services, _nid(services, 2), "Allegation", "Allegatiom")
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 2)
    assert "altered" in outcome.reason


def test_records_written_while_verifying_are_left_for_the_next_run(services, monkeypatch):
    from tracker.audit import verify as module

    monkeypatch.setattr(module, "PAGE", 2)
    _fill(services)
    monitor, _ = services.users.add("M2", "monitor", "org-b")
    written = []

    def progress(done: int, total: int) -> None:
        if not written:
            written.append(services.app.submit(monitor, REPORT, "during"))

    outcome = verify(services.app.db, services.heads.signer.public, services.heads.all(),
                     progress)
    assert outcome.ok, outcome
    assert written and outcome.checked == outcome.tree_size == 6
    assert _verify(services).checked == 7


def _hold(services, nid: int) -> None:
    """A pending leaf, as a PostgreSQL writer leaves one for the sequencer."""
    _sql(services, "INSERT INTO pending_leaves (notification_id, allegation_id, version, topic,"
                   " recorded_at, payload_sha256) VALUES (?, ?, ?, ?, ?, ?)",
         (nid, "00000000-0000-0000-0000-000000000000", 99, "Allegation.Commented",
          "2026-01-01T00:00:00+00:00", b"\0" * 32))


def _write_outside_the_log(services) -> int:
    """A stored record without a leaf (inserted by an attacker, or committed by a PostgreSQL
    writer and waiting for the sequencer); returns its notification id."""
    table, key = _events(services)
    with services.app.db.read() as cur:
        row = cur.execute(f"SELECT * FROM {table} ORDER BY originator_version DESC LIMIT 1"
                          ).fetchone()
    _sql(services, f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
                   f" VALUES (?, ?, ?, ?)",
         (row["originator_id"], 99, row["topic"], row["state"]))
    with services.app.db.read() as cur:
        return int(cur.scalar(f"SELECT MAX({key}) FROM {table}"))


def test_records_awaiting_sequencing_are_counted_not_checked(services):
    _fill(services)
    nid = _write_outside_the_log(services)
    _hold(services, nid)
    outcome = _verify(services)
    assert outcome.ok, outcome
    assert outcome.checked == 6
    assert outcome.notes == ["1 events awaiting sequencing were not checked"]
    assert outcome.as_dict()["notes"] == outcome.notes


def test_a_pending_row_does_not_excuse_a_second_record_outside_the_log(services):
    _fill(services)
    nid = _write_outside_the_log(services)
    _hold(services, nid)
    table, _ = _events(services)
    _sql(services, f"UPDATE {table} SET originator_version = 98 WHERE originator_version = 99")
    _write_outside_the_log(services)
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 6)
    assert "inserted" in outcome.reason


def test_a_pending_row_whose_record_is_gone(services):
    _fill(services)
    _hold(services, 10_000)
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 6)
    assert "awaiting sequencing is missing" in outcome.reason


@pytest.mark.parametrize("version", [50, 2.5])
def test_a_records_version_altered(services, version):
    if isinstance(version, float) and services.app.db.dialect != "sqlite":
        pytest.skip("only SQLite stores a fractional value in an integer column")
    _fill(services)
    table, key = _events(services)
    _sql(services, f"UPDATE {table} SET originator_version = ? WHERE {key} = ?",
         (version, _nid(services, 4)))
    outcome = _verify(services)
    assert (outcome.ok, outcome.first_bad_position) == (False, 4)
    assert "altered" in outcome.reason
