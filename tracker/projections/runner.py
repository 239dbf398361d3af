"""The projector: follows the log from its tracked position, one transaction per page.

Each page's view rows and the new position commit together, and the position moves by
compare-and-set, so a crash at any moment, or two projectors at once, never lose or repeat
an event. SQLite cannot notify, so the loop polls; on PostgreSQL it also wakes on the
event store's NOTIFY.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from tracker.audit.log import tree_size
from tracker.persistence.db import schema_lock
from tracker.projections import schema
from tracker.projections.allegations import AllegationsView
from tracker.projections.feed import log_size, read_records
from tracker.projections.tracking import (
    advance,
    current_position,
    read_position,
    wait_for_position,
)

log = logging.getLogger("tracker.projections")

__all__ = ["Projector", "rebuild", "run_projector", "start_thread", "status",
           "wait_for_position"]

Progress = Callable[[int, int], None]  # (events in the views, events in the log)

POLL_INTERVAL = 0.02  # seconds between polls of an idle follower (PostgreSQL: NOTIFY wakes it)
BATCH = 500  # events per transaction of a follower
REBUILD_BATCH = 5000  # events per transaction of a rebuild
BULK_BATCH = 5000  # events per transaction of a follower completing unfinished views
BULK_LAG = 20_000  # a follower of unfinished views goes on in bulk while more remain


class _LostRace(Exception):
    """Another projector advanced the position first (the transaction is rolled back)."""


class Projector:
    """Applies pages of the log to the views, each event exactly once.

    `bulk` (what `rebuild` uses): pages are written without the secondary and full-text
    indexes, which `schema.finish` then builds in one pass. A follower (not `bulk`) that
    finds the views unfinished (a rebuild stopped half-way, or views dropped for a new
    schema) continues in bulk while more than `BULK_LAG` events remain, then finishes them
    before it writes anything else.
    """

    def __init__(self, app: Any, batch_size: int = BATCH, until: int | None = None,
                 bulk: bool = False, reset: bool = False) -> None:
        schema.ensure(app.db)
        self.app = app
        self.batch_size = batch_size
        self.until = until  # apply no position after this one (views as of a log position)
        self.bulk = bulk
        self.reset = reset  # the next page drops the views first and starts from position 0
        self.position = -1
        self.committed: list[tuple[int, int]] = []  # (first, last) positions this one applied
        self.lost_races = 0

    def step(self) -> int:
        """Apply the next page: the number of events, 0 when caught up, -1 when raced."""
        reset = self.reset
        with self.app.db.read() as cur:
            old = -1 if reset else read_position(cur)
            finished = schema.is_finished(cur)
            bulk = self.bulk or (not finished and tree_size(cur) - old - 1 > BULK_LAG)
            size = max(self.batch_size, BULK_BATCH) if bulk and not self.bulk else self.batch_size
            limit = size if self.until is None else min(size, self.until - old)
            records = read_records(cur, self.app, old, limit) if limit > 0 else []
        self.position = old
        if not (records or reset):
            if not (finished or self.bulk):
                schema.complete(self.app.db)
            return 0
        new = records[-1][0] if records else old
        try:
            with schema_lock(self.app.db) if reset else nullcontext(), \
                    self.app.db.tx() as cur:
                if reset:
                    schema.drop_views(cur)  # position -1, empty tables
                if records and not advance(cur, old, new):
                    raise _LostRace
                if bulk:
                    schema.start_bulk(cur)
                else:
                    schema.finish(cur)  # nothing to do unless the views are unfinished
                view = AllegationsView(cur, bulk, self.app.mapper)
                view.apply_all(records)
                view.flush()
                if self.bulk and len(records) < limit:
                    schema.finish(cur)  # the end of the log, for now: one commit fewer
        except _LostRace:
            self.lost_races += 1
            return -1
        self.reset = False
        self.position = new
        if records:
            self.committed.append((old + 1, new))
        return len(records)

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply pages until the views hold the whole log; returns events applied here."""
        applied = 0
        total = log_size(self.app)
        if self.until is not None:
            total = min(total, self.until + 1)
        while True:
            n = self.step()
            if n == 0:
                return applied
            applied += max(n, 0)
            if progress is not None:
                total = max(total, self.position + 1)
                progress(self.position + 1, total)


