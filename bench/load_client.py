"""One load-test client process: a fixed-rate mix of reads, submissions and status changes."""

from __future__ import annotations

import http.client
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

# The workflow steps a client walks its own allegations through (all allowed by SPEC §2).
NEXT = {"received": "under_review", "under_review": "verified", "verified": "closed",
        "closed": "under_review"}


@dataclass
class Plan:
    """What one client does."""

    port: int
    rate: float  # requests per second from this client
    seconds: float
    monitor: str  # tokens
    reviewer: str
    body: dict[str, Any]
    seed: int
    offset: float = 0.0


@dataclass
class Tally:
    """What one client saw."""

    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    submitted: dict[str, int] = field(default_factory=dict)  # id -> position (2xx only)
    changed: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (version, status)
    sent: int = 0

    def note(self, kind: str, status: int, seconds: float) -> None:
        """Count one answer."""
        by = self.statuses.setdefault(kind, {})
        by[status] = by.get(status, 0) + 1
        self.latencies.setdefault(kind, []).append(seconds)


class Client:
    """Keeps one keep-alive connection and what this client knows about its allegations."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.conn = http.client.HTTPConnection("127.0.0.1", plan.port, timeout=30)
        self.tally = Tally()
        self.known: dict[str, tuple[int, str]] = {}  # id -> (version, status)
        self.last_position = -1

    def call(self, method: str, path: str, token: str, body: Any = None
             ) -> tuple[int, dict[str, str], Any]:
        """One request; (status, headers, JSON body or None)."""
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # reconnects on the next request
            raise
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return resp.status, dict(resp.getheaders()), parsed

    def one(self) -> tuple[str, str, str, str, Any]:
        """Choose the next request: (kind, method, path, token, body)."""
        p, roll = self.plan, self.rng.random()
        if roll < 0.2 or not self.known:
            return "submit", "POST", "/v1/allegations", p.monitor, p.body
        aid = self.rng.choice(list(self.known))
        if roll < 0.3:
            version, status = self.known[aid]
            body = {"status": NEXT[status], "reason": "load test: next workflow step",
                    "expected_version": version}
            return "status", "POST", f"/v1/allegations/{aid}/status", p.reviewer, body
        if roll < 0.65:
            return "get", "GET", f"/v1/allegations/{aid}", p.monitor, None
        # Read-your-writes through the projector: waits (at most 5 s) for the last write.
        path = "/v1/allegations?limit=20"
        if self.last_position >= 0:
            path += f"&min_position={self.last_position}"
        return "list", "GET", path, p.reviewer, None

    def record(self, kind: str, status: int, headers: dict[str, str], body: Any) -> None:
        """Remember what a successful write acknowledged."""
        if not 200 <= status < 300 or kind not in ("submit", "status"):
            return
        position = int(headers.get("X-Tracker-Position", "-1"))
        self.last_position = max(self.last_position, position)
        aid, version, state = body["id"], int(body["version"]), body["status"]
        self.known[aid] = (version, state)
        if kind == "submit":
            self.tally.submitted[aid] = position
        else:
            self.tally.changed[aid] = (version, state)

    def run(self) -> Tally:
        """Send at the fixed rate until the time is up; latency counts from the planned time."""
        interval = 1.0 / self.plan.rate
        t0 = time.perf_counter() + self.plan.offset
        n = 0
        while True:
            planned = t0 + n * interval
            if planned >= t0 + self.plan.seconds:
                break
            delay = planned - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            n += 1
            kind, method, path, token, body = self.one()
            self.tally.sent += 1
            try:
                status, headers, answer = self.call(method, path, token, body)
            except (OSError, http.client.HTTPException) as e:
                self.tally.errors.append(f"{kind}: {type(e).__name__}: {e}")
                continue
            self.tally.note(kind, status, time.perf_counter() - planned)
            self.record(kind, status, headers, answer)
        self.conn.close()
        return self.tally


def main(plan: Plan, start: Any, out: Any) -> None:
    """Process entry: wait for the start signal, run, send the tally back."""
    start.wait()
    out.put(Client(plan).run())
