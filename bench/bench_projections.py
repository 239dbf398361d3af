"""Projection figures, each beside its baseline: rebuild rate, list and stats query latency.

Run `python -m bench.bench_projections [--events N] [--allegations N] [--database-url URL]`;
`make bench` calls the functions with its own sizes. Nothing passes or fails: it measures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracker.bootstrap import Tracker, build
from tracker.config import Config
from tracker.domain.allegation import Allegation
from tracker.domain.values import Actor, Provenance
from tracker.projections import Filters, Views, rebuild
from tracker.projections.allegations import AllegationsView
from tracker.projections.feed import read_rows
from tracker.projections.search import normalise

CATEGORIES = ["child_recruitment_use", "extrajudicial_execution", "arbitrary_arrest_detention",
              "attack_school_hospital", "torture_ill_treatment", "forced_displacement"]
STATUSES = ["received", "under_review", "needs_information", "verified", "rejected", "closed"]
PERPETRATORS = [("FAMa", "state_forces"), ("JNIM", "armed_group"), ("ISGS", "armed_group"),
                ("Dan Na Ambassagou", "militia")]
WORDS = ["school", "checkpoint", "village", "market", "convoy", "well", "mosque", "camp"]


def store(database_url: str = "") -> Tracker:
    """A fresh store: a temporary SQLite file, or the given (emptied) PostgreSQL database."""
    if database_url:
        import psycopg

        name = database_url.rsplit("/", 1)[1]
        with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres",
                             autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
            conn.execute("CREATE SCHEMA public")
    data_dir = Path(tempfile.mkdtemp(prefix="tracker-bench-"))
    return build(Config(data_dir=data_dir, database_url=database_url, write_rate=0))


def _report(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "summary": f"case {n} at the {rng.choice(WORDS)}", "description": "synthetic " * 20,
        "categories": rng.sample(CATEGORIES, rng.randint(1, 2)),
        "incident": {"date": f"20{rng.randint(12, 23)}-{rng.randint(1, 12):02d}-15",
                     "date_precision": "day",
                     "location": {"country": rng.choice(["ML", "NE", "BF"]),
                                  "admin1": f"Region {rng.randint(1, 9)}"}},
        "source": {"type": "ngo_report", "reliability": "B", "credibility": 2,
                   "description": "synthetic"},
        "alleged_perpetrators": [{"name": p, "type": t}
                                 for p, t in rng.sample(PERPETRATORS, rng.randint(0, 2))],
        "victims": {"count": (c := rng.randint(0, 20)), "children": rng.randint(0, c)},
    }


def load_events(t: Tracker, events: int, seed: int = 1) -> int:
    """Append about `events` events (a submission and two updates per allegation, in pages)."""
    rng = random.Random(seed)
    prov = Provenance("bench", "monitor", "org-bench", "bench")
    reviewer = Provenance("bench-reviewer", "reviewer", "un", "bench")
    written = 0
    while written < events:
        batch = []
        for _ in range(min(200, (events - written + 2) // 3)):
            a = Allegation.submit(uuid.uuid4(), _report(rng, written), None, "bench", prov)
            a.assign("reviewer-1", reviewer)
            a.comment("looked at it", reviewer)
            batch.append(a)
            written += 3
        t.app.save(*batch)
    return written


def bench_rebuild(t: Tracker, batch_size: int = 1000) -> dict[str, float]:
    """Events per second of a full rebuild (decode, fold, write, track)."""
    started = time.perf_counter()
    applied = rebuild(t.app, batch_size=batch_size)
    seconds = time.perf_counter() - started
    return {"events": applied, "seconds": seconds, "events_per_s": applied / seconds}


def bench_baseline(t: Tracker, batch_size: int = 1000) -> dict[str, float]:
    """The floor: select the same stored records page by page and json-decode them, no more."""
    started = time.perf_counter()
    after, count = -1, 0
    while True:
        with t.app.db.read() as cur:
            rows = read_rows(cur, t.app, after, batch_size)
        if not rows:
            break
        for row in rows:
            json.loads(row[4])
        count += len(rows)
        after = rows[-1][0]
    seconds = time.perf_counter() - started
    return {"events": count, "seconds": seconds, "events_per_s": count / seconds}


def insert_view_rows(t: Tracker, allegations: int, seed: int = 2) -> None:
    """Fill the views directly (no events) with `allegations` rows, in pages."""
    rng = random.Random(seed)
    Views(t.app.db)  # creates the tables
    start = int(time.time()) - allegations
    for first in range(0, allegations, 5000):
        with t.app.db.tx() as cur:
            view = AllegationsView(cur)
            for n in range(first, min(first + 5000, allegations)):
                body = _report(rng, n)
                aid = str(uuid.UUID(int=rng.getrandbits(128)))
                at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start + n))
                perps = body["alleged_perpetrators"]
                view.rows[aid] = {
                    "id": aid, "seq": n, "organisation": f"org-{n % 5}",
                    "status": rng.choice(STATUSES), "summary": body["summary"],
                    "categories": json.dumps(body["categories"]),
                    "perpetrators": json.dumps(perps),
                    "country": body["incident"]["location"]["country"],
                    "admin1": body["incident"]["location"]["admin1"], "place": None,
                    "incident_date": body["incident"]["date"], "incident_date_to": None,
                    "incident_precision": "day", "incident_month": body["incident"]["date"][:7],
                    "victims": body["victims"]["count"], "children": body["victims"]["children"],
                    "assignee": f"reviewer-{n % 20}", "duplicate_of": None, "erased": 0,
                    "sources": 1, "information": 0, "evidence": 0, "comments": 0, "version": 1,
                    "submitted_at": at, "updated_at": at, "position": n}
                view.new.add(aid)
                view.docs[aid] = normalise(body["summary"], body["description"])
                view.categories += [(n, c) for c in body["categories"]]
                view.perpetrators += [(n, i, p["name"], p["name"].casefold(), p["type"])
                                      for i, p in enumerate(perps)]
            view.flush()
    with t.app.db.tx() as cur:
        cur.execute("ANALYZE")  # as autovacuum (PostgreSQL) or `PRAGMA optimize` would


def _percentiles(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times),
            "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))]}


def bench_queries(t: Tracker, repeat: int = 50) -> dict[str, dict[str, float]]:
    """p50/p95 of list and stats queries over whatever the views hold."""
    views = Views(t.app.db)
    reviewer = Actor("bench-reviewer", "Bench", "reviewer", "un")
    monitor = Actor("bench-monitor", "Bench", "monitor", "org-3")
    deep = views.list_page(reviewer, Filters(), limit=200)
    for _ in range(9):
        if deep.next_cursor:
            deep = views.list_page(reviewer, Filters(), limit=200, cursor=deep.next_cursor)
    cursor = deep.next_cursor
    shapes: dict[str, Callable[[], Any]] = {
        "list first page (50)": lambda: views.list_page(reviewer, Filters()),
        "list page 11 (cursor, 200)": lambda: views.list_page(reviewer, Filters(), 200, cursor),
        "list status+category": lambda: views.list_page(
            reviewer, Filters(status=("under_review",), category=("child_recruitment_use",))),
        "list monitor (own org)": lambda: views.list_page(monitor, Filters()),
        "list q=checkpoint": lambda: views.list_page(reviewer, Filters(q="checkpoint")),
        "list perpetrator=jnim": lambda: views.list_page(reviewer, Filters(perpetrator="jnim")),
        "stats total": lambda: views.stats(reviewer, Filters()),
        "stats category,country": lambda: views.stats(reviewer, Filters(),
                                                       ["category", "country"]),
        "stats month,perpetrator": lambda: views.stats(reviewer, Filters(),
                                                       ["month", "perpetrator"]),
    }
    return {name: _percentiles(call, repeat) for name, call in shapes.items()}


def run(events: int = 30_000, allegations: int = 100_000, database_url: str = "",
        repeat: int = 50) -> dict[str, Any]:
    """Every figure, each from a fresh store."""
    t = store(database_url)
    try:
        load_events(t, events)
        out: dict[str, Any] = {"baseline": bench_baseline(t), "rebuild": bench_rebuild(t)}
    finally:
        t.close()
    t = store(database_url)
    try:
        insert_view_rows(t, allegations)
        out["queries"] = bench_queries(t, repeat)
    finally:
        t.close()
    out["rebuild_vs_baseline"] = out["rebuild"]["events_per_s"] / out["baseline"]["events_per_s"]
    return out


def table(result: dict[str, Any], allegations: int) -> str:
    """The figures as a small text table."""
    lines = [f"{'rebuild':<34}{'events':>10}{'events/s':>12}",
             f"{'  baseline: select + json.loads':<34}{result['baseline']['events']:>10}"
             f"{result['baseline']['events_per_s']:>12,.0f}",
             f"{'  projector rebuild':<34}{result['rebuild']['events']:>10}"
             f"{result['rebuild']['events_per_s']:>12,.0f}",
             f"{'  ratio rebuild / baseline':<34}{'':>10}{result['rebuild_vs_baseline']:>12.2f}",
             "", f"{f'queries over {allegations:,} allegations':<34}{'p50 ms':>10}{'p95 ms':>12}"]
    for name, q in result["queries"].items():
        lines.append(f"  {name:<32}{q['p50_ms']:>10.2f}{q['p95_ms']:>12.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--allegations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (emptied!)")
    args = parser.parse_args(argv)
    result = run(args.events, args.allegations, args.database_url, args.repeat)
    print(table(result, args.allegations))


if __name__ == "__main__":
    main()
