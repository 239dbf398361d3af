"""Master-key rotation and checks: every secret wrapped by the master key, re-wrapped at once.

What the master key wraps: the per-allegation data keys (`data_keys.wrapped`, bound to the
allegation id) and the webhook secrets (`notification_subscriptions.secret`), plus the check
value in `meta` that start-up verifies. A rotation re-wraps all of them in ONE transaction, so
the database is either entirely under the old key or entirely under the new one.

The key file is changed around that transaction in an order that no crash can defeat:

1. `master.key.old-<UTC time>`: a copy of the current key (kept until the operator deletes it);
2. `master.key.new`: the new key, written to a temporary file, fsynced, renamed, directory
   fsynced — on disk *before* anything is wrapped by it;
3. the transaction: re-wrap, verify every new wrap opens, store the new check value, commit;
4. `master.key.new` renamed over `master.key` (directory fsynced).

A crash before 3 commits leaves the database under `master.key` (the `.new` file is unused and
removed at the next start-up); a crash between 3 and 4 leaves it under `master.key.new`, and
start-up (`open_keystore`) notices that the check value opens with `master.key.new` only and
finishes the rotation. A rotation holds `master.key.lock` so that a process starting meanwhile
never mistakes the `.new` file of a running rotation for a leftover.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tracker.domain.errors import MasterKeyError
from tracker.persistence.db import Cursor, Database
from tracker.protection.keys import MasterKey, fsync_dir
from tracker.protection.keystore import _CHECK, KeyStore, database_has_keys, stored_check

log = logging.getLogger(__name__)

BATCH = 500

# progress(phase, done, total): phase is "re-wrapping", "verifying" or "checking".
Progress = Callable[[str, int, int], None]


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    pass


@dataclass(frozen=True)
class WrappedColumn:
    """A column whose values are wrapped by the master key, bound to their row's id."""

    table: str
    id_column: str
    column: str
    label: str
    aad: Callable[[str], str]


def wrapped_columns() -> list[WrappedColumn]:
    """Everything the master key wraps (besides the check value)."""
    from tracker.notifications.subscriptions import _aad as subscription_aad

    return [WrappedColumn("data_keys", "allegation_id", "wrapped", "data key of allegation",
                          str),
            WrappedColumn("notification_subscriptions", "id", "secret",
                          "webhook secret of subscription", subscription_aad)]


@dataclass
class Outcome:
    """What a rotation or a check found."""

    wrapped: dict[str, int] = field(default_factory=dict)  # label -> keys (re-)wrapped/checked
    erased: int = 0  # data keys destroyed by erasures (stay destroyed)
    failures: list[str] = field(default_factory=list)  # "<label> <id>" that did not open
    swept: int = 0  # keys found under the old key after the commit, re-wrapped
    old_key_file: Path | None = None
    new_key_file: Path | None = None

    @property
    def total(self) -> int:
        """Keys handled."""
        return sum(self.wrapped.values())


# ---- file names and the rotation lock ------------------------------------------------------

def pending_path(path: Path) -> Path:
    """Where a rotation puts the new key before its transaction commits."""
    return path.with_name(path.name + ".new")


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


