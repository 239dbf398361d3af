"""PostgreSQL group commit: writers commit concurrently, the sequencer gives positions in order.

A follower reading the log by position never sees a gap (an event that commits late is never
skipped), an allegation's versions keep their order, and a writer that dies between its
commit and the sequencer loses nothing.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPORT
from tests.integration.test_audit_concurrency import WRITER
from tracker.audit.verify import verify
from tracker.bootstrap import Tracker


def _postgres_only(services: Tracker) -> None:
    if services.app.db.dialect != "postgres":
        pytest.skip("the sequencer is PostgreSQL's (SQLite appends under its write lock)")


class Died(BaseException):
    """The writer's process ends here (after its commit, before the sequencer)."""


def die(*_a: Any, **_k: Any) -> dict[int, int]:
    raise Died


def _verified(services: Tracker, expected: int) -> None:
    services.heads.issue()
    outcome = verify(services.app.db, services.heads.signer.public, services.heads.all())
    assert outcome.ok, outcome
    assert outcome.checked == expected


def test_a_follower_reading_by_position_never_sees_a_gap(services: Tracker, config: Any
                                                         ) -> None:
    _postgres_only(services)
    per_process, writers = 30, 4
    seen: list[int] = []
    gaps: list[str] = []
    done = threading.Event()

    def follow() -> None:
        last = -1
        while not done.is_set() or last < per_process * writers - 1:
            with services.app.db.read() as cur:
                page = [int(r["position"]) for r in cur.execute(
                    "SELECT position FROM audit_leaves WHERE position > ? ORDER BY position",
                    (last,)).fetchall()]
            if page and page != list(range(last + 1, last + 1 + len(page))):
                gaps.append(f"after {last} the follower read {page[:5]}...")
                return
            seen.extend(page)
            last = page[-1] if page else last
            if done.is_set() and not page:
                return
            time.sleep(0.002)

    follower = threading.Thread(target=follow)
    follower.start()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(config.data_dir),
                               config.database_url, str(per_process)],
                              cwd=Path(__file__).parents[2]) for _ in range(writers)]
    try:
        assert [p.wait(120) for p in procs] == [0] * writers
    finally:
        done.set()
        follower.join(30)
    assert not gaps
    assert seen == list(range(per_process * writers))
    with services.app.db.read() as cur:
        assert cur.scalar("SELECT COUNT(*) FROM pending_leaves") == 0
    _verified(services, per_process * writers)


def test_an_allegations_versions_keep_their_order_when_written_at_once(services: Tracker
                                                                       ) -> None:
    # Both stores: changes without an expected version are re-run until they land.
    monitor, _ = services.users.add("M", "monitor", "org-a")
    reviewers = [services.users.add(f"R{n}", "reviewer", "un")[0] for n in range(4)]
    aid = services.app.submit(monitor, REPORT, "first").state["id"]
    barrier = threading.Barrier(len(reviewers))
    errors: list[BaseException] = []

    def comment(reviewer: Any) -> None:
        try:
            barrier.wait()
            for i in range(6):  # no expected version: a lost race is re-run on fresh state
                services.app.comment(reviewer, aid, f"note {i}", f"c{i}")
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=comment, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with services.app.db.read() as cur:
        rows = cur.execute("SELECT version, position FROM audit_leaves WHERE allegation_id = ?"
                           " ORDER BY version", (aid,)).fetchall()
    assert [r["version"] for r in rows] == list(range(1, 26))
    positions = [r["position"] for r in rows]
    assert positions == sorted(positions)
    _verified(services, 25)


def test_a_writer_dying_between_its_commit_and_the_sequencer_loses_nothing(
        services: Tracker, monkeypatch: pytest.MonkeyPatch) -> None:
    _postgres_only(services)
    monitor, _ = services.users.add("M", "monitor", "org-a")
    reviewer, _ = services.users.add("R", "reviewer", "un")
    aid = services.app.submit(monitor, REPORT, "first").state["id"]
    recorder = services.app.recorder

    monkeypatch.setattr(recorder, "sequence", die)
    with pytest.raises(Died):
        services.app.comment(reviewer, aid, "committed, never sequenced", "dies")
    monkeypatch.undo()

    with services.app.db.read() as cur:
        assert cur.scalar("SELECT COUNT(*) FROM pending_leaves") == 1
    # Verification counts it as waiting, not as an event inserted outside the log.
    outcome = verify(services.app.db, services.heads.signer.public, services.heads.all())
    assert outcome.ok, outcome
    assert outcome.notes == ["1 events awaiting sequencing were not checked"]

    # The history places it (and any reader of the log sees it once it has a position).
    history = services.app.history(reviewer, aid)
    assert [h["position"] for h in history] == [0, 1]
    assert history[1]["data"]["text"] == "committed, never sequenced"

    # The next write comes after it; signing a head first places anything pending.
    later = services.app.comment(reviewer, aid, "after", "after")
    assert later.position == 2
    with services.app.db.read() as cur:
        assert cur.scalar("SELECT COUNT(*) FROM pending_leaves") == 0
    _verified(services, 3)


