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
