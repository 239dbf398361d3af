"""Projection figures, each beside its baseline: rebuild rate, list latency as the views
grow, query latency, and the projection lag under a steady stream of submissions.

Run `python -m bench.bench_projections [--size small|full] [--database-url URL]`;
`make bench` (row 7) calls `run(size=...)`. Nothing passes or fails: it measures.

- **Rebuild**: `tracker.projections.rebuild` (what `tracker projections rebuild` runs, with
  its default page size) over a log written by the application's aggregates, against a
  baseline that reads the same stored records page by page with the same SQL join and
  `json.loads` each payload, nothing else. Measured in alternating rounds (baseline,
  rebuild, baseline, ...); the best of each counts, as background load hits both.
- **List latency as the views grow**: the view rows are inserted **directly with SQL**
  (no events: one `INSERT ... SELECT` over a generated series per table, then the indexes
  and the full-text index are built as after a rebuild), one store per size; every list
  shape (page of 50) is timed on every size in alternating rounds. The figure is p95 at the
  largest size, the baseline p95 at the smallest.
- **Queries**: list and statistics shapes over the views at `allegations` rows.
- **Projection lag**: writer processes call `AllegationTracker.submit` at a fixed total
  rate (open loop); the projector runs `run_projector` (the loop of `tracker projector`,
  with its default options) in its own process. Lag = when the projector's transaction
  holding an event committed, minus when the submission's own transaction committed
  (both `time.monotonic()`, one clock for every process on Linux).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import signal
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.harness import Row, progress, quantile
from tracker.bootstrap import Tracker, build
from tracker.config import Config
from tracker.domain.allegation import Allegation
from tracker.domain.values import Actor, Provenance
from tracker.projections import Filters, Views, rebuild, schema
from tracker.projections.feed import read_rows
from tracker.projections.runner import REBUILD_BATCH

GROUP = "7 projections"
# Every knob a size changes (README "Sizes"); `run`'s keyword arguments override them.
SIZES: dict[str, dict[str, Any]] = {
    "small": {"events": 3_000, "allegations": 5_000, "repeat": 20, "rounds": 5,
              "list_sizes": (2_000, 20_000), "list_repeat": 100,
              "lag_rate": 200.0, "lag_seconds": 4.0, "lag_writers": 2},
    "full": {"events": 30_000, "allegations": 100_000, "repeat": 50, "rounds": 5,
             "list_sizes": (10_000, 100_000, 1_000_000), "list_repeat": 200,
             "lag_rate": 200.0, "lag_seconds": 30.0, "lag_writers": 2},
}

CATEGORIES = ["child_recruitment_use", "extrajudicial_execution", "arbitrary_arrest_detention",
              "attack_school_hospital", "torture_ill_treatment", "forced_displacement"]
STATUSES = ["received", "under_review", "needs_information", "verified", "rejected", "closed"]
PERPETRATORS = [("FAMa", "state_forces"), ("JNIM", "armed_group"), ("ISGS", "armed_group"),
                ("Dan Na Ambassagou", "militia")]
WORDS = ["school", "checkpoint", "village", "market", "convoy", "well", "mosque", "camp"]
COUNTRIES = ["ML", "NE", "BF"]
YEARS = [str(y) for y in range(2012, 2024)]
MONTHS = [f"{m:02d}" for m in range(1, 13)]
BASE_TIME = 1_600_000_000  # submissions of the generated rows: one a second from here


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


@contextmanager
def scratch(database_url: str = "", suffix: str = "") -> Iterator[Tracker]:
    """A fresh store for one measurement, removed afterwards (its temporary directory and,
    on PostgreSQL, the database `<name>_<suffix>` it made; a database given without a
    suffix is only emptied)."""
    url = f"{database_url}_{suffix}" if database_url and suffix else database_url
    t = store(url)
    try:
        yield t
    finally:
        t.close()
        shutil.rmtree(t.config.data_dir, ignore_errors=True)
        if url != database_url:
            import psycopg

            with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# ---- rebuild ------------------------------------------------------------------------------

def _report(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "summary": f"case {n} at the {rng.choice(WORDS)}", "description": "synthetic " * 20,
        "categories": rng.sample(CATEGORIES, rng.randint(1, 2)),
        "incident": {"date": f"20{rng.randint(12, 23)}-{rng.randint(1, 12):02d}-15",
                     "date_precision": "day",
                     "location": {"country": rng.choice(COUNTRIES),
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


def bench_rebuild(t: Tracker, batch_size: int = REBUILD_BATCH) -> dict[str, float]:
    """Events per second of a full rebuild (decode, fold, write, track, build the indexes)."""
    started = time.perf_counter()
    applied = rebuild(t.app, batch_size=batch_size)
    seconds = time.perf_counter() - started
    return {"events": applied, "seconds": seconds, "events_per_s": applied / seconds}


def bench_baseline(t: Tracker, batch_size: int = REBUILD_BATCH) -> dict[str, float]:
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


def rebuild_vs_baseline(t: Tracker, rounds: int) -> dict[str, Any]:
    """Alternating rounds of baseline and rebuild; the best (fastest) of each."""
    bases, rebuilds = [], []
    for _ in range(rounds):
        bases.append(bench_baseline(t))
        rebuilds.append(bench_rebuild(t))
    base = max(bases, key=lambda r: r["events_per_s"])
    best = max(rebuilds, key=lambda r: r["events_per_s"])
    return {"baseline": base, "rebuild": best, "rounds": rounds,
            "rebuild_all": [r["events_per_s"] for r in rebuilds],
            "baseline_all": [r["events_per_s"] for r in bases],
            "rebuild_vs_baseline": best["events_per_s"] / base["events_per_s"]}


# ---- view rows straight into the tables ---------------------------------------------------

def _h(k: int) -> str:
    """A cheap, dialect-neutral pseudo-random number of the series' `i` (one per k)."""
    return f"((i * {7_919 + 104_729 * k} + {31 * k + 7}) % 1000003)"


