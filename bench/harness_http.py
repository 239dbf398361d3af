"""Real gunicorn servers on loopback and small multi-process http.client load generators."""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import ROOT

# Client processes are forked: they import nothing beyond http.client.
_CTX = mp.get_context("fork")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One gunicorn (`api.gunicorn_conf`) serving an app factory on loopback (or a command)."""

    def __init__(self, app: str, env: dict[str, str], workers: int, log: Path,
                 command: list[str] | None = None) -> None:
        self.port = free_port()
        self.log = log
        full = {k: v for k, v in os.environ.items()
                if k not in ("DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY")}
        full.update({"HOST": "127.0.0.1", "PORT": str(self.port), "PYTHONPATH": str(ROOT),
                     "PYTHONUNBUFFERED": "1", **env})
        if workers:  # else gunicorn_conf's default: one per core
            full["WEB_CONCURRENCY"] = str(workers)
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            command or [sys.executable, "-m", "gunicorn", "--config", "python:api.gunicorn_conf",
                        app],
            cwd=ROOT, env=full, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True)

    def wait_ready(self, path: str = "/healthz", timeout: float = 60.0) -> None:
        """Block until the server answers `path`, or raise with the log's tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", path)
                if conn.getresponse().status < 500:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not start: {self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        """The end of the server's output."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        """SIGTERM the master (graceful), then kill its group if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._out.close()


def peak_rss_kib(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of a process in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0])
    return values["VmHWM"], values["VmRSS"]


@dataclass
class Request:
    """What each client sends."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What the clients saw: counts by status and latencies (s) of the measured requests."""

    seconds: float
    statuses: dict[int, int]
    latencies: list[float]
    errors: int = 0

    @property
    def ok(self) -> int:
        """Answers with a 2xx status."""
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def rate(self) -> float:
        """2xx answers per second."""
        return self.ok / self.seconds if self.seconds else 0.0


def _client(port: int, req: Request, start: Any, out: Any, warm: float, seconds: float,
            count: int, interval: float, offset: float) -> None:
    """One client process: closed loop (interval 0) or open loop at a fixed interval."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", **req.headers}
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    errors = 0
    start.wait()
    t0 = time.perf_counter() + offset
    measure_from = t0 + warm
    end = measure_from + seconds
    n = 0
    while True:
        planned = t0 + n * interval if interval else time.perf_counter()
        if (count and len(latencies) >= count) or (not count and planned >= end):
            break
        delay = planned - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        n += 1
        try:
            conn.request(req.method, req.path, body=req.body or None, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            continue
        done = time.perf_counter()
        if count or planned >= measure_from:
            statuses[status] = statuses.get(status, 0) + 1
            # Open loop: from the planned send time, so a queue behind a slow answer counts.
            latencies.append(done - planned)
    conn.close()
    out.put((statuses, latencies, errors))


def drive(port: int, req: Request, procs: int, seconds: float = 0.0, warm: float = 0.0,
          rate: float = 0.0, count: int = 0) -> Outcome:
    """Run `procs` client processes: closed loop, or open loop at `rate` req/s in total.

    With `count`, each process sends count/procs requests (closed loop) and stops.
    """
    start, out = _CTX.Event(), _CTX.Queue()
    interval = procs / rate if rate else 0.0
    per = -(-count // procs) if count else 0
    workers = [_CTX.Process(target=_client, daemon=True, args=(
        port, req, start, out, warm, seconds, per, interval, i * interval / procs))
        for i in range(procs)]
    for w in workers:
        w.start()
    time.sleep(0.05)
    begun = time.perf_counter()
    start.set()
    results = [out.get(timeout=seconds + warm + 600) for _ in workers]
    elapsed = time.perf_counter() - begun
    for w in workers:
        w.join(10)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    errors = 0
    for s, lat, e in results:
        for k, v in s.items():
            statuses[k] = statuses.get(k, 0) + v
        latencies.extend(lat)
        errors += e
    return Outcome(elapsed if count else seconds, statuses, latencies, errors)
