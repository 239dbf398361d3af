"""Rows 2 and 3: application appends/s against plain inserts of the same bytes (SQLite, PG)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from bench.harness import PG_URL, Row, pg_scratch, pg_version, progress, report, skipped, step

BLOCK = 50  # events per alternating block: background load hits both sides alike
WRITERS = 8
# Forked writers build their own connections; the parent holds none when it forks.
_FORK = mp.get_context("fork")


def _services(data_dir: Path, database_url: str = "") -> Any:
    from tracker.bootstrap import build
    from tracker.config import Config

    return build(Config(data_dir=data_dir, database_url=database_url, write_rate=0,
                        log_origin="bench"))


def submission() -> dict[str, Any]:
    """The body as the API hands it to the application (after the schema)."""
    from api.schemas.inputs import SubmissionSchema

    loaded: dict[str, Any] = SubmissionSchema().load(report())
    return loaded


def _plain_sqlite(path: Path) -> sqlite3.Connection:
    """The library's own table, written with the bare driver, WAL, synchronous FULL."""
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    SQLiteApplicationRecorder(SQLiteDatastore(str(path))).create_table()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _stored(n: Any) -> StoredEvent:
    return StoredEvent(originator_id=n.originator_id, originator_version=n.originator_version,
                       topic=n.topic, state=bytes(n.state))


def run_sqlite(size: dict[str, Any]) -> tuple[list[Row], list[StoredEvent]]:
    """Row 2: submit() against plain one-row transactions; the audit tree's write overhead."""
    total = size["appends"]
    with tempfile.TemporaryDirectory(prefix="bench-store-") as t:
        tmp = Path(t)
        services = _services(tmp / "lib")
        app = services.app
        actor, _ = services.users.add("Bench Monitor", "monitor", "bench-ngo")
        body = submission()
        with app.db.read() as cur:
            sync = cur.scalar("PRAGMA synchronous")
        for i in range(20):
            app.submit(actor, body, f"warm-{i}")
        last = app.recorder.max_notification_id() or 0
        plain = _plain_sqlite(tmp / "plain.sqlite3")
        insert = "INSERT INTO stored_events VALUES (?,?,?,?)"
        lib_s = plain_s = 0.0
        events: list[StoredEvent] = []
        with step(f"row 2: {total} submit() vs plain inserts, alternating blocks of {BLOCK}"):
            for start in range(0, total, BLOCK):
                t0 = time.perf_counter()
                for i in range(start, min(total, start + BLOCK)):
                    app.submit(actor, body, f"b{i}")
                lib_s += time.perf_counter() - t0
                block = [_stored(n) for n in app.recorder.select_notifications(
                    last, 10 * BLOCK, inclusive_of_start=False)]
                last += len(block)
                events.extend(block)
                t0 = time.perf_counter()
                for e in block:
                    plain.execute("BEGIN")
                    plain.execute(insert, (e.originator_id.hex, e.originator_version, e.topic,
                                           e.state))
                    plain.execute("COMMIT")
                plain_s += time.perf_counter() - t0
        plain.close()
        services.close()
        tree_s, bare_s, library_s = _tree_overhead(tmp, events)
        with_s, without_s = _tree_overhead_submit(tmp, total)
    n = len(events)
    per_submit = n / total
    return [
        Row("2 appends", "submit()/s, SQLite, 1 transaction each", total / lib_s, "/s",
            n / plain_s / per_submit, "plain sqlite3 inserts of the same bytes", ">= 0.7",
            f"synchronous={sync}, WAL; {n} events, {n / total:g} per submission"),
        Row("2 appends", "audit tree on the write path (submit()/s)", total / with_s, "/s",
            total / without_s, "the same submissions, leaves skipped", ">= 0.85",
            "target: at most 15% slower; keys, sealing and commit as usual on both sides"),
        Row("2 appends", "audit tree, the recorder alone (appends/s)", n / tree_s, "/s",
            n / bare_s, "the same recorder, leaves skipped", "",
            f"strictest view: the tree against a bare insert + commit; the library's own "
            f"SQLiteApplicationRecorder did {n / library_s:,.0f}/s (ratio "
            f"{library_s / tree_s:.2f})"),
    ], events


def capture_events(count: int = 50) -> list[StoredEvent]:
    """Stored events of `count` submissions (for row 6 when row 2 did not run)."""
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as t:
        services = _services(Path(t))
        actor, _ = services.users.add("Bench Monitor", "monitor", "bench-ngo")
        body = submission()
        for i in range(count):
            services.app.submit(actor, body, f"c{i}")
        events = [_stored(n) for n in services.app.recorder.select_notifications(None, count)]
        services.close()
    return events


