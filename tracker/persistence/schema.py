"""The tracker's own tables beside the event store's: audit tree, keys, heads, users."""

from __future__ import annotations

from tracker.persistence import pg_place
from tracker.persistence.db import Cursor, Dialect

_BLOB = {"sqlite": "BLOB", "postgres": "BYTEA"}
_INT = {"sqlite": "INTEGER", "postgres": "BIGINT"}

TABLES = """
CREATE TABLE IF NOT EXISTS audit_leaves (
  position {INT} PRIMARY KEY,
  notification_id {INT} NOT NULL,
  allegation_id TEXT NOT NULL,
  version {INT} NOT NULL,
  topic TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  payload_sha256 {BLOB} NOT NULL,
  leaf_hash {BLOB} NOT NULL,
  nodes {BLOB} NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_leaves (
  notification_id {INT} PRIMARY KEY,
  allegation_id TEXT NOT NULL,
  version {INT} NOT NULL,
  topic TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  payload_sha256 {BLOB} NOT NULL
);
CREATE TABLE IF NOT EXISTS data_keys (
  allegation_id TEXT PRIMARY KEY,
  wrapped {BLOB},
  created_at TEXT NOT NULL,
  erased_at TEXT,
  erase_reason TEXT
);
CREATE TABLE IF NOT EXISTS tree_heads (
  tree_size {INT} PRIMARY KEY,
  root_hash {BLOB} NOT NULL,
  origin TEXT NOT NULL,
  timestamp TEXT NOT NULL,
  signature {BLOB} NOT NULL,
  key_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  name TEXT PRIMARY KEY,
  value {BLOB} NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  organisation TEXT NOT NULL,
  created_at TEXT NOT NULL,
  disabled_at TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  user_id TEXT NOT NULL REFERENCES users (id),
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
"""


# PostgreSQL writers find their positions by notification id after the sequencer ran, and
# readers an allegation's leaves by its id. (SQLite finds both through the event store's
# primary key: there a leaf's position is its event's rowid - 1, see `log.leaves_of`. An
# index keyed by a random id would cost every append a write at a random page.)
POSTGRES_ONLY = """
CREATE INDEX IF NOT EXISTS audit_leaves_notification ON audit_leaves (notification_id);
CREATE UNIQUE INDEX IF NOT EXISTS audit_leaves_allegation ON audit_leaves (allegation_id, version)
"""


# PostgreSQL: refuses (rolls back) the transaction it runs in, with the message given; lets
# a pipelined write check a condition in the database without a round trip of its own.
POSTGRES_FUNCTIONS = [
    "CREATE OR REPLACE FUNCTION tracker_refuse(message text) RETURNS boolean LANGUAGE plpgsql"
    " AS $$ BEGIN RAISE EXCEPTION USING MESSAGE = message, ERRCODE = 'P0001'; END $$",
    *pg_place.FUNCTIONS,  # the sequencer's round (tracker.persistence.sequencer)
]


def statements(dialect: Dialect, ddl: str = TABLES) -> list[str]:
    """The DDL statements for a dialect."""
    if dialect == "postgres" and ddl is TABLES:
        ddl = TABLES + ";" + POSTGRES_ONLY
    text = ddl.format(INT=_INT[dialect], BLOB=_BLOB[dialect])
    return [s.strip() for s in text.split(";") if s.strip()]


def create(cur: Cursor, ddl: str = TABLES) -> None:
    """Create the tables if missing (idempotent); bring an older layout up to date."""
    if ddl is TABLES and has_table(cur, "audit_leaves") \
            and not has_column(cur, "audit_leaves", "nodes"):
        cur.execute(f"ALTER TABLE audit_leaves ADD COLUMN nodes {_BLOB[cur.dialect]}")
    for statement in statements(cur.dialect, ddl):
        cur.execute(statement)
    if ddl is TABLES and cur.dialect == "postgres":
        for statement in POSTGRES_FUNCTIONS:
            cur.raw.execute(statement)  # not through `?` marks: the body is literal
    if ddl is TABLES and cur.dialect == "sqlite":
        # Earlier versions indexed SQLite's leaves by allegation too (see POSTGRES_ONLY).
        cur.execute("DROP INDEX IF EXISTS audit_leaves_allegation")
    if ddl is TABLES and has_table(cur, "merkle_nodes"):
        from tracker.persistence.migrate import tree_nodes_into_leaves

        tree_nodes_into_leaves(cur)


def has_table(cur: Cursor, name: str) -> bool:
    """Whether the table exists."""
    if cur.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = ("SELECT 1 FROM information_schema.tables WHERE table_name = ?"
               " AND table_schema = current_schema()")
    return cur.scalar(sql, (name,)) is not None


def has_column(cur: Cursor, table: str, column: str) -> bool:
    """Whether the table has the column."""
    if cur.dialect == "sqlite":
        return any(r["name"] == column for r in cur.execute(f"PRAGMA table_info({table})")
                   .fetchall())
    return cur.scalar("SELECT 1 FROM information_schema.columns WHERE table_name = ?"
                      " AND column_name = ? AND table_schema = current_schema()",
                      (table, column)) is not None
