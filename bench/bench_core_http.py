"""Rows 1 and 5: HTTP submissions/s and latency under gunicorn, and an API worker's memory."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.harness import Row, progress, quantile, report, step
from bench.harness_http import Outcome, Request, Server, drive, peak_rss_kib

GROUP = "1 http"
CLIENTS = 4


def prepare_tracker(data_dir: Path) -> str:
    """Create the schema, keys and a monitor in `data_dir`; return the monitor's token."""
    from tracker.bootstrap import build
    from tracker.config import Config

    services = build(Config(data_dir=data_dir, write_rate=0, log_origin="bench"))
    try:
        _user, token = services.users.add("Bench Monitor", "monitor", "bench-ngo")
    finally:
        services.close()
    return token


def tracker_env(data_dir: Path) -> dict[str, str]:
    """The environment of a tracker gunicorn on the embedded default (SQLite)."""
    return {"TRACKER_DATA_DIR": str(data_dir), "TRACKER_WRITE_RATE": "0",
            "TRACKER_LOG_ORIGIN": "bench"}


@contextmanager
def servers(tmp: Path, workers: int, baseline: bool = True) -> Iterator[dict[str, Any]]:
    """The tracker's gunicorn (and the baseline's), started and stopped."""
    token = prepare_tracker(tmp / "tracker")
    started: dict[str, Any] = {"token": token}
    try:
        started["tracker"] = Server("api:create_app()", tracker_env(tmp / "tracker"), workers,
                                    tmp / "tracker.log")
        if baseline:
            from bench.bench_core_baseline import DDL, connect

            db = tmp / "baseline.sqlite3"
            conn = connect(str(db))
            conn.execute(DDL)
            conn.close()
            started["baseline"] = Server("bench.bench_core_baseline:create_app()",
                                         {"BENCH_BASELINE_DB": str(db)}, workers,
                                         tmp / "baseline.log")
        for name in ("tracker", "baseline"):
            if name in started:
                started[name].wait_ready()
        yield started
    finally:
        for name in ("tracker", "baseline"):
            if name in started:
                started[name].stop()


def _submission(token: str) -> Request:
    return Request("POST", "/v1/allegations", json.dumps(report()).encode(),
                   {"Authorization": f"Bearer {token}"})


def _bad(o: Outcome) -> str:
    other = {s: n for s, n in o.statuses.items() if not 200 <= s < 300}
    text = f"; non-2xx {other}" if other else ""
    return text + (f"; {o.errors} connection errors" if o.errors else "")


def run(size: dict[str, Any]) -> list[Row]:
    """Peak submissions/s of tracker and baseline (alternating windows), then latency at 80%."""
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-http-") as t, \
            servers(Path(t), workers) as s:
        reqs = {"tracker": _submission(s["token"]), "baseline": _submission("")}
        peak: dict[str, list[Outcome]] = {"tracker": [], "baseline": []}
        for rnd in range(size["http_rounds"]):
            order = ["tracker", "baseline"] if rnd % 2 == 0 else ["baseline", "tracker"]
            for name in order:
                warm = size["http_warm"] if rnd < 2 else 0.0
                with step(f"row 1: {name} closed loop, round {rnd + 1}"):
                    peak[name].append(drive(s[name].port, reqs[name], CLIENTS,
                                            size["http_window"], warm))
        rate = {n: sum(o.ok for o in v) / sum(o.seconds for o in v) for n, v in peak.items()}
        # One offered load for both: 80% of the tracker's peak, a rate both can sustain, so
        # the difference is the latency the tracker adds (not a queue on an overloaded side).
        offered = 0.8 * rate["tracker"]
        lat: dict[str, Outcome] = {}
        for name in ("tracker", "baseline"):
            with step(f"row 1: {name} open loop at {offered:.0f}/s"):
                lat[name] = drive(s[name].port, reqs[name], CLIENTS, size["http_open"], 0.5,
                                  rate=offered)
    notes = {n: _bad(peak[n][0]) + _bad(lat[n]) for n in lat}
    ms = {n: [x * 1000 for x in o.latencies] for n, o in lat.items()}
    achieved = ", ".join(f"{n} answered {o.rate:.0f}/s" for n, o in lat.items())
    return [
        Row(GROUP, f"HTTP submissions/s, gunicorn {workers} workers, SQLite", rate["tracker"],
            "/s", rate["baseline"], "Flask + same schema + 1 sqlite3 row", ">= 0.6",
            f"closed loop, {CLIENTS} keep-alive client processes{notes['tracker']}"
            f"{notes['baseline']}"),
        Row(GROUP, f"p50 latency, open loop at {offered:.0f}/s (80% of peak)",
            quantile(ms["tracker"], 0.5), "ms", quantile(ms["baseline"], 0.5),
            "baseline app, same rate", "", achieved),
        Row(GROUP, f"p99 latency, open loop at {offered:.0f}/s (80% of peak)",
            quantile(ms["tracker"], 0.99), "ms", quantile(ms["baseline"], 0.99),
            "baseline app, same rate", "", f"n={len(ms['tracker'])}/{len(ms['baseline'])}"),
    ]


def run_memory(size: dict[str, Any]) -> list[Row]:
    """Peak RSS of the one API worker after N1 and after N2 submissions."""
    n1, n2 = size["mem_n1"], size["mem_n2"]
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as t, \
            servers(Path(t), 1, baseline=False) as s:
        server: Server = s["tracker"]
        pid = server.worker_pids()[0]
        req = _submission(s["token"])
        sent, ok, marks, rates = 0, 0, {}, []
        for target in (n1, n2):
            while sent < target:
                chunk = min(target - sent, 5000)
                outcome = drive(server.port, req, 2, count=chunk)
                ok += outcome.ok
                sent += chunk
                rates.append(outcome.rate)
                progress(f"row 5: {sent:,}/{n2:,} submissions ({ok:,} accepted, "
                         f"{outcome.rate:.0f}/s)")
            marks[target] = peak_rss_kib(pid)
    (h1, _r1), (h2, r2) = marks[n1], marks[n2]
    return [Row("5 memory", f"API worker peak RSS after {n2:,} submissions", h2 / 1024, "MiB",
                h1 / 1024, f"after {n1:,}", "<= 1.5",
                f"RSS now {r2 / 1024:.0f} MiB; {ok:,}/{sent:,} accepted; 1 gunicorn worker; "
                f"{rates[-1]:.0f}/s in the last chunk, {max(rates):.0f}/s at best")]