def _without_leaves() -> type:
    """The tracker's SQLite recorder with the audit tree taken out and nothing else: the
    events, and a write's keys, commit as usual (positions are made up)."""
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    from tracker.persistence.db import Cursor
    from tracker.persistence.recorders import TrackerSQLiteRecorder
    from tracker.persistence.write import keys_in_transaction

    class WithoutLeaves(TrackerSQLiteRecorder):
        def _insert_events(self, c: Any, stored_events: Any, **kwargs: Any) -> Any:
            ids = SQLiteApplicationRecorder._insert_events(self, c, stored_events, **kwargs)
            write = kwargs.get("write")
            if write is not None:
                write.positions = [i - 1 for i in ids]
                keys_in_transaction(Cursor(c, "sqlite"), write)
            return ids

    return WithoutLeaves


def _tree_overhead(tmp: Path, events: list[StoredEvent]) -> tuple[float, float, float]:
    """Seconds to append `events` one per transaction with the tree, without it (the same
    recorder, connections and writers' queue, leaves skipped), and through the library's own
    recorder (for scale)."""
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    services = _services(tmp / "tree")
    with_tree = services.app.recorder
    without = _without_leaves()(SQLiteDatastore(str(tmp / "without.sqlite3")))
    library = SQLiteApplicationRecorder(SQLiteDatastore(str(tmp / "library.sqlite3")))
    for recorder in (without, library):
        recorder.create_table()
    seconds = [0.0, 0.0, 0.0]
    with step(f"row 2: {len(events)} appends with and without the audit tree"):
        for start in range(0, len(events), BLOCK):
            block = events[start:start + BLOCK]
            for side, recorder in enumerate((with_tree, without, library)):
                t0 = time.perf_counter()
                for e in block:
                    recorder.insert_events([e])
                seconds[side] += time.perf_counter() - t0
    services.close()
    without.datastore.close()
    library.datastore.close()
    return seconds[0], seconds[1], seconds[2]


def _tree_overhead_submit(tmp: Path, total: int) -> tuple[float, float]:
    """Seconds for `total` submit() calls with the audit tree and without it (the same
    application, its recorder's leaves skipped), in alternating blocks."""
    sides = [_services(tmp / "submit-tree"), _services(tmp / "submit-bare")]
    sides[1].app.recorder.__class__ = _without_leaves()
    body = submission()
    actors = [s.users.add("Bench Monitor", "monitor", "bench-ngo")[0] for s in sides]
    for services, actor in zip(sides, actors, strict=True):
        for i in range(20):
            services.app.submit(actor, body, f"warm-{i}")
    seconds = [0.0, 0.0]
    with step(f"row 2: {total} submit() with and without the audit tree"):
        for start in range(0, total, BLOCK):
            for side, (services, actor) in enumerate(zip(sides, actors, strict=True)):
                t0 = time.perf_counter()
                for i in range(start, min(total, start + BLOCK)):
                    services.app.submit(actor, body, f"t{i}")
                seconds[side] += time.perf_counter() - t0
    for services in sides:
        services.close()
    return seconds[0], seconds[1]


# ---- PostgreSQL, 8 writer processes -----------------------------------------------------


def _plain_table(url: str) -> None:
    """The library's events table, without the library: for the plain writers."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_plain (originator_id uuid NOT NULL, originator_version"
                     " bigint NOT NULL, topic text, state bytea, notification_id bigserial,"
                     " PRIMARY KEY (originator_id, originator_version))")
        conn.execute("CREATE UNIQUE INDEX bench_plain_nid ON bench_plain (notification_id)")


def _library_writer(data_dir: str, url: str, actor: Any, body: dict[str, Any], ready: Any,
                    go: Any, out: Any) -> None:
    """One process: submit() in a loop during the window."""
    services = _services(Path(data_dir), url)
    services.app.submit(actor, body, "warm")
    ready.put(1)
    start, end = go.get()
    time.sleep(max(0.0, start - time.time()))
    n = 0
    while time.time() < end:
        services.app.submit(actor, body, f"w{n}")
        n += 1
    services.close()
    out.put(n)


def _recorder_writer(data_dir: str, url: str, kind: str, state: bytes, topic: str, ready: Any,
                     go: Any, out: Any) -> None:
    """One process: appends of one pre-built event each (fresh aggregate id) through the
    tracker's recorder (group commit, leaves, tree) or the library's own (EXCLUSIVE lock)."""
    import uuid

    if kind == "tracker":
        services = _services(Path(data_dir), url)
        recorder = services.app.recorder
    else:
        recorder = _library_recorder(url)

    def append() -> None:
        recorder.insert_events([StoredEvent(originator_id=uuid.uuid4(), originator_version=1,
                                            topic=topic, state=state)])

    append()
    ready.put(1)
    start, end = go.get()
    time.sleep(max(0.0, start - time.time()))
    n = 0
    while time.time() < end:
        append()
        n += 1
    out.put(n)


def _library_recorder(url: str) -> Any:
    """The library's PostgreSQL application recorder on a table of its own."""
    from urllib.parse import urlparse

    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    u = urlparse(url)
    datastore = PostgresDatastore(dbname=u.path.lstrip("/"), host=u.hostname or "127.0.0.1",
                                  port=str(u.port or 5432), user=u.username or "postgres",
                                  password=u.password or "")
    return PostgresApplicationRecorder(datastore, events_table_name="bench_library")


