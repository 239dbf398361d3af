"""The views' tables: one row per allegation, side tables for GROUP BY, text search, tracking."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from eventsourcing.persistence import OperationalError, PersistenceError

from tracker.persistence.db import Cursor, Database, Dialect, schema_lock

PROJECTION = "allegations"
# Bump when the view tables change: the projector then drops and rebuilds them from the log.
SCHEMA_VERSION = 1

TRACKING = """
CREATE TABLE IF NOT EXISTS projection_tracking (
  name TEXT PRIMARY KEY,
  position {INT} NOT NULL,
  schema_version {INT} NOT NULL,
  updated_at TEXT NOT NULL
)
"""

# `seq` is the log position of the allegation's submission: unique and stable, the integer
# key that side tables and the SQLite full-text table join on (in SQLite, the rowid itself).
# Text columns compare bytewise (PostgreSQL: COLLATE "C"), as ISO times and ids need.
VIEWS = """
CREATE TABLE IF NOT EXISTS allegation_list (
  seq {INT} PRIMARY KEY,
  id TEXT{C} NOT NULL UNIQUE,
  organisation TEXT{C} NOT NULL,
  status TEXT{C} NOT NULL,
  summary TEXT NOT NULL,
  categories TEXT NOT NULL,
  perpetrators TEXT NOT NULL,
  country TEXT{C},
  admin1 TEXT{C},
  place TEXT,
  incident_date TEXT{C},
  incident_date_to TEXT,
  incident_precision TEXT,
  incident_month TEXT{C},
  victims {INT},
  children {INT},
  assignee TEXT{C},
  duplicate_of TEXT,
  erased {INT} NOT NULL,
  sources {INT} NOT NULL,
  information {INT} NOT NULL,
  evidence {INT} NOT NULL,
  comments {INT} NOT NULL,
  version {INT} NOT NULL,
  submitted_at TEXT{C} NOT NULL,
  updated_at TEXT{C} NOT NULL,
  position {INT} NOT NULL{SEARCH}
);
CREATE INDEX IF NOT EXISTS allegation_list_submitted ON allegation_list (submitted_at, id);
CREATE INDEX IF NOT EXISTS allegation_list_org ON allegation_list (organisation, submitted_at);
CREATE INDEX IF NOT EXISTS allegation_list_status ON allegation_list (status, submitted_at);
CREATE INDEX IF NOT EXISTS allegation_list_place ON allegation_list (country, admin1);
CREATE INDEX IF NOT EXISTS allegation_list_assignee ON allegation_list (assignee, updated_at);
CREATE INDEX IF NOT EXISTS allegation_list_incident ON allegation_list (incident_date);
CREATE TABLE IF NOT EXISTS allegation_categories (
  seq {INT} NOT NULL,
  category TEXT{C} NOT NULL,
  PRIMARY KEY (seq, category)
);
CREATE INDEX IF NOT EXISTS allegation_categories_code
  ON allegation_categories (category, seq);
CREATE TABLE IF NOT EXISTS allegation_perpetrators (
  seq {INT} NOT NULL,
  n {INT} NOT NULL,
  name TEXT{C} NOT NULL,
  name_key TEXT{C} NOT NULL,
  type TEXT{C} NOT NULL,
  PRIMARY KEY (seq, n)
);
CREATE INDEX IF NOT EXISTS allegation_perpetrators_name
  ON allegation_perpetrators (name_key, seq);
CREATE INDEX IF NOT EXISTS allegation_perpetrators_type
  ON allegation_perpetrators (type, seq)
"""

SEARCH = {
    "sqlite": ["CREATE VIRTUAL TABLE IF NOT EXISTS allegation_search USING fts5("
               "body, tokenize = 'unicode61 remove_diacritics 2')"],
    "postgres": ["CREATE INDEX IF NOT EXISTS allegation_list_search"
                 " ON allegation_list USING GIN (search)"],
}

VIEW_TABLES = ("allegation_list", "allegation_categories", "allegation_perpetrators")
_ATTEMPTS = 20


def _format(ddl: str, dialect: Dialect) -> list[str]:
    pg = dialect == "postgres"
    text = ddl.format(INT="BIGINT" if pg else "INTEGER", C=' COLLATE "C"' if pg else "",
                      SEARCH=",\n  search tsvector NOT NULL" if pg else "")
    return [s.strip() for s in text.split(";") if s.strip()]


def view_statements(dialect: Dialect) -> list[str]:
    """The DDL of the view tables (without tracking) for a dialect."""
    return _format(VIEWS, dialect) + SEARCH[dialect]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def create_views(cur: Cursor) -> None:
    """Create the view tables if missing (idempotent)."""
    for statement in view_statements(cur.dialect):
        cur.execute(statement)


def drop_views(cur: Cursor) -> None:
    """Drop the view tables and reset the tracked position, in the caller's transaction."""
    tables = VIEW_TABLES + (("allegation_search",) if cur.dialect == "sqlite" else ())
    for table in tables:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    create_views(cur)
    cur.execute("UPDATE projection_tracking SET position = -1, schema_version = ?,"
                " updated_at = ? WHERE name = ?", (SCHEMA_VERSION, _now(), PROJECTION))


def _up_to_date(db: Database) -> bool:
    """True when the tracking row and view tables exist at this schema version (read only)."""
    try:
        with db.read() as cur:
            stored = cur.scalar("SELECT schema_version FROM projection_tracking WHERE name = ?",
                                (PROJECTION,))
            if stored is None or int(stored) != SCHEMA_VERSION:
                return False
            for table in (*VIEW_TABLES, *(("allegation_search",) if db.dialect == "sqlite"
                                           else ())):
                cur.scalar(f"SELECT 1 FROM {table} WHERE 1 = 0")
    except PersistenceError:
        return False
    return True


def _create(db: Database) -> None:
    with schema_lock(db), db.tx() as cur:
        for statement in _format(TRACKING, cur.dialect):
            cur.execute(statement)
        cur.execute("INSERT INTO projection_tracking (name, position, schema_version, updated_at)"
                    " VALUES (?, -1, ?, ?) ON CONFLICT (name) DO NOTHING",
                    (PROJECTION, SCHEMA_VERSION, _now()))
        stored = cur.scalar("SELECT schema_version FROM projection_tracking WHERE name = ?",
                            (PROJECTION,))
        if int(stored) != SCHEMA_VERSION:
            drop_views(cur)  # the projector refills them from position 0
        else:
            create_views(cur)


def ensure(db: Database) -> None:
    """Create the views and their tracking row; drop and reset views of an older schema."""
    if _up_to_date(db):
        return
    for attempt in range(_ATTEMPTS):
        try:
            _create(db)
            return
        except OperationalError:
            # SQLite refuses to upgrade a read to a write after another process wrote.
            if db.dialect != "sqlite" or attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.05)
