"""The views' tables: one row per allegation, side tables for GROUP BY, text search, tracking.

The tables and their secondary indexes are created apart, so that a full rebuild can fill
the tables first and then build every index (and the full-text index) in one pass, which is
several times faster than keeping them up to date row by row. The views are *finished* when
the last index, `allegation_list_submitted`, exists: it is created by `finish`, in the same
transaction as every other index and the full-text index, and dropped by every bulk page
(`start_bulk`), so its presence means that every index covers every row.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from eventsourcing.persistence import OperationalError, PersistenceError

from tracker.persistence.db import Cursor, Database, Dialect, schema_lock

PROJECTION = "allegations"
# Bump when the view tables change: the projector then drops and rebuilds them from the log.
SCHEMA_VERSION = 2

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
# The projector finds a row by `seq`, through the allegation's first audit leaf.
TABLES = """
CREATE TABLE IF NOT EXISTS allegation_list (
  seq {INT} PRIMARY KEY,
  id TEXT{C} NOT NULL,
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
CREATE TABLE IF NOT EXISTS allegation_categories (
  seq {INT} NOT NULL,
  category TEXT{C} NOT NULL,
  PRIMARY KEY (seq, category)
){WITHOUT_ROWID};
CREATE TABLE IF NOT EXISTS allegation_perpetrators (
  seq {INT} NOT NULL,
  n {INT} NOT NULL,
  name TEXT{C} NOT NULL,
  name_key TEXT{C} NOT NULL,
  type TEXT{C} NOT NULL,
  PRIMARY KEY (seq, n)
){WITHOUT_ROWID}
"""

# Every list filter that can be served by an index walks it in the list's order (newest
# first: submitted_at DESC, id DESC), so a page of 50 reads about 50 index entries however
# many rows the views hold (`admin1` narrows `country`'s; categories and perpetrators are
# checked row by row along that order). A reviewer's queue walks its own index.
INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS allegation_list_id ON allegation_list (id);
CREATE INDEX IF NOT EXISTS allegation_list_org ON allegation_list (organisation, submitted_at, id);
CREATE INDEX IF NOT EXISTS allegation_list_status ON allegation_list (status, submitted_at, id);
CREATE INDEX IF NOT EXISTS allegation_list_country
  ON allegation_list (country, submitted_at, id);
CREATE INDEX IF NOT EXISTS allegation_list_assignee
  ON allegation_list (assignee, submitted_at, id);
CREATE INDEX IF NOT EXISTS allegation_list_queue
  ON allegation_list (assignee, status, updated_at, id);
CREATE INDEX IF NOT EXISTS allegation_list_incident ON allegation_list (incident_date);
CREATE INDEX IF NOT EXISTS allegation_categories_code ON allegation_categories (category, seq);
CREATE INDEX IF NOT EXISTS allegation_perpetrators_name
  ON allegation_perpetrators (name_key, seq);
CREATE INDEX IF NOT EXISTS allegation_perpetrators_type ON allegation_perpetrators (type, seq)
"""
# Created last: its presence says that the views are finished (see the module's docstring).
MARKER = "allegation_list_submitted"
MARKER_DDL = f"CREATE INDEX IF NOT EXISTS {MARKER} ON allegation_list (submitted_at, id)"

# SQLite: the searchable text of each allegation in `allegation_docs`, indexed by an FTS5
# table that reads its content from there (external content), so that the whole index can
# be rebuilt from the documents in one pass. The tokenizer folds case and removes accents;
# no column sizes are kept (they serve ranking, which the list does not do).
# PostgreSQL: a tsvector column of allegation_list with a GIN index.
SEARCH_TABLES = {
    "sqlite": ["CREATE TABLE IF NOT EXISTS allegation_docs ("
               "seq INTEGER PRIMARY KEY, body TEXT NOT NULL)",
               "CREATE VIRTUAL TABLE IF NOT EXISTS allegation_search USING fts5("
               "body, content = 'allegation_docs', content_rowid = 'seq', columnsize = 0,"
               " tokenize = 'unicode61 remove_diacritics 2')"],
    "postgres": [],
}
SEARCH_INDEXES = {
    "sqlite": [],
    "postgres": ["CREATE INDEX IF NOT EXISTS allegation_list_search"
                 " ON allegation_list USING GIN (search)"],
}

VIEW_TABLES = ("allegation_list", "allegation_categories", "allegation_perpetrators")
_SEARCH_TABLES = {"sqlite": ("allegation_search", "allegation_docs"), "postgres": ()}
_ATTEMPTS = 20


def _format(ddl: str, dialect: Dialect) -> list[str]:
    pg = dialect == "postgres"
    text = ddl.format(INT="BIGINT" if pg else "INTEGER", C=' COLLATE "C"' if pg else "",
                      SEARCH=",\n  search tsvector NOT NULL" if pg else "",
                      WITHOUT_ROWID="" if pg else " WITHOUT ROWID")
    return [s.strip() for s in text.split(";") if s.strip()]


def table_statements(dialect: Dialect) -> list[str]:
    """The DDL of the view tables, without their secondary indexes."""
    return _format(TABLES, dialect) + SEARCH_TABLES[dialect]


def index_statements(dialect: Dialect) -> list[str]:
    """The DDL of the secondary indexes, the marker last."""
    return _format(INDEXES, dialect) + SEARCH_INDEXES[dialect] + [MARKER_DDL]


def view_statements(dialect: Dialect) -> list[str]:
    """The DDL of the view tables and indexes (without tracking) for a dialect."""
    return table_statements(dialect) + index_statements(dialect)


def index_names(dialect: Dialect) -> list[str]:
    """The names of the secondary indexes, the marker last."""
    return [s.split(" IF NOT EXISTS ", 1)[1].split()[0] for s in index_statements(dialect)]


def drop_indexes(cur: Cursor) -> None:
    """Drop every secondary index (the views become unfinished: `finish` builds them again)."""
    for name in reversed(index_names(cur.dialect)):
        cur.execute(f"DROP INDEX IF EXISTS {name}")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def is_finished(cur: Cursor) -> bool:
    """True when every index covers every row (the marker index exists)."""
    if cur.dialect == "sqlite":
        found = cur.scalar("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                           (MARKER,))
    else:
        found = cur.scalar("SELECT to_regclass(?)", (MARKER,))
    return found is not None


def start_bulk(cur: Cursor) -> None:
    """Mark the views unfinished: this transaction writes rows without the full-text index."""
    cur.execute(f"DROP INDEX IF EXISTS {MARKER}")


def lock_tracking(cur: Cursor) -> None:
    """Take the tracking row's lock, as every page of a projector does first (on SQLite, the
    write lock): whoever changes the views' indexes then queues behind the same lock."""
    cur.execute("UPDATE projection_tracking SET updated_at = updated_at WHERE name = ?",
                (PROJECTION,))


def finish(cur: Cursor) -> None:
    """Build what bulk pages left out: the indexes and the full-text index, in one pass.

    Correct at any time (it indexes whatever the tables hold), and cheap when finished.
    Two at once wait for each other on the tracking row rather than deadlock.
    """
    if is_finished(cur):
        return
    lock_tracking(cur)
    if is_finished(cur):  # another transaction finished them while this one waited
        return
    statements = index_statements(cur.dialect)
    for statement in statements[:-1]:
        cur.execute(statement)
    if cur.dialect == "sqlite":
        cur.execute("INSERT INTO allegation_search (allegation_search) VALUES ('rebuild')")
    else:
        # The planner's statistics now, not when autovacuum comes by: without them it
        # misjudges the side tables' joins of a freshly filled view.
        for table in VIEW_TABLES:
            cur.execute(f"ANALYZE {table}")
    cur.execute(statements[-1])


def complete(db: Database) -> None:
    """`finish` in a transaction of its own (the tracking row locked first), if needed."""
    with db.read() as cur:
        if is_finished(cur):
            return
    with db.tx() as cur:
        lock_tracking(cur)
        finish(cur)


def create_views(cur: Cursor) -> None:
    """Create the view tables if missing and finish them (idempotent)."""
    for statement in table_statements(cur.dialect):
        cur.execute(statement)
    finish(cur)


def drop_views(cur: Cursor) -> None:
    """Drop the view tables and reset the tracked position, in the caller's transaction.

    The new tables are empty and unfinished: the projector fills them, then builds the
    indexes (`finish`).
    """
    # The tracking row first, as a projector's page takes its locks (row, then tables):
    # in the other order the two could deadlock on PostgreSQL.
    cur.execute("UPDATE projection_tracking SET position = -1, schema_version = ?,"
                " updated_at = ? WHERE name = ?", (SCHEMA_VERSION, _now(), PROJECTION))
    for table in (*VIEW_TABLES, *_SEARCH_TABLES[cur.dialect]):
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in table_statements(cur.dialect):
        cur.execute(statement)


def _up_to_date(db: Database) -> bool:
    """True when the tracking row and view tables exist at this schema version (read only)."""
    try:
        with db.read() as cur:
            stored = cur.scalar("SELECT schema_version FROM projection_tracking WHERE name = ?",
                                (PROJECTION,))
            if stored is None or int(stored) != SCHEMA_VERSION:
                return False
            for table in (*VIEW_TABLES, *_SEARCH_TABLES[db.dialect]):
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
