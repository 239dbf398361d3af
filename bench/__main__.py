"""`python -m bench --size small|full`: one table, every figure beside its baseline.

Writes bench/results.json. Speed is informational: the exit status is non-zero only when a
benchmark crashed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import SIZES, Row, crashed, progress, table, write_results

Step = tuple[str, str, Callable[[dict[str, Any], dict[str, Any]], list[Row]]]


def _http(size: dict[str, Any], _ctx: dict[str, Any]) -> list[Row]:
    from bench import bench_core_http

    return bench_core_http.run(size)


def _sqlite(size: dict[str, Any], ctx: dict[str, Any]) -> list[Row]:
    from bench import bench_core_store

    rows, ctx["events"] = bench_core_store.run_sqlite(size)
    return rows


def _postgres(size: dict[str, Any], _ctx: dict[str, Any]) -> list[Row]:
    from bench import bench_core_store

    return bench_core_store.run_postgres(size)


def _read(size: dict[str, Any], _ctx: dict[str, Any]) -> list[Row]:
    from bench import bench_core_read

    return bench_core_read.run(size)


def _memory(size: dict[str, Any], _ctx: dict[str, Any]) -> list[Row]:
    from bench import bench_core_http

    return bench_core_http.run_memory(size)


def _audit(size: dict[str, Any], ctx: dict[str, Any]) -> list[Row]:
    from bench import bench_core_audit, bench_core_store

    events = ctx.get("events") or bench_core_store.capture_events()
    return bench_core_audit.run_verify(size, events) + bench_core_audit.run_proofs(size)


def _external(module: str, group: str) -> Callable[[dict[str, Any], dict[str, Any]], list[Row]]:
    def call(size: dict[str, Any], _ctx: dict[str, Any]) -> list[Row]:
        from bench import bench_core_external

        return bench_core_external.run(module, group, size["name"])

    return call


STEPS: list[Step] = [
    ("1", "HTTP submissions/s and latency", _http),
    ("2", "application appends/s, SQLite", _sqlite),
    ("3", "PostgreSQL, 8 writers", _postgres),
    ("4", "read of one allegation", _read),
    ("5", "API worker memory", _memory),
    ("6", "audit verification and proofs", _audit),
    ("7", "projections", _external("bench.bench_projections", "7 projections")),
    ("7", "notifications", _external("bench.bench_notifications", "7 notifications")),
]


def main(argv: list[str] | None = None) -> int:
    """Run the chosen rows, print the table, write results.json; 1 if any benchmark crashed."""
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--only", default="", help="comma-separated row numbers, e.g. 2,6")
    p.add_argument("--output", type=Path, default=Path(__file__).with_name("results.json"))
    args = p.parse_args(argv)
    size = {**SIZES[args.size], "name": args.size}
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    rows: list[Row] = []
    ctx: dict[str, Any] = {}
    failed = False
    start = time.monotonic()
    for number, title, fn in STEPS:
        if only and number not in only:
            continue
        progress(f"== row {number}: {title} ({args.size})")
        try:
            rows.extend(fn(size, ctx))
        except Exception as e:
            traceback.print_exc()
            rows.append(crashed(number, title, e))
            failed = True
    seconds = time.monotonic() - start
    print(f"\nmake bench --size {args.size}: {seconds:.0f} s; ratio = figure / baseline, "
          "both measured in this run\n")
    print(table(rows))
    write_results(args.output, args.size, rows, seconds)
    print(f"\nwritten: {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
