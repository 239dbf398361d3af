"""Helpers and fixtures for the projection tests (import them explicitly).

`expected_row` folds a view row from the aggregate itself, independently of the projector,
so comparing the two checks the projector's handlers against the domain's own fold.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPORT, User
from tracker.bootstrap import Tracker
from tracker.config import Config
from tracker.domain.allegation import Allegation
from tracker.domain.values import Actor, Provenance
from tracker.projections import Projector, ensure_schema
from tracker.projections.schema import VIEW_TABLES, is_finished


def project(services: Tracker, batch_size: int = 500) -> int:
    """Bring the views up to date; the number of events applied."""
    return Projector(services.app, batch_size).catch_up()


def view_position(services: Tracker) -> int:
    """The tracked position of the views (creating them if no projector has yet)."""
    ensure_schema(services.app.db)
    with services.app.db.read() as cur:
        return int(cur.scalar("SELECT position FROM projection_tracking WHERE name = ?",
                              ("allegations",)))


def dump_views(services: Tracker) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every view table and the tracked position, in a stable order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    db = services.app.db
    with db.read() as cur:
        for table in VIEW_TABLES:
            cols = [c for c in _columns(cur, table) if c != "search"]
            rows = cur.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            out[table] = sorted(tuple(r[c] for c in cols) for r in rows)
        if db.dialect == "sqlite":
            sql = "SELECT rowid AS seq, body AS doc FROM allegation_search"
        else:
            sql = "SELECT seq, search::text AS doc FROM allegation_list"
        out["search"] = sorted((r["seq"], r["doc"]) for r in cur.execute(sql).fetchall())
        out["position"] = [(view_position(services),)]
    if views_finished(services):
        check_search_index(services)
    return out


def views_finished(services: Tracker) -> bool:
    """Whether every index of the views covers every row (not left half-built by a rebuild)."""
    with services.app.db.read() as cur:
        return is_finished(cur)


def check_search_index(services: Tracker) -> None:
    """Fail unless SQLite's full-text index holds exactly the stored documents (FTS5's own
    check against its content table); PostgreSQL's tsvector is a column of each row."""
    if services.app.db.dialect != "sqlite":
        return
    with services.app.db.read() as cur:
        cur.execute("INSERT INTO allegation_search (allegation_search, rank)"
                    " VALUES ('integrity-check', 1)")


def _columns(cur: Any, table: str) -> list[str]:
    if cur.dialect == "sqlite":
        return [r["name"] for r in cur.execute(f"PRAGMA table_info({table})").fetchall()]
    rows = cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?"
                       " ORDER BY ordinal_position", (table,)).fetchall()
    return [r["column_name"] for r in rows]


def view_rows(services: Tracker) -> dict[str, dict[str, Any]]:
    """The list view's rows by allegation id."""
    with services.app.db.read() as cur:
        rows = cur.execute("SELECT * FROM allegation_list").fetchall()
    return {r["id"]: {k: v for k, v in r.items() if k != "search"} for r in rows}


def leaf_positions(services: Tracker) -> dict[tuple[str, int], int]:
    """(allegation id, version) -> log position."""
    with services.app.db.read() as cur:
        rows = cur.execute("SELECT allegation_id, version, position FROM audit_leaves").fetchall()
    return {(r["allegation_id"], r["version"]): r["position"] for r in rows}


def expected_row(a: Allegation, positions: dict[tuple[str, int], int]) -> dict[str, Any]:
    """The view row the aggregate's current state implies."""
    aid = str(a.id)
    inc = a.incident
    loc = inc.get("location") or {}
    if inc.get("date"):
        date, date_to, precision = inc["date"], None, inc["date_precision"]
    else:
        date, date_to, precision = inc["date_from"], inc["date_to"], "range"
    victims = a.victims or {}
    return {
        "id": aid, "seq": positions[(aid, 1)], "organisation": a.organisation,
        "status": a.status, "summary": a.summary,
        "categories": json.dumps(a.categories, ensure_ascii=False, separators=(",", ":")),
        "perpetrators": json.dumps([{"name": p["name"], "type": p["type"]}
                                    for p in a.alleged_perpetrators],
                                   ensure_ascii=False, separators=(",", ":")),
        "country": loc.get("country"), "admin1": loc.get("admin1"), "place": loc.get("place"),
        "incident_date": date, "incident_date_to": date_to, "incident_precision": precision,
        "incident_month": None if precision == "year" else date[:7],
        "victims": victims.get("count"), "children": victims.get("children"),
        "assignee": a.assignee, "duplicate_of": a.duplicate_of, "erased": int(a.erased),
        "sources": len(a.sources), "information": _count(a, "information"),
        "evidence": _count(a, "evidence"), "comments": _count(a, "comments"),
        "version": a.version,
        "submitted_at": a.created_on.isoformat(), "updated_at": a.modified_on.isoformat(),
        "position": positions[(aid, a.version)],
    }


