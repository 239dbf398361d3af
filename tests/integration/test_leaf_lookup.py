"""An allegation's leaves (history positions, the position an idempotent retry answers, the
version known at a time) are found without an index by allegation on SQLite — through the
event store's primary key — and stay right when a record was written behind the tracker's
back, which puts SQLite's rowids off the tree's positions."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime

import pytest

from tests.conftest import REPORT
from tests.integration.conftest_projections import project
from tracker.audit.log import first_positions, leaves_of, records_of
from tracker.bootstrap import build
from tracker.persistence.db import Cursor


def _positions(services, aid: str) -> dict[int, int]:
    with services.app.db.read() as cur:
        rows = cur.execute("SELECT version, position FROM audit_leaves WHERE allegation_id = ?",
                           (aid,)).fetchall()
    return {int(r["version"]): int(r["position"]) for r in rows}


def _index_names(services) -> set[str]:
    with services.app.db.read() as cur:
        if cur.dialect == "sqlite":
            rows = cur.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                               " AND tbl_name = 'audit_leaves'").fetchall()
        else:
            rows = cur.execute("SELECT indexname AS name FROM pg_indexes"
                               " WHERE tablename = 'audit_leaves'").fetchall()
    return {r["name"] for r in rows}


def _record_outside_the_log(services) -> None:
    """A stored record of an unknown originator, without a leaf (as an attacker writes it)."""
    table = services.app.db.events_table
    with services.app.db.read() as cur:
        row = cur.execute(f"SELECT topic, state FROM {table} LIMIT 1").fetchone()
    oid = uuid.uuid4()
    with services.app.db.tx() as cur:
        cur.execute(f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
                    " VALUES (?, ?, ?, ?)",
                    (oid.hex if cur.dialect == "sqlite" else str(oid), 1, row["topic"],
                     row["state"]))


def _reads_agree_with_the_log(services, monitor, reviewer, first, moved, retry) -> None:
    """History, and the answer to a retried submission, give the positions stored."""
    aid = first.state["id"]
    stored = _positions(services, aid)
    assert stored == {1: first.position, 2: moved.position}
    history = services.app.history(reviewer, aid)
    assert [(h["version"], h["position"]) for h in history] == sorted(stored.items())
    again = services.app.submit(monitor, REPORT, *retry)
    assert (again.created, again.position) == (False, first.position)


def test_reads_find_each_events_position(services):
    monitor, _ = services.users.add("M", "monitor", "org-a")
    reviewer, _ = services.users.add("R", "reviewer", "un")
    first = services.app.submit(monitor, REPORT, "r0", idempotency_key="k0")
    aid = first.state["id"]
    moved = services.app.change_status(reviewer, aid, "under_review", "triage", None, "s0")
    _reads_agree_with_the_log(services, monitor, reviewer, first, moved, ("r0", "k0"))


def test_a_record_outside_the_log_does_not_hide_later_positions(services):
    monitor, _ = services.users.add("M", "monitor", "org-a")
    reviewer, _ = services.users.add("R", "reviewer", "un")
    services.app.submit(monitor, REPORT, "r0")
    _record_outside_the_log(services)  # on SQLite, rowids now run one ahead of positions

    first = services.app.submit(monitor, REPORT, "r1", idempotency_key="k1")
    aid = first.state["id"]
    between = datetime.fromisoformat(services.app.history(reviewer, aid)[0]["recorded_at"])
    moved = services.app.change_status(reviewer, aid, "under_review", "triage", None, "s1")
    _reads_agree_with_the_log(services, monitor, reviewer, first, moved, ("r1", "k1"))
    assert services.app.get(reviewer, aid, as_of=between)["version"] == 1
    said = services.app.comment(reviewer, aid, "seen", "c1")
    page = services.app.entries(reviewer, aid, "comments")
    assert [(e["text"], e["position"]) for e in page.items] == [("seen", said.position)]


def test_sqlite_keeps_no_index_by_allegation_and_an_old_one_is_dropped(services, config):
    dialect = services.app.db.dialect
    if dialect == "sqlite":
        assert "audit_leaves_allegation" not in _index_names(services)
        with services.app.db.tx() as cur:  # as earlier versions created it
            cur.execute("CREATE UNIQUE INDEX audit_leaves_allegation"
                        " ON audit_leaves (allegation_id, version)")
    services.close()
    again = build(config)
    try:
        names = _index_names(again)
    finally:
        again.close()
    # PostgreSQL reads an allegation's leaves by this index; SQLite through its rowids.
    assert ("audit_leaves_allegation" in names) == (dialect == "postgres")


def test_the_projector_finds_rows_across_a_record_outside_the_log(services):
    monitor, _ = services.users.add("M", "monitor", "org-a")
    reviewer, _ = services.users.add("R", "reviewer", "un")
    services.app.submit(monitor, REPORT, "r0")
    _record_outside_the_log(services)
    aid = services.app.submit(monitor, REPORT, "r1").state["id"]
    project(services)  # the row of `aid` is made from its submission
    services.app.change_status(reviewer, aid, "under_review", "triage", None, "s1")
    project(services)  # and found again to be changed
    with services.app.db.read() as cur:
        rows = cur.execute("SELECT status, version FROM allegation_list WHERE id = ?",
                           (aid,)).fetchall()
    assert [(r["status"], r["version"]) for r in rows] == [("under_review", 2)]


def test_sqlite_finds_an_allegations_leaves_without_scanning_the_log(services):
    if services.app.db.dialect != "sqlite":
        pytest.skip("SQLite's lookup through the event store's primary key")
    monitor, _ = services.users.add("M", "monitor", "org-a")
    ids = [services.app.submit(monitor, REPORT, f"r{i}").state["id"] for i in range(3)]
    conn = sqlite3.connect(services.app.recorder.datastore.pool.db_name)
    conn.row_factory = sqlite3.Row
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    cur = Cursor(conn.cursor(), "sqlite")
    assert [r["version"] for r in leaves_of(cur, "stored_events", uuid.UUID(ids[0]))] == [1]
    assert sorted(first_positions(cur, ids).values()) == [0, 1, 2]
    assert [r["version"] for r in records_of(cur, services.app.db, uuid.UUID(ids[0]),
                                             "Allegation.Submitted",
                                             1, 5)] == [1]
    conn.set_trace_callback(None)
    assert len(statements) == 3  # no second, scanning query
    for sql in statements:
        plan = [r["detail"] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]
        assert not [step for step in plan if step.startswith("SCAN")], plan
    conn.close()
