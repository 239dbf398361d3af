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
    start_cli,
    start_projector,
    view_position,
    views_finished,
    wait_until,
)
from tracker.bootstrap import Tracker
from tracker.config import Config
from tracker.projections import Filters, Projector, Views, rebuild, runner, schema
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


def _with_information(services: Tracker, make_user: Any) -> None:
    """Information added to allegations submitted pages earlier (documents grow later)."""
    app, reviewer = services.app, make_user("reviewer")
    ids = [r["id"] for r in view_rows_by_log(services)]
    for n, aid in enumerate(ids[:4]):
        app.add_information(reviewer.actor, aid, f"a witness came from Tessalit {n}", None,
                            None, f"i{n}")


def view_rows_by_log(services: Tracker) -> list[dict[str, Any]]:
    """Allegation ids in submission order, read from the log (not the views)."""
    with services.app.db.read() as cur:
        rows: list[dict[str, Any]] = cur.execute(
            "SELECT allegation_id AS id FROM audit_leaves WHERE version = 1"
            " AND position IS NOT NULL ORDER BY position").fetchall()
    return rows


def test_a_rebuild_stopped_half_way_is_completed_by_the_projector(
        services: Tracker, make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _story(services, make_user)
    _with_information(services, make_user)  # 28 events
    app = services.app
    project(services, batch_size=5)
    calls = {"n": 0}
    original = view_module.AllegationsView.flush

    def failing(view: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the third page of the rebuild: two were committed
            raise Injected("the rebuild stops here")
        original(view)

    monkeypatch.setattr(view_module.AllegationsView, "flush", failing)
    with pytest.raises(Injected):
        rebuild(app, batch_size=5)
    monkeypatch.setattr(view_module.AllegationsView, "flush", original)
    assert view_position(services) == 9
    assert not views_finished(services)  # rows without their indexes

    assert project(services, batch_size=5) == 18
    assert views_finished(services)
    resumed = dump_views(services)  # also checks the full-text index against the documents
    rebuild(app)
    assert dump_views(services) == resumed
    views, auditor = Views(app.db), make_user("auditor").actor
    assert len(views.list_page(auditor, Filters(q="tessalit witness")).items) == 4
    assert len(views.list_page(auditor, Filters(q="case")).items) == 6


def test_a_follower_far_behind_unfinished_views_goes_on_in_bulk_then_finishes(
        services: Tracker, make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    total = bulk_load(services, allegations=60, updates_each=2)  # 180 events
    _with_information(services, make_user)
    app = services.app
    project(services)
    with app.db.tx() as cur:
        schema.drop_views(cur)  # as for a new schema version: empty and unfinished
    monkeypatch.setattr(runner, "BULK_LAG", 50)
    monkeypatch.setattr(runner, "BULK_BATCH", 40)
    follower = Projector(app, batch_size=5)
    assert follower.step() == 40  # bulk: a big page, no indexes
    assert not views_finished(services)
    follower.catch_up()
    assert views_finished(services)
    assert view_position(services) == total + 3
    followed = dump_views(services)
    rebuild(app)
    assert dump_views(services) == followed


@pytest.mark.slow
def test_a_rebuild_killed_with_sigkill_is_completed_by_the_projector(
        services: Tracker, config: Config) -> None:
    total = bulk_load(services, allegations=800, updates_each=2)  # 2,400 events
    project(services)
    proc = start_cli(config, "projections", "rebuild", "--batch-size", "7")
    try:
        wait_until(lambda: 100 < view_position(services) < total - 1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    reached = view_position(services)
    assert reached < total - 1, "killed after the end: make the log longer"
    assert not views_finished(services)
    project(services)
    assert views_finished(services)
    resumed = dump_views(services)
    rebuild(services.app)
    assert dump_views(services) == resumed