def _count(a: Allegation, name: str) -> int:
    """How many comments (information, evidence) the aggregate holds: a count of its own
    (`comments_total`), or, in states that keep the entries, their number."""
    total = getattr(a, f"{name}_total", None)
    return len(getattr(a, name)) if total is None else int(total)


def all_allegations(services: Tracker) -> list[Allegation]:
    """Every allegation in the store, from its events."""
    with services.app.db.read() as cur:
        ids = [r["allegation_id"] for r in cur.execute(
            "SELECT DISTINCT allegation_id FROM audit_leaves").fetchall()]
    return [services.app.repository.get(uuid.UUID(i)) for i in ids]


def report(**changes: Any) -> dict[str, Any]:
    """A valid submission with some fields replaced (`location` merges into the incident's)."""
    body = copy.deepcopy(REPORT)
    location = changes.pop("location", None)
    incident = changes.pop("incident", None)
    if incident is not None:
        body["incident"] = {**incident, "location": body["incident"]["location"]}
    if location is not None:
        body["incident"]["location"] = {**body["incident"]["location"], **location}
    body.update(changes)
    return body


def bulk_load(services: Tracker, allegations: int, updates_each: int = 2,
              page: int = 200) -> int:
    """Write a synthetic log fast (many events per transaction); the number of events."""
    prov = Provenance("bulk", "monitor", "org-bulk", "bulk")
    reviewer = Provenance("bulk-reviewer", "reviewer", "un", "bulk")
    events = 0
    for start in range(0, allegations, page):
        batch = []
        for n in range(start, min(start + page, allegations)):
            body = report(summary=f"synthetic case {n}", location={"admin1": f"Region {n % 7}"})
            body.pop("protected")
            a = Allegation.submit(uuid.uuid4(), body, None, "bulk", prov)
            for k in range(updates_each):
                if k % 2 == 0:
                    a.comment(f"note {k}", reviewer)
                else:
                    a.assign(f"reviewer-{n % 3}", reviewer)
            batch.append(a)
            events += 1 + updates_each
        services.app.save(*batch)
    return events


@dataclass
class Cast:
    """The people of a story: two monitors of different organisations, reviewers, others."""

    monitor_a: User
    monitor_b: User
    reviewer: User
    reviewer2: User
    auditor: User
    admin: User

    def actor(self, name: str) -> Actor:
        """The actor of a member of the cast."""
        user: User = getattr(self, name)
        return user.actor


def make_cast(make_user: Any) -> Cast:
    """Users of every role (call it from a fixture: once per test, not per example)."""
    return Cast(make_user("monitor", "org-a"), make_user("monitor", "org-b"),
                make_user("reviewer", "un-office"), make_user("reviewer", "un-office"),
                make_user("auditor", "audit-office"), make_user("admin", "hq"))


def _env(config: Config) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "TRACKER_"))}
    env.update(TRACKER_DATA_DIR=str(config.data_dir), DATABASE_URL=config.database_url,
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return env


def start_cli(config: Config, *args: str) -> subprocess.Popen[bytes]:
    """A `tracker ...` process on the test's store."""
    return subprocess.Popen([sys.executable, "-m", "tracker.cli", *args], env=_env(config),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start_projector(config: Config, batch_size: int) -> subprocess.Popen[bytes]:
    """A `tracker projector` process on the test's store."""
    return start_cli(config, "projector", "--batch-size", str(batch_size),
                     "--poll-interval", "0.05")


def wait_until(predicate: Any, timeout: float = 60.0) -> None:
    """Poll until the predicate holds, or fail."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)