def _plain_writer(url: str, state: bytes, topic: str, ready: Any, go: Any, out: Any) -> None:
    """One process: single-row autocommit inserts of the same bytes with psycopg."""
    import uuid

    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    sql = ("INSERT INTO bench_plain (originator_id, originator_version, topic, state)"
           " VALUES (%s, 1, %s, %s) RETURNING notification_id")
    conn.execute(sql, (uuid.uuid4(), topic, state), prepare=True)
    ready.put(1)
    start, end = go.get()
    time.sleep(max(0.0, start - time.time()))
    n = 0
    while time.time() < end:
        conn.execute(sql, (uuid.uuid4(), topic, state), prepare=True).fetchone()
        n += 1
    conn.close()
    out.put(n)


def _race(target: Any, args: tuple[Any, ...], seconds: float, writers: int) -> float:
    ready, go, out = _FORK.Queue(), _FORK.Queue(), _FORK.Queue()
    procs = [_FORK.Process(target=target, args=(*args, ready, go, out), daemon=True)
             for _ in range(writers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    start = time.time() + 0.2
    for _ in procs:
        go.put((start, start + seconds))
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    for p in procs:
        p.join(30)
    return total / seconds


def run_postgres(size: dict[str, Any]) -> list[Row]:
    """Row 3: 8 writer processes of submit() against 8 clients of plain commits (and 1 vs 1)."""
    version = pg_version()
    if version is None:
        return [skipped("3 postgres", f"PostgreSQL submit()/s, {WRITERS} writer processes",
                        f"PostgreSQL unreachable at {PG_URL}")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as t, pg_scratch("tracker_bench") as url:
        _plain_table(url)
        services = _services(Path(t), url)
        actor, _ = services.users.add("Bench Monitor", "monitor", "bench-ngo")
        body = submission()
        services.app.submit(actor, body, "sample")
        sample = services.app.recorder.select_notifications(None, 1)[0]
        services.close()
        seconds = size["pg_seconds"]
        _library_recorder(url).create_table()
        state, topic = bytes(sample.state), sample.topic
        with step(f"row 3: {WRITERS} tracker recorders, {WRITERS} library recorders, "
                  f"{WRITERS} plain clients, {seconds:g} s each"):
            tracker = _race(_recorder_writer, (t, url, "tracker", state, topic), seconds,
                            WRITERS)
            library = _race(_recorder_writer, (t, url, "library", state, topic), seconds,
                            WRITERS)
            plain = _race(_plain_writer, (url, state, topic), seconds, WRITERS)
        progress(f"row 3: appends/s with {WRITERS} writers: tracker {tracker:.0f}, library "
                 f"{library:.0f}, plain {plain:.0f}")
        rows.append(Row(
            "3 postgres", f"PostgreSQL appends/s, {WRITERS} writer processes (recorder)",
            tracker, "/s", plain, f"{WRITERS} psycopg single-row commit clients", ">= 0.5",
            f"PostgreSQL {version.split()[0]}; group commit (sequencer); the library's "
            f"recorder (EXCLUSIVE lock, no tree) did {library:,.0f}/s = "
            f"{library / plain:.2f} of plain in the same run"))
        for writers in (WRITERS, 1) if size["pg_single"] else (WRITERS,):
            with step(f"row 3: {writers} submit() writer(s) for {seconds:g} s"):
                lib = _race(_library_writer, (t, url, actor, body), seconds, writers)
            with step(f"row 3: {writers} plain psycopg writer(s) for {seconds:g} s"):
                plain = _race(_plain_writer, (url, state, topic), seconds, writers)
            progress(f"row 3: {writers} writer(s): submit() {lib:.0f}/s, plain {plain:.0f}/s")
            many = writers > 1
            rows.append(Row(
                "3 postgres", f"PostgreSQL submit()/s, {writers} writer process"
                + ("es" if many else ""), lib, "/s", plain,
                f"{writers} psycopg single-row commit client" + ("s" if many else ""), "",
                "the whole application: sealing, keys, idempotency, audit"
                if many else "for scale: the same with one writer"))
    return rows
