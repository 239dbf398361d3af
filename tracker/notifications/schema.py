"""The notification tables: subscriptions, deliveries, and the relay's position and facts."""

from __future__ import annotations

from tracker.persistence import schema
from tracker.persistence.db import Database, schema_lock

# Dialect-neutral DDL ({INT}/{BLOB} are filled in by tracker.persistence.schema.statements).
DDL = """
CREATE TABLE IF NOT EXISTS notification_subscriptions (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  channel TEXT NOT NULL,
  target TEXT NOT NULL,
  secret {BLOB},
  filters TEXT NOT NULL,
  created_at TEXT NOT NULL,
  created_position {INT} NOT NULL,
  deleted_at TEXT,
  deleted_position {INT}
);
CREATE INDEX IF NOT EXISTS notification_subscriptions_owner
  ON notification_subscriptions (owner);
CREATE TABLE IF NOT EXISTS notification_deliveries (
  id TEXT PRIMARY KEY,
  subscription_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  channel TEXT NOT NULL,
  position {INT} NOT NULL,
  allegation_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts {INT} NOT NULL DEFAULT 0,
  last_error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  last_attempt_at TEXT,
  delivered_at TEXT,
  failed_at TEXT,
  lease_until TEXT,
  drive {INT} NOT NULL DEFAULT 0,
  enqueued_drive {INT} NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS notification_deliveries_owner
  ON notification_deliveries (owner, position);
CREATE INDEX IF NOT EXISTS notification_deliveries_state
  ON notification_deliveries (state, updated_at);
CREATE TABLE IF NOT EXISTS notification_relay (
  name TEXT PRIMARY KEY,
  position {INT} NOT NULL
);
CREATE TABLE IF NOT EXISTS notification_facts (
  allegation_id TEXT PRIMARY KEY,
  organisation TEXT NOT NULL,
  categories TEXT NOT NULL,
  country TEXT,
  assignee TEXT,
  status TEXT NOT NULL,
  position {INT} NOT NULL
);
"""


def ensure(db: Database) -> None:
    """Create the tables once per process (idempotent; serialised between processes)."""
    if getattr(db, "_notification_tables", False):
        return
    with schema_lock(db), db.tx() as cur:
        schema.create(cur, DDL)
    db._notification_tables = True  # type: ignore[attr-defined]

