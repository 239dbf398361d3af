"""Concurrent writers (threads, and processes) produce a gapless log whose tree verifies."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import REPORT
from tracker.audit.verify import verify


def _check(services, expected: int) -> None:
    with services.app.db.read() as cur:
        positions = [r["position"] for r in cur.execute(
            "SELECT position FROM audit_leaves ORDER BY position").fetchall()]
    assert positions == list(range(expected))
    services.heads.issue()
    outcome = verify(services.app.db, services.heads.signer.public, services.heads.all())
    assert outcome.ok, outcome
    assert outcome.checked == expected


def test_threads_writing_at_once(services):
    monitor, _ = services.users.add("M", "monitor", "org-a")
    reviewer, _ = services.users.add("R", "reviewer", "un")
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(8):
                aid = services.app.submit(monitor, REPORT, f"t{n}-{i}").state["id"]
                services.app.change_status(reviewer, aid, "under_review", "triage", None, "s")
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _check(services, 6 * 8 * 2)


WRITER = """
import sys
from pathlib import Path
from tracker.bootstrap import build
from tracker.config import Config
from tests.conftest import REPORT
from tracker.domain.values import Actor
t = build(Config(data_dir=Path(sys.argv[1]), database_url=sys.argv[2]))
actor = Actor("proc", "P", "monitor", "org-a")
for i in range(int(sys.argv[3])):
    t.app.submit(actor, REPORT, f"p{i}")
t.close()
"""


@pytest.mark.slow
def test_processes_writing_at_once(services, config):
    per_process = 25
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(config.data_dir),
                               config.database_url, str(per_process)],
                              cwd=Path(__file__).parents[2]) for _ in range(4)]
    assert [p.wait(120) for p in procs] == [0, 0, 0, 0]
    _check(services, 4 * per_process)


def test_two_writers_taking_turns_keep_one_tree(services, config):
    """Each writer caches the tree's right edge; a turn by the other must not be built upon
    with a stale edge (the cached edge is trusted only for the very next event)."""
    from tracker.bootstrap import build

    other = build(config)
    try:
        monitor, _ = services.users.add("M", "monitor", "org-a")
        for i in range(12):
            writer = services if i % 3 else other  # runs of two, then one
            writer.app.submit(monitor, REPORT, f"turn-{i}")
        _check(services, 12)
    finally:
        other.close()