def _pick(k: int, values: list[str], offset: str = "") -> str:
    expr = f"({_h(k)}{offset}) % {len(values)}"
    return f"(CASE {expr} " + " ".join(f"WHEN {n} THEN '{v}'" for n, v in enumerate(values)) + \
        " END)"


def _of(expr: str, values: list[str]) -> str:
    return f"(CASE {expr} " + " ".join(f"WHEN {n} THEN '{v}'" for n, v in enumerate(values)) + \
        " END)"


def _fill_sql(dialect: str) -> dict[str, str]:
    """INSERT ... SELECT statements generating view rows `seq` in [?, ?] (both dialects)."""
    pg = dialect == "postgres"
    series = ("WITH n(i) AS (SELECT generate_series(CAST(? AS BIGINT), CAST(? AS BIGINT)))"
              if pg else
              "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)")
    at = (f"to_char(to_timestamp({BASE_TIME} + i) AT TIME ZONE 'UTC',"
          " 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'" if pg else
          f"strftime('%Y-%m-%dT%H:%M:%S', {BASE_TIME} + i, 'unixepoch') || '+00:00'")
    ident = "md5(i::text || random()::text)" if pg else "lower(hex(randomblob(16)))"
    c1, c2 = f"({_h(4)} % 6)", f"(({_h(4)} % 6 + 1 + {_h(6)} % 5) % 6)"
    two = f"({_h(5)} % 2 = 1)"
    cats = (f"CASE WHEN {two} THEN '[\"' || {_of(c1, CATEGORIES)} || '\",\"' || "
            f"{_of(c2, CATEGORIES)} || '\"]' ELSE '[\"' || {_of(c1, CATEGORIES)} || '\"]' END")
    np_, p1, p2 = f"({_h(7)} % 3)", f"({_h(8)} % 4)", f"(({_h(8)} % 4 + 1 + {_h(9)} % 3) % 4)"
    names, types = [p[0] for p in PERPETRATORS], [p[1] for p in PERPETRATORS]

    def perp(p: str) -> str:
        return (f"'{{\"name\":\"' || {_of(p, names)} || '\",\"type\":\"' || "
                f"{_of(p, types)} || '\"}}'")

    perps = (f"CASE {np_} WHEN 0 THEN '[]' WHEN 1 THEN '[' || {perp(p1)} || ']'"
             f" ELSE '[' || {perp(p1)} || ',' || {perp(p2)} || ']' END")
    date = f"{_pick(10, YEARS)} || '-' || {_pick(11, MONTHS)} || '-15'"
    summary = f"'case ' || i || ' at the ' || {_pick(3, WORDS)}"
    victims = f"({_h(12)} % 21)"
    doc = f"{summary} || ' synthetic description of what happened'"
    columns = {
        "id": ident, "seq": "i", "organisation": "'org-' || (i % 5)",
        "status": _pick(0, STATUSES), "summary": summary, "categories": cats,
        "perpetrators": perps, "country": _pick(1, COUNTRIES),
        "admin1": f"'Region ' || (1 + {_h(2)} % 9)", "place": "NULL",
        "incident_date": date, "incident_date_to": "NULL", "incident_precision": "'day'",
        "incident_month": f"substr({date}, 1, 7)", "victims": victims,
        "children": f"({_h(13)} % ({victims} + 1))", "assignee": "'reviewer-' || (i % 20)",
        "duplicate_of": "NULL", "erased": "0", "sources": "1", "information": "0",
        "evidence": "0", "comments": "0", "version": "1", "submitted_at": at,
        "updated_at": at, "position": "i",
    }
    if pg:
        columns["search"] = f"to_tsvector('simple', {doc})"
    sql = {
        "list": f"{series} INSERT INTO allegation_list ({', '.join(columns)})"
                f" SELECT {', '.join(columns.values())} FROM n",
        "categories": f"{series} INSERT INTO allegation_categories (seq, category)"
                      f" SELECT i, {_of(c1, CATEGORIES)} FROM n UNION ALL"
                      f" SELECT i, {_of(c2, CATEGORIES)} FROM n WHERE {two}",
        "perpetrators": f"{series} INSERT INTO allegation_perpetrators"
                        " (seq, n, name, name_key, type)"
                        f" SELECT i, 0, {_of(p1, names)}, lower({_of(p1, names)}),"
                        f" {_of(p1, types)} FROM n WHERE {np_} >= 1 UNION ALL"
                        f" SELECT i, 1, {_of(p2, names)}, lower({_of(p2, names)}),"
                        f" {_of(p2, types)} FROM n WHERE {np_} = 2",
    }
    if not pg:
        sql["docs"] = f"{series} INSERT INTO allegation_docs (seq, body) SELECT i, {doc} FROM n"
        return sql
    return {k: v.replace("%", "%%") for k, v in sql.items()}  # psycopg's placeholders