@contextmanager
def rotation_lock(path: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the rotation lock of the key file `path`; yields False (not held) when another
    process holds it and `wait` is False."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


# ---- start-up --------------------------------------------------------------------------------

def open_keystore(db: Database, value: str | None, path: Path) -> KeyStore:
    """The key store with the verified master key (from TRACKER_MASTER_KEY or `path`),
    finishing a file rotation that was interrupted after its commit."""
    pending = pending_path(path)
    if not value and pending.exists():
        store = _resolve_pending(db, path, pending)
        if store is not None:
            return store
    master = MasterKey.load(value, path, create=not database_has_keys(db))
    store = KeyStore(db, master)
    store.check_master_key()
    return store


def _resolve_pending(db: Database, path: Path, pending: Path) -> KeyStore | None:
    with db.read() as cur:
        check = stored_check(cur)
    current = MasterKey.from_file(path) if path.exists() else None
    if check is None or (current is not None and current.opens(check)):
        # The database is under master.key: the .new file is unused — unless a rotation is
        # running right now (it holds the lock); then leave it alone.
        with rotation_lock(path, wait=False) as held:
            if held and pending.exists():
                pending.unlink()
                fsync_dir(path.parent)
                log.warning("removed %s, left by a master-key rotation that did not commit; "
                            "the database is still wrapped by %s", pending, path)
        return None
    new = MasterKey.from_file(pending)
    if not new.opens(check):
        raise MasterKeyError(
            f"Neither {path} nor {pending} is the master key of this database. Restore the key "
            "file from your backup (or set TRACKER_MASTER_KEY); the tracker refuses to start "
            "without it.")
    _promote(pending, path)
    log.warning("finished an interrupted master-key rotation: the database was already "
                "re-wrapped by %s, which is now %s (the old key is in %s.old-*)",
                pending, path, path.name)
    store = KeyStore(db, new)
    store.check_master_key()
    return store


def _promote(pending: Path, path: Path) -> None:
    """Rename the new key over master.key (another process may have done it already)."""
    with suppress(FileNotFoundError):
        os.replace(pending, path)
    fsync_dir(path.parent)


# ---- re-wrapping -----------------------------------------------------------------------------

def _rows(cur: Cursor, col: WrappedColumn) -> Iterator[list[tuple[str, bytes]]]:
    """The column's non-null values in pages, by id."""
    last = ""
    while True:
        rows = cur.execute(
            f"SELECT {col.id_column} AS id, {col.column} AS blob FROM {col.table}"
            f" WHERE {col.column} IS NOT NULL AND {col.id_column} > ?"
            f" ORDER BY {col.id_column} LIMIT {BATCH}", (last,)).fetchall()
        if not rows:
            return
        yield [(str(r["id"]), bytes(r["blob"])) for r in rows]
        last = str(rows[-1]["id"])


def _pages(cur: Cursor, columns: list[WrappedColumn], stage: str, progress: Progress,
           counts: dict[str, int] | None = None
           ) -> Iterator[tuple[WrappedColumn, list[tuple[str, bytes]]]]:
    """Every column's wrapped values, page by page, reporting `stage` progress after each
    page; `counts` (label -> values) is filled in as the pages go by."""
    total = sum(_count(cur, col) for col in columns)
    done = 0
    progress(stage, 0, total)
    for col in columns:
        if counts is not None:
            counts[col.label] = 0
        for page in _rows(cur, col):
            yield col, page
            done += len(page)
            if counts is not None:
                counts[col.label] += len(page)
            progress(stage, done, total)


def _count(cur: Cursor, col: WrappedColumn) -> int:
    return int(cur.scalar(f"SELECT COUNT(*) FROM {col.table}"
                          f" WHERE {col.column} IS NOT NULL"))


def _erased(cur: Cursor) -> int:
    return int(cur.scalar("SELECT COUNT(*) FROM data_keys WHERE wrapped IS NULL"))


def _lock_tables(cur: Cursor) -> None:
    if cur.dialect == "postgres":
        # Writers wait (reads go on) until the rotation commits; SHARE ROW EXCLUSIVE also
        # excludes a second rotation. Fail rather than wait for ever behind a running process.
        cur.execute("SET LOCAL lock_timeout = '30s'")
        cur.execute("LOCK TABLE meta, data_keys, notification_subscriptions"
                    " IN SHARE ROW EXCLUSIVE MODE")
    else:
        # Overwrite the freed bytes of the old wraps instead of leaving them in free pages.
        cur.execute("PRAGMA secure_delete = ON")


def _open(master: MasterKey, col: WrappedColumn, rid: str, blob: bytes) -> bytes | None:
    try:
        return master.unwrap(blob, col.aad(rid))
    except MasterKeyError:
        return None


def before_commit() -> None:
    """Called inside the rotation's transaction just before it commits (a seam for tests
    that simulate a crash at that moment)."""


def after_commit() -> None:
    """Called after the rotation's transaction committed, before master.key is replaced
    (a seam for tests that simulate a crash at that moment)."""


def rewrap(db: Database, old: MasterKey, new: MasterKey,
           progress: Progress = _no_progress) -> Outcome:
    """Re-wrap every wrapped secret from `old` to `new` in one transaction, verified before
    the commit; nothing changes unless all of it succeeds."""
    if old.same_as(new):
        raise MasterKeyError("The new master key is the same as the current one.")
    columns = wrapped_columns()
    outcome = Outcome()
    with db.tx() as cur:
        _lock_tables(cur)
        # A first write: on SQLite it takes the write lock for the whole rotation.
        cur.execute("UPDATE meta SET value = value WHERE name = ?", (_CHECK,))
        check = stored_check(cur)
        if check is None or not old.opens(check):
            raise MasterKeyError("The database is not wrapped by the current master key; "
                                 "run `tracker keys check`. Nothing was changed.")
        cur.execute("UPDATE meta SET value = ? WHERE name = ?", (new.check_value(), _CHECK))
        for col, page in _pages(cur, columns, "re-wrapping", progress, outcome.wrapped):
            updates = []
            for rid, blob in page:
                secret = _open(old, col, rid, blob)
                if secret is None:
                    raise MasterKeyError(
                        f"The {col.label} {rid} does not open with the current master key "
                        "(the key table was altered?); the rotation is cancelled and "
                        "nothing was changed. Run `tracker keys check`.")
                updates.append((new.wrap(secret, col.aad(rid)), rid))
            cur.executemany(f"UPDATE {col.table} SET {col.column} = ?"
                            f" WHERE {col.id_column} = ?", updates)
        # Verify what is stored now, before committing: every wrap opens with the new key,
        # the check value too, and no old wrap is left.
        verified: dict[str, int] = {}
        for col, page in _pages(cur, columns, "verifying", progress, verified):
            for rid, blob in page:
                if _open(new, col, rid, blob) is None:
                    raise MasterKeyError(
                        f"The re-wrapped {col.label} {rid} does not open with the new "
                        "master key; the rotation is cancelled and nothing was changed.")
        if verified != outcome.wrapped or not new.opens(stored_check(cur) or b""):
            raise MasterKeyError("The re-wrapped keys did not verify; the rotation is cancelled "
                                 "and nothing was changed.")
        outcome.erased = _erased(cur)
        before_commit()
    return outcome


def _committed(db: Database, old: MasterKey, new: MasterKey) -> bool | None:
    """After a failure: did the rotation commit (True), not (False), or unknown (None)?"""
    try:
        with db.read() as cur:
            check = stored_check(cur)
    except Exception:  # noqa: BLE001  # the database is unreachable: we cannot tell
        return None
    if check is not None and new.opens(check):
        return True
    if check is not None and old.opens(check):
        return False
    return None


def sweep(db: Database, old: MasterKey, new: MasterKey) -> int:
    """Re-wrap what a process that outlived the rotation wrapped with the old key after the
    commit (it is refused from then on, but one write may slip in); returns how many."""
    count = 0
    with db.tx() as cur:
        _lock_tables(cur)
        for col in wrapped_columns():
            for page in _rows(cur, col):
                updates = []
                for rid, blob in page:
                    if _open(new, col, rid, blob) is None:
                        secret = _open(old, col, rid, blob)
                        if secret is not None:
                            updates.append((new.wrap(secret, col.aad(rid)), rid))
                cur.executemany(f"UPDATE {col.table} SET {col.column} = ?"
                                f" WHERE {col.id_column} = ?", updates)
                count += len(updates)
    return count


def rotate(store: KeyStore, path: Path, new: MasterKey | None = None, *,
           from_environment: bool = False, new_key_file: Path | None = None,
           progress: Progress = _no_progress) -> Outcome:
    """Rotate the master key of `store`'s database.

    Key file (`from_environment` False): `path` (master.key) ends up holding the new key and
    `path.old-<time>` the old one. TRACKER_MASTER_KEY (`from_environment` True): the new key
    is written to `new_key_file` (unless it was given as `new`), and the operator puts it in
    the secret store; `path` is not touched.
    """
    db, old = store.db, store.loaded
    generated = new is None
    new = MasterKey.generate() if new is None else new
    if old.same_as(new):
        raise MasterKeyError("The new master key is the same as the current one.")
    if from_environment:
        return _rotate_environment(store, old, new, new_key_file if generated else None,
                                   progress)
    with rotation_lock(path, wait=False) as held:
        if not held:
            raise MasterKeyError(f"Another master-key rotation is running ({_lock_path(path)} "
                                 "is locked); wait for it to finish.")
        pending = pending_path(path)
        if pending.exists():
            raise MasterKeyError(
                f"{pending} exists, left by an interrupted rotation; start any tracker "
                "command once (it finishes or discards it), then rotate again.")
        outcome = Outcome(new_key_file=path)
        old_file = path.with_name(f"{path.name}.old-{_timestamp()}")
        while old_file.exists():  # two rotations in the same second
            old_file = old_file.with_name(old_file.name + "-1")
        old.write(old_file)
        new.write(pending)  # durable before anything is wrapped by it
        try:
            done = rewrap(db, old, new, progress)
        except BaseException:
            committed = _committed(db, old, new)
            if committed is False:  # the database is still under the old key
                pending.unlink()
                old_file.unlink()
                fsync_dir(path.parent)
            elif committed is None:
                log.error("the rotation failed and the database cannot tell whether it "
                          "committed: %s is kept; the next start-up uses whichever key opens "
                          "the database", pending)
            if committed is not True:
                raise
            done = Outcome()
        after_commit()
        _promote(pending, path)
        done.old_key_file, done.new_key_file = old_file, outcome.new_key_file
    return _finish(store, old, new, done)


def _rotate_environment(store: KeyStore, old: MasterKey, new: MasterKey, out: Path | None,
                        progress: Progress) -> Outcome:
    if out is not None:
        new.write(out)  # refuses to overwrite; durable before anything is wrapped by it
    try:
        done = rewrap(store.db, old, new, progress)
    except BaseException:
        committed = _committed(store.db, old, new)
        if committed is False and out is not None:
            out.unlink()
        if committed is not True:
            raise
        done = Outcome()
    after_commit()
    done.new_key_file = out
    return _finish(store, old, new, done)


def _finish(store: KeyStore, old: MasterKey, new: MasterKey, done: Outcome) -> Outcome:
    store.use(new)
    done.swept = sweep(store.db, old, new)
    if store.db.dialect == "sqlite":
        checkpoint_sqlite(store.db)
    return done


def checkpoint_sqlite(db: Database) -> None:
    """Best effort: copy the WAL into the database file and truncate it, so the pages with
    the old wraps (overwritten thanks to secure_delete) do not linger in the WAL."""
    name = getattr(db.datastore, "db_name", "")
    if not name or name.startswith(":memory:") or "mode=memory" in name:
        return
    try:
        conn = sqlite3.connect(name, timeout=5)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error as e:
        log.warning("could not checkpoint the SQLite WAL after the rotation: %s", e)


# ---- checks ----------------------------------------------------------------------------------

def check(store: KeyStore, progress: Progress = _no_progress) -> Outcome:
    """Open every wrapped secret with the current master key; list those that do not."""
    outcome = Outcome()
    with store.db.read() as cur:
        value = stored_check(cur)
        if value is not None and not store.loaded.opens(value):
            outcome.failures.append("master-key check value")
        for col, page in _pages(cur, wrapped_columns(), "checking", progress,
                                outcome.wrapped):
            for rid, blob in page:
                if _open(store.loaded, col, rid, blob) is None:
                    outcome.failures.append(f"{col.label} {rid}")
        outcome.erased = _erased(cur)
    return outcome
