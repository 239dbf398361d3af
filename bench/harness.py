"""Shared pieces of `make bench`: sizes, rows with their baselines, the table, results.json."""

from __future__ import annotations

import copy
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracker.demo import SAMPLE_REPORT

ROOT = Path(__file__).resolve().parents[1]
# The server to use; each run creates (and drops) its own database there: see pg_scratch().
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/tracker_bench")

# Every knob a size changes, in one place (README: "Sizes").
SIZES: dict[str, dict[str, Any]] = {
    "small": {
        "http_warm": 1.0, "http_window": 2.0, "http_rounds": 2, "http_open": 3.0,
        "appends": 400, "pg_seconds": 2.0, "pg_single": False,
        "read_samples": 100, "mem_n1": 200, "mem_n2": 2000,
        "verify_events": 10_000, "proof_samples": 200,
    },
    "full": {
        "http_warm": 2.0, "http_window": 5.0, "http_rounds": 4, "http_open": 20.0,
        "appends": 3000, "pg_seconds": 10.0, "pg_single": True,
        "read_samples": 1000, "mem_n1": 1000, "mem_n2": 100_000,
        "verify_events": 200_000, "proof_samples": 2000,
    },
}

# A realistic submission (with personal data to seal), as a monitor sends it.
REPORT: dict[str, Any] = SAMPLE_REPORT


def report() -> dict[str, Any]:
    """A fresh copy of the benchmark's submission body."""
    return copy.deepcopy(REPORT)


@dataclass
class Row:
    """One figure beside its baseline measured in the same run, their ratio and the target."""

    group: str
    what: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_what: str = ""
    target: str = ""  # e.g. ">= 0.6": on the ratio value/baseline, or on the value if absolute
    note: str = ""
    absolute: bool = False
    figure_text: str = ""  # a figure already formatted by another module's benchmark
    crashed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """value / baseline, when both exist."""
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """Whether the ratio (or the value) meets the target (informational only)."""
        r = self.value if self.absolute else self.ratio
        if r is None or not self.target:
            return None
        op, _, num = self.target.partition(" ")
        limit = float(num)
        return r >= limit if op == ">=" else r <= limit

    def as_dict(self) -> dict[str, Any]:
        """The row for results.json."""
        return {**asdict(self), "ratio": self.ratio, "target_met": self.met}


def crashed(group: str, what: str, error: BaseException) -> Row:
    """A row standing for a benchmark that raised."""
    return Row(group, what, None, "", note=f"CRASHED: {type(error).__name__}: {error}"[:300],
               crashed=True)


def skipped(group: str, what: str, why: str) -> Row:
    """A row that could not run here (e.g. PostgreSQL unreachable)."""
    return Row(group, what, None, "", note=f"skipped: {why}")


def fmt(value: float | None, unit: str = "") -> str:
    """A number with a sensible precision and its unit."""
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 100:
        text = str(int(value))
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def table(rows: list[Row]) -> str:
    """The one table `make bench` prints."""
    head = ("row", "measure", "figure", "baseline", "ratio", "target", "note")
    lines = []
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        target = (f"{r.target} {r.unit}" if r.absolute else r.target) or "-"
        if r.met is not None:
            target += " ok" if r.met else " MISSED"
        base = fmt(r.baseline, r.unit)
        if r.baseline_what:
            base = f"{base} ({r.baseline_what})" if r.baseline is not None else r.baseline_what
        figure = r.figure_text if r.value is None and r.figure_text else fmt(r.value, r.unit)
        lines.append((r.group, r.what, figure, base, ratio, target, r.note))
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head) - 1)]
    out = []
    for n, line in enumerate([head, *lines]):
        out.append("  ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True))
                   + "  " + line[-1])
        if n == 0:
            out.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(out)


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


_T0 = time.monotonic()


def progress(message: str) -> None:
    """One line of progress on stderr, with the time since start."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(message: str) -> Iterator[None]:
    """Announce a step and how long it took."""
    start = time.monotonic()
    progress(f"{message} ...")
    yield
    progress(f"{message}: done in {time.monotonic() - start:.1f} s")


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10,
                              check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def pg_version(url: str = PG_URL) -> str | None:
    """The PostgreSQL server's version, or None when unreachable."""
    try:
        import psycopg

        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else None
    except Exception:
        return None


@contextmanager
def pg_scratch(prefix: str) -> Iterator[str]:
    """A fresh database of this process (`<prefix>_<pid>`), dropped afterwards.

    Its own name, so that two runs at once (engineers, CI) never drop each other's tables.
    """
    import psycopg

    server = PG_URL.rsplit("/", 1)[0]
    name = f"{prefix}_{os.getpid()}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": _run(["free", "-h"]),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "postgresql": pg_version(), "load_average": os.getloadavg(),
            "platform": platform.platform()}


def write_results(path: Path, size: str, rows: list[Row], seconds: float) -> None:
    """bench/results.json: the rows, the machine and the run's size and duration."""
    data = {"size": size, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(seconds, 1), "machine": machine(),
            "rows": [r.as_dict() for r in rows]}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