def test_signing_a_head_places_what_a_dead_writer_left(services: Tracker,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    _postgres_only(services)
    monitor, _ = services.users.add("M", "monitor", "org-a")
    services.app.submit(monitor, REPORT, "first")

    monkeypatch.setattr(services.app.recorder, "sequence", die)
    with pytest.raises(Died):
        services.app.submit(monitor, REPORT, "second")
    monkeypatch.undo()
    head = services.heads.issue()  # what the projector does every few seconds
    assert head["tree_size"] == 2
    _verified(services, 2)


def test_followers_listening_are_woken_when_positions_commit(services: Tracker) -> None:
    _postgres_only(services)
    import psycopg

    monitor, _ = services.users.add("M", "monitor", "org-a")
    channel = services.app.recorder.channel_name
    with psycopg.connect(services.config.database, autocommit=True) as listener:
        listener.execute(f'LISTEN "{channel}"')
        services.app.submit(monitor, REPORT, "wake")
        woken = list(listener.notifies(timeout=5, stop_after=1))
    assert [n.channel for n in woken] == [channel]


def test_a_sequencer_failing_mid_batch_releases_the_lock_and_loses_nothing(
        services: Tracker, monkeypatch: pytest.MonkeyPatch) -> None:
    _postgres_only(services)
    from eventsourcing.persistence import ProgrammingError

    from tracker.persistence import sequencer

    monitor, _ = services.users.add("M", "monitor", "org-a")
    services.app.submit(monitor, REPORT, "first")

    # The round places the leaf, then fails before its commit (in the same statement).
    monkeypatch.setattr(sequencer, "PLACE", sequencer.PLACE
                        + " WHERE tracker_refuse('the sequencer failed half-way')")
    with pytest.raises(ProgrammingError, match="failed half-way"):
        services.app.submit(monitor, REPORT, "second")
    monkeypatch.undo()
    with services.app.db.read() as cur:  # rolled back: still pending, nothing placed
        assert cur.scalar("SELECT COUNT(*) FROM pending_leaves") == 1
        assert cur.scalar("SELECT COUNT(*) FROM audit_leaves") == 1
    third = services.app.submit(monitor, REPORT, "third")  # not blocked by a leftover lock
    assert third.position == 2
    _verified(services, 3)


def test_writers_wait_for_a_busy_sequencer_and_for_one_whose_session_died(
        services: Tracker) -> None:
    _postgres_only(services)
    import psycopg

    from tracker.persistence.sequencer import LOCK

    monitor, _ = services.users.add("M", "monitor", "org-a")
    services.app.submit(monitor, REPORT, "first")
    holder = psycopg.connect(services.config.database, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
    pid = holder.info.backend_pid
    results: list[Any] = []
    writer = threading.Thread(
        target=lambda: results.append(services.app.submit(monitor, REPORT, "waits")))
    writer.start()
    time.sleep(0.5)
    assert results == []  # committed, waiting for its position
    with services.app.db.read() as cur:
        assert cur.scalar("SELECT COUNT(*) FROM pending_leaves") == 1
    # The session holding the lock dies (a crashed process): the server releases its locks.
    with psycopg.connect(services.config.database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    writer.join(30)
    holder.close()
    assert [r.position for r in results] == [1]
    _verified(services, 2)


DIES_AFTER_COMMIT = """
import os, sys
from pathlib import Path
from tracker.bootstrap import build
from tracker.config import Config
from tests.conftest import REPORT
from tracker.domain.values import Actor
t = build(Config(data_dir=Path(sys.argv[1]), database_url=sys.argv[2]))
t.app.recorder.sequence = lambda *a, **k: os._exit(137)  # the process dies right here
t.app.submit(Actor("proc", "P", "monitor", "org-a"), REPORT, "dies")
"""


def test_a_writer_process_killed_after_its_commit_loses_nothing(services: Tracker,
                                                                config: Any) -> None:
    _postgres_only(services)
    monitor, _ = services.users.add("M", "monitor", "org-a")
    services.app.submit(monitor, REPORT, "first")
    proc = subprocess.run([sys.executable, "-c", DIES_AFTER_COMMIT, str(config.data_dir),
                           config.database_url], cwd=Path(__file__).parents[2], timeout=60)
    assert proc.returncode == 137
    with services.app.db.read() as cur:
        assert cur.scalar("SELECT COUNT(*) FROM pending_leaves") == 1
    assert services.heads.issue()["tree_size"] == 2  # placed by the next signed head
    after = services.app.submit(monitor, REPORT, "after")
    assert after.position == 2
    _verified(services, 3)
