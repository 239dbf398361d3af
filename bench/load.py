"""`python -m bench.load`: a bounded mixed load against gunicorn + the projector, on loopback.

70% reads (by id, and the list with `min_position` of the client's last write), 20%
submissions, 10% status changes, at a fixed total rate from several client processes, for
`--seconds`. Then every acknowledged write is checked: each 2xx submission must be readable,
each acknowledged status change must be in the allegation's state, and the audit log must
verify. Exits 1 on any 5xx, connection error, lost write or failed verification.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import PG_URL, pg_scratch, pg_version, progress, quantile, report
from bench.harness_http import Server
from bench.load_client import Client, Plan, Tally
from bench.load_client import main as client_main

_FORK = mp.get_context("fork")


def _prepare(data_dir: Path, database_url: str, clients: int) -> dict[str, Any]:
    """Schema, keys and users (a monitor and a reviewer per client, one admin)."""
    from tracker.bootstrap import build
    from tracker.config import Config

    services = build(Config(data_dir=data_dir, database_url=database_url, log_origin="load"))
    try:
        users = {"admin": services.users.add("Load Admin", "admin", "load-hq")[1],
                 "clients": [(services.users.add(f"Monitor {i}", "monitor", "load-ngo")[1],
                              services.users.add(f"Reviewer {i}", "reviewer", "load-un")[1])
                             for i in range(clients)]}
    finally:
        services.close()
    return users


def _drive(port: int, users: dict[str, Any], rate: float, seconds: float) -> list[Tally]:
    clients = users["clients"]
    start, out = _FORK.Event(), _FORK.Queue()
    per = rate / len(clients)
    procs = []
    for i, (monitor, reviewer) in enumerate(clients):
        plan = Plan(port, per, seconds, monitor, reviewer, report(), seed=i,
                    offset=i / rate)
        procs.append(_FORK.Process(target=client_main, args=(plan, start, out), daemon=True))
    for p in procs:
        p.start()
    start.set()
    tallies = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(10)
    return tallies


def _check(port: int, admin: str, tallies: list[Tally]) -> dict[str, Any]:
    """Every acknowledged write is there; the audit log verifies."""
    checker = Client(Plan(port, 1, 0, admin, admin, {}, 0))
    lost: list[str] = []
    submitted = {aid: pos for t in tallies for aid, pos in t.submitted.items()}
    changed = {aid: vs for t in tallies for aid, vs in t.changed.items()}
    for aid in submitted:
        status, _h, body = checker.call("GET", f"/v1/allegations/{aid}", admin)
        if status != 200:
            lost.append(f"submission {aid}: GET answered {status}")
        elif aid in changed and (body["version"] < changed[aid][0]
                                 or (body["version"] == changed[aid][0]
                                     and body["status"] != changed[aid][1])):
            lost.append(f"status change of {aid}: acknowledged {changed[aid]}, "
                        f"stored ({body['version']}, {body['status']})")
    last = max(submitted.values(), default=-1)
    status, _h, _b = checker.call("GET", f"/v1/allegations?limit=1&min_position={last}", admin)
    views = status == 200
    status, _h, verdict = checker.call("GET", "/v1/audit/verify", admin)
    return {"lost": lost, "submitted": len(submitted), "changed": len(changed),
            "views_caught_up": views,
            "verified": status == 200 and bool(verdict and verdict.get("ok")),
            "verify": verdict}


def run_backend(name: str, database_url: str, rate: float, seconds: float, clients: int
                ) -> bool:
    """One full load run; prints its report; True when clean."""
    with tempfile.TemporaryDirectory(prefix=f"load-{name}-") as t:
        tmp = Path(t)
        users = _prepare(tmp, database_url, clients)
        env = {"TRACKER_DATA_DIR": str(tmp), "TRACKER_LOG_ORIGIN": "load"}
        if database_url:
            env["DATABASE_URL"] = database_url
        web = Server("api:create_app()", env, 0, tmp / "web.log")
        projector = Server("projector", env, 0, tmp / "projector.log",
                           command=[sys.executable, "-m", "tracker.cli", "projector"])
        try:
            web.wait_ready("/readyz")
            progress(f"{name}: {rate:g} req/s from {clients} clients for {seconds:g} s")
            tallies = _drive(web.port, users, rate, seconds)
            progress(f"{name}: checking every acknowledged write")
            checks = _check(web.port, users["admin"], tallies)
        finally:
            projector.stop()
            web.stop()
        return _report(name, rate, seconds, tallies, checks, web, projector)


def _report(name: str, rate: float, seconds: float, tallies: list[Tally],
            checks: dict[str, Any], web: Server, projector: Server) -> bool:
    kinds = sorted({k for t in tallies for k in t.statuses})
    sent = sum(t.sent for t in tallies)
    errors = [e for t in tallies for e in t.errors]
    print(f"\n== {name}: {sent} requests in {seconds:g} s (planned {rate * seconds:.0f})")
    print(f"{'kind':<8}{'n':>7}{'2xx':>7}{'4xx':>6}{'5xx':>6}{'p50 ms':>9}{'p99 ms':>9}")
    five = 0
    every: list[float] = []
    for kind in kinds:
        by = {}
        for t in tallies:
            for s, n in t.statuses.get(kind, {}).items():
                by[s] = by.get(s, 0) + n
        lat = [x * 1000 for t in tallies for x in t.latencies.get(kind, [])]
        every += lat
        count = {c: sum(n for s, n in by.items() if s // 100 == c) for c in (2, 4, 5)}
        five += count[5]
        print(f"{kind:<8}{sum(by.values()):>7}{count[2]:>7}{count[4]:>6}{count[5]:>6}"
              f"{quantile(lat, 0.5):>9.1f}{quantile(lat, 0.99):>9.1f}"
              + (f"  {dict(sorted(by.items()))}" if count[4] or count[5] else ""))
    print(f"{'all':<8}{len(every):>7}{'':>26}{quantile(every, 0.5):>9.1f}"
          f"{quantile(every, 0.99):>9.1f}")
    lost = checks["lost"]
    print(f"5xx: {five}   connection errors: {len(errors)}   lost writes: {len(lost)} "
          f"(of {checks['submitted']} submissions, {checks['changed']} status changes checked)"
          f"   views caught up: {checks['views_caught_up']}   audit verify: "
          f"{'ok' if checks['verified'] else checks['verify']}")
    for line in (lost + errors)[:10]:
        print(f"  {line}")
    clean = not five and not errors and not lost and checks["verified"] \
        and checks["views_caught_up"]
    if not clean:
        print(f"-- web log tail:\n{web.log_tail()}\n-- projector log tail:\n"
              f"{projector.log_tail()}")
    return clean


def main(argv: list[str] | None = None) -> int:
    """Run on SQLite, then on PostgreSQL when reachable; 1 on any 5xx or lost write."""
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    p.add_argument("--seconds", type=float, default=60.0, help="duration of the load")
    p.add_argument("--rate", type=float, default=50.0, help="requests per second, in total")
    p.add_argument("--clients", type=int, default=4, help="client processes")
    p.add_argument("--backend", choices=("all", "sqlite", "postgres"), default="all",
                   help="all: SQLite, and PostgreSQL when reachable")
    a = p.parse_args(argv)
    ok = True
    if a.backend in ("all", "sqlite"):
        ok &= run_backend("SQLite", "", a.rate, a.seconds, a.clients)
    if a.backend in ("all", "postgres"):
        if pg_version() is None:
            print(f"\n== PostgreSQL: unreachable at {PG_URL.rsplit('/', 1)[0]}; skipped")
            ok &= a.backend != "postgres"
        else:
            with pg_scratch("tracker_load") as url:
                ok &= run_backend("PostgreSQL", url, a.rate, a.seconds, a.clients)
    print("\nload: " + ("clean (no 5xx, no lost write)" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
