"""After an erasure: make the database drop its own copy of the destroyed wrapped key.

SQLite overwrites the freed bytes in the erasure's transaction (`PRAGMA secure_delete`), but
earlier versions of the key's page stay in the write-ahead log (`-wal`) until a checkpoint
reuses it; so after the erasure commits we checkpoint and truncate the WAL
(`PRAGMA wal_checkpoint(TRUNCATE)`) — best effort too: while a reader still uses an old
snapshot the checkpoint cannot finish, which is logged, and the next checkpoint (SQLite runs
one every 1,000 pages) overwrites the log.
PostgreSQL keeps the old row version (with the wrapped key) as a dead tuple until VACUUM, so
after the erasure commits we run `VACUUM data_keys` — outside any transaction, best effort: a
failure is logged, never turned into a failed erasure (the erasure has committed; autovacuum
removes the dead tuple later). VACUUM marks the space reusable; the bytes may physically remain
until overwritten (and in the WAL and in backups), which is why keys are stored only wrapped by
the master key: rotating the master key after erasures makes such copies useless.
"""

from __future__ import annotations

import logging

from tracker.persistence.db import Database

log = logging.getLogger(__name__)

VACUUM_LOCK_TIMEOUT = 5.0  # seconds


def scrub_erased_keys(db: Database) -> bool:
    """After an erasure committed: VACUUM the key table (PostgreSQL) or checkpoint and
    truncate the write-ahead log (SQLite). True when it ran to the end."""
    if db.dialect != "postgres":
        return _truncate_wal(db)
    try:
        with db.datastore.get_connection() as conn:
            # The datastore's connections are in autocommit mode: VACUUM cannot run in a
            # transaction block.
            conn.autocommit = True
            # Never hang the erasure behind a lock held elsewhere (another VACUUM, a DDL).
            conn.execute(f"SET lock_timeout = '{int(VACUUM_LOCK_TIMEOUT * 1000)}ms'")
            try:
                conn.execute("VACUUM data_keys")
            finally:
                conn.execute("RESET lock_timeout")
    except Exception as e:  # noqa: BLE001  # best effort: the erasure itself has committed
        log.warning("VACUUM data_keys after an erasure failed (%s: %s); the dead row version "
                    "with the destroyed wrapped key stays until the next (auto)vacuum",
                    type(e).__name__, e)
        return False
    return True


def _truncate_wal(db: Database) -> bool:
    try:
        with db.datastore.get_connection(commit=True) as conn, conn.cursor() as c:
            busy, frames, done = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except Exception as e:  # noqa: BLE001  # best effort: the erasure itself has committed
        log.warning("Checkpointing the SQLite WAL after an erasure failed (%s: %s); the "
                    "destroyed wrapped key may stay in the -wal file until the next checkpoint",
                    type(e).__name__, e)
        return False
    if busy or (frames > 0 and done < frames):
        log.warning("The SQLite WAL could not be truncated after an erasure (a reader holds an "
                    "old snapshot); the destroyed wrapped key may stay in the -wal file until "
                    "the next checkpoint")
        return False
    return True