def rebuild(app: Any, batch_size: int = REBUILD_BATCH, progress: Progress | None = None,
            until: int | None = None) -> int:
    """Drop the views and refill them from position 0 (to `until`); returns events applied.

    The pages go in without secondary or full-text indexes (each page with its position, as
    always); the indexes are built at the end, in one transaction. Stopped half-way, the
    views are left unfinished, and a projector (or another rebuild) completes them.
    """
    applied = Projector(app, batch_size, until, bulk=True, reset=True).catch_up(progress)
    schema.complete(app.db)  # unless the last page did
    return applied


@contextmanager
def _waiter(app: Any, stop: threading.Event, interval: float) -> Iterator[Callable[[], object]]:
    """A wait of at most `interval` that ends early on stop (and on PostgreSQL, on NOTIFY)."""
    if app.db.dialect != "postgres":
        yield lambda: stop.wait(interval)
        return
    with app.recorder.datastore.get_connection() as conn:
        conn.execute(f'LISTEN "{app.recorder.channel_name}"')

        def wait() -> None:
            for _ in conn.notifies(timeout=interval, stop_after=1):
                pass

        try:
            yield wait
        finally:
            conn.execute("UNLISTEN *")


HEAD_INTERVAL = 2.0  # seconds between checks for a grown log to sign (SPEC: within 10 s)


def run_projector(services: Any, stop_event: threading.Event,
                  poll_interval: float = POLL_INTERVAL, batch_size: int = BATCH) -> None:
    """Follow the log until `stop_event` is set, signing a tree head whenever it grew.

    Failures are logged and retried.
    """
    app = services.app
    projector: Projector | None = None
    failures = 0
    next_head = 0.0
    while not stop_event.is_set():
        try:
            if projector is None:
                projector = Projector(app, batch_size)
            with _waiter(app, stop_event, poll_interval) as wait:
                while not stop_event.is_set():
                    n = projector.step()
                    failures = 0
                    if time.monotonic() >= next_head and getattr(services, "heads", None):
                        services.heads.issue()  # signs only when the log grew
                        next_head = time.monotonic() + HEAD_INTERVAL
                    if n == 0:
                        wait()
        except Exception:  # keep following; /readyz and /metrics show the lag
            failures += 1
            delay = min(5.0, poll_interval * 2 ** failures)
            log.exception("projector step failed (attempt %d); retrying in %.1f s",
                          failures, delay)
            stop_event.wait(delay)


def start_thread(services: Any, poll_interval: float = POLL_INTERVAL, batch_size: int = BATCH
                 ) -> tuple[threading.Thread, threading.Event]:
    """Run the projector in a daemon thread (embedded set-up); set the event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=run_projector, name="projector", daemon=True,
                              args=(services, stop, poll_interval, batch_size))
    thread.start()
    return thread, stop


def status(app: Any) -> dict[str, Any]:
    """Position, log size, lag and row count of the views, and whether they are indexed
    (False while a rebuild fills them, or after one stopped half-way)."""
    schema.ensure(app.db)
    with app.db.read() as cur:
        position = read_position(cur)
        rows = int(cur.scalar("SELECT COUNT(*) FROM allegation_list"))
        indexed = schema.is_finished(cur)
    size = log_size(app)
    return {"projection": schema.PROJECTION, "position": position, "log_size": size,
            "lag": max(0, size - (position + 1)), "allegations": rows,
            "schema_version": schema.SCHEMA_VERSION, "indexed": indexed}


def lag(app: Any) -> dict[str, int]:
    """Log size, views position and lag (events not yet in the views)."""
    position = current_position(app.db)
    size = log_size(app)
    return {"position": position, "log_size": size, "lag": max(0, size - (position + 1))}
