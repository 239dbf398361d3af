"""The tracker's own tables beside the event store's: audit tree, keys, heads, users."""

from __future__ import annotations

from tracker.persistence.db import Cursor, Dialect

_BLOB = {"sqlite": "BLOB", "postgres": "BYTEA"}
_INT = {"sqlite": "INTEGER", "postgres": "BIGINT"}
# SQLite: a table keyed by its primary key alone is one B-tree instead of a table and an index.
_WITHOUT_ROWID = {"sqlite": " WITHOUT ROWID", "postgres": ""}

TABLES = """
CREATE TABLE IF NOT EXISTS audit_leaves (
  position {INT} PRIMARY KEY,
  notification_id {INT} NOT NULL,
  allegation_id TEXT NOT NULL,
  version {INT} NOT NULL,
  topic TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  payload_sha256 {BLOB} NOT NULL,
  leaf_hash {BLOB} NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS audit_leaves_allegation ON audit_leaves (allegation_id, version);
CREATE TABLE IF NOT EXISTS pending_leaves (
  notification_id {INT} PRIMARY KEY,
  allegation_id TEXT NOT NULL,
  version {INT} NOT NULL,
  topic TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  payload_sha256 {BLOB} NOT NULL
);
CREATE TABLE IF NOT EXISTS merkle_nodes (
  level {INT} NOT NULL,
  idx {INT} NOT NULL,
  hash {BLOB} NOT NULL,
  PRIMARY KEY (level, idx)
){WITHOUT_ROWID};
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


# PostgreSQL writers find their positions by notification id after the sequencer ran.
POSTGRES_ONLY = """
CREATE INDEX IF NOT EXISTS audit_leaves_notification ON audit_leaves (notification_id)
"""


def statements(dialect: Dialect, ddl: str = TABLES) -> list[str]:
    """The DDL statements for a dialect."""
    if dialect == "postgres" and ddl is TABLES:
        ddl = TABLES + ";" + POSTGRES_ONLY
    text = ddl.format(INT=_INT[dialect], BLOB=_BLOB[dialect],
                      WITHOUT_ROWID=_WITHOUT_ROWID[dialect])
    return [s.strip() for s in text.split(";") if s.strip()]


def create(cur: Cursor, ddl: str = TABLES) -> None:
    """Create the tables if missing (idempotent)."""
    for statement in statements(cur.dialect, ddl):
        cur.execute(statement)
