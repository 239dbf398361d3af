"""A projector that dies at any moment resumes to exactly the views a rebuild gives."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.integration.conftest_projections import (
    bulk_load,
    dump_views,
    project,
    report,
    start_projector,
    view_position,
    wait_until,
)
from tracker.bootstrap import Tracker
from tracker.config import Config
from tracker.projections import Projector, rebuild
from tracker.projections import allegations as view_module
from tracker.projections.schema import SCHEMA_VERSION


class Injected(RuntimeError):
    """The fault a test injects between two events."""


def _story(services: Tracker, make_user: Any) -> None:
    monitor, reviewer = make_user("monitor"), make_user("reviewer")
    app = services.app
    for n in range(6):
        aid = app.submit(monitor.actor, report(summary=f"case {n}"), f"s{n}").state["id"]
        app.assign(reviewer.actor, aid, reviewer.id, f"a{n}")
        app.comment(reviewer.actor, aid, "first look", f"c{n}")
        app.change_status(reviewer.actor, aid, "under_review", "triaged", None, f"t{n}")


def test_an_exception_between_two_events_rolls_back_the_whole_page(
        services: Tracker, make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _story(services, make_user)
    project(services, batch_size=5)  # positions 0..23 applied
    app = services.app
    monitor = make_user("monitor")
    for n in range(4):
        aid = app.submit(monitor.actor, report(summary=f"late {n}"), f"l{n}").state["id"]
        app.comment(make_user("reviewer").actor, aid, "noted", f"n{n}")
    before = dump_views(services)
    calls = {"n": 0}
    original = view_module.HANDLERS["Commented"]

    def failing(view: Any, row: Any, event: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the second comment of the page: events before it were applied
            raise Injected("injected between two events")
        original(view, row, event)

    monkeypatch.setitem(view_module.HANDLERS, "Commented", failing)
    with pytest.raises(Injected):
        Projector(app, batch_size=8).step()
    assert dump_views(services) == before  # nothing of the page, not even its position

    monkeypatch.setitem(view_module.HANDLERS, "Commented", original)
    assert project(services, batch_size=8) == 8
    resumed = dump_views(services)
    rebuild(app)
    assert dump_views(services) == resumed


def test_views_of_an_older_schema_are_rebuilt_from_zero(services: Tracker,
                                                        make_user: Any) -> None:
    _story(services, make_user)
    project(services)
    expected = dump_views(services)
    with services.app.db.tx() as cur:
        cur.execute("UPDATE projection_tracking SET schema_version = ?", (SCHEMA_VERSION - 1,))
        cur.execute("DELETE FROM allegation_categories")
    assert project(services) == 24  # everything again, into fresh tables
    assert dump_views(services) == expected


@pytest.mark.slow
def test_a_projector_killed_with_sigkill_resumes_to_the_rebuilt_views(
        services: Tracker, config: Config) -> None:
    total = bulk_load(services, allegations=800, updates_each=2)  # 2,400 events
    app = services.app
    for round_ in range(3):
        proc = start_projector(config, batch_size=7)
        start = view_position(services) if round_ else -1
        try:
            wait_until(lambda s=start: view_position(services) > s + 100)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        reached = view_position(services)
        assert -1 < reached < total - 1, "killed after the end: make the log longer"
        partial = dump_views(services)
        rebuild(app, until=reached)  # what a clean run to the same position gives
        assert dump_views(services) == partial
    project(services)
    resumed = dump_views(services)
    rebuild(app)
    assert dump_views(services) == resumed
    assert view_position(services) == total - 1


@pytest.mark.slow
def test_the_projector_command_stops_cleanly_on_sigterm(services: Tracker,
                                                         config: Config) -> None:
    bulk_load(services, allegations=20, updates_each=1)
    proc = start_projector(config, batch_size=5)
    try:
        wait_until(lambda: view_position(services) == 39, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err.decode()
    assert b"projector stopped" in err