def fill_views(t: Tracker, first: int, last: int) -> None:
    """Insert view rows `seq` first..last-1 directly with SQL (no events), then build the
    indexes and the full-text index as a rebuild does. Rows already there stay."""
    Views(t.app.db)  # creates the tables
    if last <= first:
        return
    with t.app.db.tx() as cur:
        schema.drop_indexes(cur)
        for sql in _fill_sql(cur.dialect).values():
            cur.execute(sql, (first, last - 1))
        schema.finish(cur)


def insert_view_rows(t: Tracker, allegations: int) -> None:
    """Fill the views directly (no events) with `allegations` rows."""
    fill_views(t, 0, allegations)


# ---- queries ------------------------------------------------------------------------------

def _times(call: Callable[[], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(times), "p95_ms": quantile(times, 0.95),
            "n": len(times)}


def _percentiles(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    return _summary(_times(call, repeat))


REVIEWER = Actor("bench-reviewer", "Bench", "reviewer", "un")
MONITOR = Actor("bench-monitor", "Bench", "monitor", "org-3")


def list_shapes(views: Views) -> dict[str, Callable[[], Any]]:
    """Pages of 50 whose filter an index serves in the list's order, and text searches (the
    scaling figures)."""
    return {
        "list, no filter": lambda: views.list_page(REVIEWER, Filters()),
        "list status=under_review": lambda: views.list_page(
            REVIEWER, Filters(status=("under_review",))),
        "list monitor (own organisation)": lambda: views.list_page(MONITOR, Filters()),
        "list country=NE": lambda: views.list_page(REVIEWER, Filters(country=("NE",))),
        "list assignee=reviewer-7": lambda: views.list_page(
            REVIEWER, Filters(assignee="reviewer-7")),
        "list category=forced_displacement": lambda: views.list_page(
            REVIEWER, Filters(category=("forced_displacement",))),
        "list status+category": lambda: views.list_page(
            REVIEWER, Filters(status=("under_review",), category=("child_recruitment_use",))),
        "list q=checkpoint (1 row in 8)": lambda: views.list_page(
            REVIEWER, Filters(q="checkpoint")),
        "list q=case 1234 (1 row)": lambda: views.list_page(REVIEWER, Filters(q="case 1234")),
    }


def bench_list_scaling(sizes: tuple[int, ...], repeat: int, database_url: str = "",
                       rounds: int = 5) -> dict[int, dict[str, dict[str, float]]]:
    """p50/p95 of each list shape over views of each size, one store per size, measured in
    alternating rounds (every size, then again) so that background load hits them alike."""
    with ExitStack() as stack:
        shapes: dict[int, dict[str, Callable[[], Any]]] = {}
        for size in sorted(sizes):
            t = stack.enter_context(scratch(database_url, f"list{size}"))
            started = time.monotonic()
            fill_views(t, 0, size)
            progress(f"  views of {size:,} rows filled in {time.monotonic() - started:.1f} s")
            shapes[size] = list_shapes(Views(t.app.db))
            for call in shapes[size].values():  # warm the caches as a running service has
                call()
        times: dict[int, dict[str, list[float]]] = {
            size: {name: [] for name in calls} for size, calls in shapes.items()}
        for _ in range(rounds):
            for size, calls in shapes.items():
                for name, call in calls.items():
                    times[size][name] += _times(call, max(1, repeat // rounds))
    return {size: {name: _summary(values) for name, values in by_name.items()}
            for size, by_name in times.items()}


def bench_queries(t: Tracker, repeat: int = 50) -> dict[str, dict[str, float]]:
    """p50/p95 of list and stats queries over whatever the views hold."""
    views = Views(t.app.db)
    deep = views.list_page(REVIEWER, Filters(), limit=200)
    for _ in range(9):
        if deep.next_cursor:
            deep = views.list_page(REVIEWER, Filters(), limit=200, cursor=deep.next_cursor)
    cursor = deep.next_cursor
    shapes: dict[str, Callable[[], Any]] = {
        "list page 11 (cursor, 200)": lambda: views.list_page(REVIEWER, Filters(), 200, cursor),
        "list perpetrator=jnim": lambda: views.list_page(REVIEWER, Filters(perpetrator="jnim")),
        "stats total": lambda: views.stats(REVIEWER, Filters()),
        "stats category,country": lambda: views.stats(REVIEWER, Filters(),
                                                       ["category", "country"]),
        "stats month,perpetrator": lambda: views.stats(REVIEWER, Filters(),
                                                       ["month", "perpetrator"]),
    }
    return {name: _percentiles(call, repeat) for name, call in shapes.items()}


# ---- projection lag -----------------------------------------------------------------------

def _config(data_dir: str, database_url: str) -> Config:
    return Config(data_dir=Path(data_dir), database_url=database_url, write_rate=0)


def _projector_process(data_dir: str, database_url: str, out: str, ready: Any) -> None:
    """`run_projector` as `tracker projector` runs it, noting when each page committed."""
    from tracker.projections import runner

    services = build(_config(data_dir, database_url))
    seen: list[tuple[int, float]] = []
    original = runner.Projector.step

    def step(self: runner.Projector) -> int:
        n = original(self)
        if n > 0:
            seen.append((self.position, time.monotonic()))
        return n

    runner.Projector.step = step  # type: ignore[method-assign]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ready.set()
    try:
        # The defaults of `tracker projector` (its --poll-interval and --batch-size).
        runner.run_projector(services, stop, poll_interval=runner.POLL_INTERVAL,
                             batch_size=runner.BATCH)
    finally:
        services.close()
        Path(out).write_text(json.dumps(seen))


def _writer_process(data_dir: str, database_url: str, rate: float, start: float,
                    seconds: float, out: str, number: int) -> None:
    """Submissions at a fixed rate (open loop), noting when each one's transaction committed."""
    from bench.harness import report

    services = build(_config(data_dir, database_url))
    app = services.app
    committed: list[float] = []
    original = app.save

    def save(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        committed.append(time.monotonic())  # save() returns once the commit is done
        return result

    app.save = save  # type: ignore[method-assign]
    actor = Actor(f"bench-monitor-{number}", "Bench", "monitor", "org-bench")
    body = report()
    app.submit(actor, body, "warm-up")  # first-call costs, before the clock starts
    committed.clear()
    done: list[tuple[int, float]] = []
    interval = 1.0 / rate
    n = 0
    while True:
        planned = start + n * interval
        if planned >= start + seconds:
            break
        delay = planned - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        result = app.submit(actor, body, f"lag-{number}-{n}")
        done.append((result.position, committed[-1]))
        n += 1
    services.close()
    Path(out).write_text(json.dumps({"done": done, "ended": time.monotonic()}))


def bench_lag(rate: float, seconds: float, writers: int, database_url: str = ""
              ) -> dict[str, Any]:
    """Projection lag (ms) while `writers` processes submit `rate` allegations/s in total."""
    with scratch(database_url, "lag") as t:
        Views(t.app.db)
        t.app.submit(Actor("bench-warm", "Bench", "monitor", "org-bench"), _warm_report(),
                     "warm")  # every table exists before the processes start
        t.close()
        url = t.config.database_url
        return _lag_run(str(t.config.data_dir), url, rate, seconds, writers)


def _lag_run(data_dir: str, url: str, rate: float, seconds: float, writers: int
             ) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    out = Path(data_dir)
    ready = ctx.Event()
    projector = ctx.Process(target=_projector_process,
                            args=(data_dir, url, str(out / "projector.json"), ready))
    procs: list[Any] = []
    try:
        projector.start()
        ready.wait(60)
        start = time.monotonic() + 3.0  # every writer built and warmed up by then
        procs += [ctx.Process(target=_writer_process,
                              args=(data_dir, url, rate / writers, start, seconds,
                                    str(out / f"writer{k}.json"), k)) for k in range(writers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        results = [json.loads((out / f"writer{k}.json").read_text()) for k in range(writers)]
        done = sorted(d for r in results for d in r["done"])
        last = max(p for p, _ in done)
        t = build(_config(data_dir, url))
        try:
            deadline = time.monotonic() + 60
            while Views(t.app.db).position() < last and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            t.close()
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        if projector.is_alive():
            projector.terminate()  # SIGTERM: it stops after its page and writes what it saw
        projector.join(30)
    seen = json.loads((out / "projector.json").read_text())
    lags: list[float] = []
    k = 0
    for position, committed in done:
        while k < len(seen) and seen[k][0] < position:
            k += 1
        if k < len(seen):
            lags.append((seen[k][1] - committed) * 1000)
    ended = max(r["ended"] for r in results)
    return {"rate": rate, "seconds": seconds, "writers": writers, "submissions": len(done),
            "achieved_rate": len(done) / (ended - start), "measured": len(lags),
            "p50_ms": statistics.median(lags) if lags else None,
            "p99_ms": quantile(lags, 0.99) if lags else None,
            "max_ms": max(lags) if lags else None, "pages": len(seen)}


def _warm_report() -> dict[str, Any]:
    from bench.harness import report

    return report()


# ---- the row ------------------------------------------------------------------------------

def run(size: str = "small", events: int | None = None, allegations: int | None = None,
        repeat: int | None = None, database_url: str = "",
        **overrides: Any) -> list[Row]:
    """Every figure of row 7 (projections) as table rows; `size` picks the defaults."""
    knobs = {**SIZES[size], **overrides}
    for name, value in (("events", events), ("allegations", allegations), ("repeat", repeat)):
        if value is not None:
            knobs[name] = value
    result = measure(knobs, database_url)
    return rows(result, knobs)


def measure(knobs: dict[str, Any], database_url: str = "") -> dict[str, Any]:
    """Every figure, each from a fresh store."""
    out: dict[str, Any] = {}
    with scratch(database_url, "rebuild") as t:
        load_events(t, knobs["events"])
        out.update(rebuild_vs_baseline(t, knobs["rounds"]))
    progress(f"  rebuild {out['rebuild']['events_per_s']:,.0f} events/s, baseline "
             f"{out['baseline']['events_per_s']:,.0f} (ratio {out['rebuild_vs_baseline']:.2f})")
    out["scaling"] = bench_list_scaling(tuple(sorted(set(knobs["list_sizes"]))),
                                        knobs["list_repeat"], database_url)
    with scratch(database_url, "queries") as t:
        insert_view_rows(t, knobs["allegations"])
        out["queries"] = bench_queries(t, knobs["repeat"])
    progress(f"  projection lag: {knobs['lag_rate']:g} submissions/s for "
             f"{knobs['lag_seconds']:g} s")
    out["lag"] = bench_lag(knobs["lag_rate"], knobs["lag_seconds"], knobs["lag_writers"],
                           database_url)
    return out


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}")


def rows(result: dict[str, Any], knobs: dict[str, Any]) -> list[Row]:
    """The figures as rows of `make bench`'s table."""
    rebuilt, base = result["rebuild"], result["baseline"]
    out = [Row(GROUP, f"rebuild events/s ({rebuilt['events']:,} events)",
               rebuilt["events_per_s"], "/s", base["events_per_s"],
               "select + json.loads the same records", ">= 0.35",
               note=f"best of {result['rounds']} alternating rounds; pages of {REBUILD_BATCH}")]
    scaling = result["scaling"]
    small, large = min(scaling), max(scaling)
    for name in scaling[large]:
        lo, hi = scaling[small][name], scaling[large][name]
        p50s = ", ".join(f"{_size(s)} {scaling[s][name]['p50_ms']:.2f}" for s in sorted(scaling))
        out.append(Row(GROUP, f"{name}, p95 at {_size(large)}", hi["p95_ms"], "ms",
                       lo["p95_ms"], f"p95 at {_size(small)}", "<= 2",
                       note=f"page of 50; p50 ms: {p50s}; n={hi['n']}"))
    for name, q in result["queries"].items():
        out.append(Row(GROUP, f"{name}, p50 ({_size(knobs['allegations'])} rows)", q["p50_ms"],
                       "ms", note=f"p95 {q['p95_ms']:.2f} ms; no baseline"))
    lag = result["lag"]
    note = (f"{lag['submissions']} submissions at {lag['achieved_rate']:.0f}/s achieved "
            f"({lag['writers']} writer processes, planned {lag['rate']:g}/s); "
            f"{lag['pages']} projector pages")
    out.append(Row(GROUP, f"projection lag p99, {lag['rate']:g}/s for {lag['seconds']:g} s",
                   lag["p99_ms"], "ms", note=note))
    out.append(Row(GROUP, "projection lag p50", lag["p50_ms"], "ms",
                   note=f"max {lag['max_ms']:.1f} ms" if lag["max_ms"] is not None else ""))
    return out


def table(out: list[Row]) -> str:
    """The rows as a small text table."""
    from bench.harness import table as harness_table

    return harness_table(out)


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--events", type=int)
    parser.add_argument("--allegations", type=int)
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (emptied!)")
    args = parser.parse_args(argv)
    print(table(run(args.size, args.events, args.allegations, args.repeat, args.database_url)))


if __name__ == "__main__":
    main()
