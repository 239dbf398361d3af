"""Projectors started at once (threads, processes) apply each event exactly once between them."""

from __future__ import annotations

import signal
import threading
from typing import Any

from tests.integration.conftest_projections import (
    bulk_load,
    dump_views,
    report,
    start_projector,
    view_position,
    views_finished,
    wait_until,
)
from tracker.bootstrap import Tracker
from tracker.config import Config
from tracker.projections import Projector, rebuild, run_projector


def _covered_once(ranges: list[tuple[int, int]], size: int) -> bool:
    positions = [p for first, last in ranges for p in range(first, last + 1)]
    return sorted(positions) == list(range(size))


def test_two_projector_threads_share_the_log_without_applying_an_event_twice(
        services: Tracker, make_user: Any) -> None:
    total = bulk_load(services, allegations=150, updates_each=2)
    monitor = make_user("monitor")
    projectors = [Projector(services.app, batch_size=b) for b in (3, 4)]
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def follow(p: Projector) -> None:
        start.wait()
        try:
            for _ in range(3):
                p.catch_up()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=follow, args=(p,)) for p in projectors]
    for t in threads:
        t.start()
    start.wait()
    for n in range(10):  # the log grows while they follow it
        services.app.submit(monitor.actor, report(summary=f"meanwhile {n}"), f"m{n}")
    for t in threads:
        t.join(timeout=120)
    assert not errors
    last = Projector(services.app)
    last.catch_up()  # whatever was written after both finished
    ranges = [r for p in [*projectors, last] for r in p.committed]
    assert _covered_once(ranges, total + 10)
    assert all(p.committed for p in projectors), "both took part"
    followed = dump_views(services)
    rebuild(services.app)
    assert dump_views(services) == followed


def test_run_projector_threads_follow_new_events_and_stop_when_asked(
        services: Tracker, make_user: Any) -> None:
    monitor = make_user("monitor")
    stop = threading.Event()
    threads = [threading.Thread(target=run_projector, args=(services, stop, 0.02, 2))
               for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for n in range(8):
            position = services.app.submit(monitor.actor, report(summary=f"s{n}"),
                                           f"s{n}").position
        wait_until(lambda: view_position(services) == position, timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    followed = dump_views(services)
    rebuild(services.app)
    assert dump_views(services) == followed


def test_two_projector_processes_started_at_once_agree_with_a_rebuild(
        services: Tracker, config: Config) -> None:
    total = bulk_load(services, allegations=300, updates_each=2)
    view_position(services)  # create the views first: both processes then only follow
    procs = [start_projector(config, batch_size=b) for b in (5, 7)]
    try:
        wait_until(lambda: view_position(services) == total - 1, timeout=120)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=20)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not any("failed" in out for out in outputs), outputs
    followed = dump_views(services)
    rebuild(services.app)
    assert dump_views(services) == followed


def test_the_projector_signs_a_tree_head_soon_after_the_log_grows(services: Tracker) -> None:
    """SPEC §4: signed tree heads are issued within 10 s of the log growing."""
    import time as _time

    from tests.conftest import REPORT
    from tracker.projections import start_thread

    monitor, _ = services.users.add("M", "monitor", "org-a")
    thread, stop = start_thread(services, poll_interval=0.05)
    try:
        services.app.submit(monitor, REPORT, "r1")
        deadline = _time.monotonic() + 10
        head = services.heads.latest()
        while (head is None or head["tree_size"] < 1) and _time.monotonic() < deadline:
            _time.sleep(0.1)
            head = services.heads.latest()
        assert head is not None and head["tree_size"] == 1
    finally:
        stop.set()
        thread.join(5)


def test_a_rebuild_while_a_projector_follows_gives_the_rebuilt_views(
        services: Tracker, make_user: Any) -> None:
    total = bulk_load(services, allegations=200, updates_each=2)
    monitor, reviewer = make_user("monitor"), make_user("reviewer")
    stop = threading.Event()
    thread = threading.Thread(target=run_projector, args=(services, stop, 0.002, 3))
    thread.start()
    try:
        wait_until(lambda: view_position(services) == total - 1)
        rebuild(services.app, batch_size=7)  # the follower keeps taking pages meanwhile
        position = -1
        for n in range(5):
            aid = services.app.submit(monitor.actor, report(summary=f"later {n}"),
                                      f"l{n}").state["id"]
            position = services.app.add_information(reviewer.actor, aid, f"seen at Kidal {n}",
                                                    None, None, f"k{n}").position
        wait_until(lambda: view_position(services) == position)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert views_finished(services)
    followed = dump_views(services)  # also checks the full-text index against the documents
    rebuild(services.app)
    assert dump_views(services) == followed
