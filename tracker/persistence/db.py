"""A thin, dialect-neutral SQL access to the same database the event store uses."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

Dialect = Literal["sqlite", "postgres"]


class Cursor:
    """Wraps a DB-API cursor: `?` placeholders everywhere, rows as dicts, bytes as bytes."""

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect = dialect

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Cursor:
        """Run one statement."""
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        self.raw.execute(sql, tuple(params))
        return self

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run one statement for many parameter rows."""
        if not rows:
            return
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        self.raw.executemany(sql, rows)

    def fetchone(self) -> dict[str, Any] | None:
        """The next row, or None."""
        row = self.raw.fetchone()
        return None if row is None else _as_dict(row)

    def fetchall(self) -> list[dict[str, Any]]:
        """All remaining rows."""
        return [_as_dict(r) for r in self.raw.fetchall()]

    @property
    def rowcount(self) -> int:
        """Rows changed by the last statement."""
        return int(getattr(self.raw, "sqlite_cursor", self.raw).rowcount)

    def scalar(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.execute(sql, params).raw.fetchone()
        if row is None:
            return None
        value = row[0] if not isinstance(row, dict) else next(iter(row.values()))
        return bytes(value) if isinstance(value, memoryview) else value


def _as_dict(row: Any) -> dict[str, Any]:
    items = row.items() if isinstance(row, dict) else zip(row.keys(), tuple(row), strict=True)
    return {k: bytes(v) if isinstance(v, memoryview) else v for k, v in items}


class Database:
    """Transactions on the event store's own datastore (SQLite file or PostgreSQL)."""

    def __init__(self, datastore: Any, dialect: Dialect, events_table: str = "stored_events"
                 ) -> None:
        self.datastore = datastore
        self.dialect: Dialect = dialect
        # The event store's table and the column that is its notification id.
        self.events_table = events_table
        self.events_id = "rowid" if dialect == "sqlite" else "notification_id"

    @contextmanager
    def tx(self, *, commit: bool = True) -> Iterator[Cursor]:
        """A transaction; committed on success when `commit`, else rolled back."""
        if self.dialect == "sqlite":
            with self.datastore.transaction(commit=commit) as c:
                yield Cursor(c, "sqlite")
            return
        with self.datastore.get_connection() as conn:
            tx = conn.transaction(force_rollback=not commit)
            with tx, conn.cursor() as c:
                yield Cursor(c, "postgres")

    def read(self) -> Any:
        """A read-only transaction (rolled back)."""
        return self.tx(commit=False)


def meta_secret(db: Database, name: str) -> bytes:
    """A random 32-byte secret stored in `meta`, created on first use, shared by all processes."""
    with db.tx() as cur:
        cur.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                    (name, secrets.token_bytes(32)))
        value = cur.scalar("SELECT value FROM meta WHERE name = ?", (name,))
    return bytes(value)


_SCHEMA_LOCK = 7_340_112_001  # arbitrary advisory-lock id for schema creation


@contextmanager
def schema_lock(db: Database) -> Iterator[None]:
    """Serialise schema creation between processes starting at once (PostgreSQL)."""
    if db.dialect != "postgres":
        yield
        return
    with db.datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
