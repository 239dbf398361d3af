"""Row 4: p99 of reading one allegation with a short and a long history (snapshots every 50)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import Row, quantile, step

GROUP = "4 read"


def _grow(services: Any, reviewer: Any, aid: str, events: int) -> None:
    """Add reviewer comments until the allegation has `events` events.

    The aggregate's own command and the application's save, 50 events per transaction:
    the stored history (and any snapshot at each 50th version) is what one comment per
    request would leave, built in a fraction of the time.
    """
    from uuid import UUID

    from tracker.domain.values import Provenance
    from tracker.persistence.write import WriteContext

    app = services.app
    allegation = app.repository.get(UUID(aid))
    while allegation.version < events:
        for n in range(allegation.version, min(events, allegation.version + 50)):
            allegation.comment(f"Comment {n}: the source was called back and confirmed the "
                               "account.", Provenance.of(reviewer, f"c{n}"))
        app.save(allegation, write=WriteContext())


def _sample(client: Any, headers: dict[str, str], paths: list[str], samples: int
            ) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Interleaved GETs of each path: latencies (ms) and response sizes."""
    times: dict[str, list[float]] = {p: [] for p in paths}
    sizes: dict[str, int] = {}
    for _ in range(samples):
        for p in paths:
            t0 = time.perf_counter()
            r = client.get(p, headers=headers)
            times[p].append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"GET {p} answered {r.status_code}")
            sizes[p] = len(r.data)
    return times, sizes


def run(size: dict[str, Any]) -> list[Row]:
    """GET /v1/allegations/{id} through the Flask test client: 10 vs 500 (and 549) events.

    549 is the worst case once snapshots are taken every 50 events: 49 replayed after one.
    """
    from api import create_app
    from bench.bench_core_store import submission
    from tracker.bootstrap import build
    from tracker.config import Config

    samples = size["read_samples"]
    with tempfile.TemporaryDirectory(prefix="bench-read-") as t:
        services = build(Config(data_dir=Path(t), write_rate=0, log_origin="bench"))
        try:
            monitor, _ = services.users.add("Bench Monitor", "monitor", "bench-ngo")
            reviewer, token = services.users.add("Bench Reviewer", "reviewer", "bench-un")
            body = submission()
            short = services.app.submit(monitor, body, "short").state["id"]
            long = services.app.submit(monitor, body, "long").state["id"]
            with step("row 4: growing histories to 10 and 500 events"):
                _grow(services, reviewer, short, 10)
                _grow(services, reviewer, long, 500)
            client = create_app(services=services).test_client()
            headers = {"Authorization": f"Bearer {token}"}
            a, b = f"/v1/allegations/{short}", f"/v1/allegations/{long}"
            _sample(client, headers, [a, b], 20)  # warm-up
            with step(f"row 4: {samples} interleaved reads of each"):
                first, sizes = _sample(client, headers, [a, b], samples)
            again = max(50, samples // 2)
            with step(f"row 4: 49 more events, {again} reads of each again"):
                _grow(services, reviewer, long, 549)
                second, sizes2 = _sample(client, headers, [a, b], again)
        finally:
            services.close()
    p99 = {k: quantile(v, 0.99) for k, v in first.items()}
    p99b = {k: quantile(v, 0.99) for k, v in second.items()}
    p50 = {k: quantile(v, 0.5) for k, v in first.items()}
    return [
        Row(GROUP, "GET allegation p99, 500 events", p99[b], "ms", p99[a], "10 events", "<= 2",
            f"p50 {p50[b]:.1f} vs {p50[a]:.1f} ms; body {sizes[b]:,} vs {sizes[a]:,} B; "
            f"Flask test client, n={samples}"),
        Row(GROUP, "GET allegation p99, 549 events", p99b[b], "ms", p99b[a],
            "10 events", "<= 2", f"worst case with snapshots every 50; body {sizes2[b]:,} B; "
                                 f"n={again}"),
    ]
