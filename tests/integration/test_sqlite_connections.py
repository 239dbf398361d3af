"""The tracker's SQLite connections keep their compiled statements (the library's pool opens
them with a cache of one statement)."""

from __future__ import annotations

import pytest

from tracker.persistence.recorders import StatementCachingPool


def test_every_connection_of_the_application_comes_from_the_caching_pool(services):
    if services.app.db.dialect != "sqlite":
        pytest.skip("SQLite only")
    pool = services.app.recorder.datastore.pool
    assert type(pool) is StatementCachingPool
    assert services.app.db.datastore.pool is pool  # the tracker's own queries share it
    with services.app.db.read() as cur:  # and its connections work as the library's
        assert cur.execute("PRAGMA journal_mode").fetchone()["journal_mode"] == "wal"


def _sqlite_only(services) -> None:
    if services.app.db.dialect != "sqlite":
        pytest.skip("SQLite only")


def test_writers_of_other_processes_queue_on_the_lock_file(services, config):
    """A write waits while another process holds the writers' lock, and goes through the
    moment it is released (a process's death releases it too: the kernel's flock)."""
    import fcntl
    import os
    import stat
    import threading
    import time

    from tests.conftest import REPORT

    _sqlite_only(services)
    monitor, _ = services.users.add("M", "monitor", "org-a")
    services.app.submit(monitor, REPORT, "first")  # creates the lock file
    path = f"{config.database.removeprefix('sqlite:///')}.writers"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    other = os.open(path, os.O_RDWR)  # another process's open file description
    fcntl.flock(other, fcntl.LOCK_EX)
    done: list[object] = []
    writer = threading.Thread(target=lambda: done.append(
        services.app.submit(monitor, REPORT, "second")))
    writer.start()
    time.sleep(0.3)
    assert done == []  # queued behind the holder
    os.close(other)  # released, as when its process ends
    writer.join(10)
    assert len(done) == 1


def test_a_forked_process_does_not_share_its_parents_place_in_the_queue(services):
    """gunicorn forks its workers: a child must take the lock for itself, not reuse the
    parent's (an inherited open file shares its lock)."""
    import multiprocessing
    import time

    _sqlite_only(services)
    queue = services.app.recorder.write_queue
    results = multiprocessing.get_context("fork").Queue()

    def child() -> None:
        start = time.monotonic()
        with queue:
            results.put(time.monotonic() - start)

    with queue:  # the parent holds its place
        proc = multiprocessing.get_context("fork").Process(target=child)
        proc.start()
        time.sleep(0.4)
    waited = results.get(timeout=10)
    proc.join(10)
    assert waited >= 0.3
