"""`tracker projections rebuild|status` and `tracker projector` (follow the log until stopped)."""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import click

from tracker import config as tracker_config
from tracker.bootstrap import Tracker, build
from tracker.projections import rebuild, run_projector, status
from tracker.projections.runner import BATCH as DEFAULT_BATCH
from tracker.projections.runner import POLL_INTERVAL as DEFAULT_POLL
from tracker.projections.runner import REBUILD_BATCH


def _services() -> Tracker:
    return build(tracker_config.from_env())


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class EventsPerSecond(ProgressColumn):
        """Events applied per second."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            if speed is None and task.elapsed:
                speed = task.completed / task.elapsed
            return Text("? events/s" if speed is None else f"{speed:,.0f} events/s",
                        style="progress.data.speed")

    return EventsPerSecond()


def projections_rebuild(batch_size: int) -> None:
    """Drop the views and rebuild them from the whole event log, with a progress bar."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    t = _services()
    try:
        columns = (TextColumn("[progress.description]{task.description}"), BarColumn(),
                   MofNCompleteColumn(), _rate_column(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task("rebuilding views", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            applied = rebuild(t.app, batch_size=batch_size, progress=progress)
        now = status(t.app)
        click.echo(f"rebuilt the views from {applied} event(s); they include positions 0 to "
                   f"{now['position']} ({now['allegations']} allegation(s))")
    finally:
        t.close()


def projections_status(as_json: bool) -> None:
    """Where the views are: position, log size and lag."""
    t = _services()
    try:
        now = status(t.app)
    finally:
        t.close()
    if as_json:
        click.echo(json.dumps(now))
        return
    included = "none" if now["position"] < 0 else f"0 to {now['position']}"
    indexed = ("yes" if now["indexed"] else
               "no (a rebuild is filling the views, or stopped half-way: the projector or "
               "another rebuild completes them)")
    click.echo(f"views include positions: {included}\nlog size: {now['log_size']} event(s)\n"
               f"lag: {now['lag']} event(s)\nallegations in views: {now['allegations']}\n"
               f"indexed: {indexed}")


def projector(poll_interval: float, batch_size: int) -> None:
    """Follow the event log into the views until SIGTERM or SIGINT (finishes the page first)."""
    t = _services()
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        click.echo(f"received {signal.Signals(signum).name}; stopping after this page", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"projector following the log (poll every {poll_interval:g} s, "
               f"pages of {batch_size})", err=True)
    try:
        run_projector(t, stop, poll_interval=poll_interval, batch_size=batch_size)
    finally:
        t.close()
    click.echo("projector stopped", err=True)


def register(main: click.Group) -> None:
    """Add the `projections` group and the `projector` command to the CLI."""

    @main.group(cls=type(main))
    def projections() -> None:
        """Views built from the event log (allegation list, statistics, queues)."""

    batch = click.option("--batch-size", default=DEFAULT_BATCH, show_default=True,
                         type=click.IntRange(1, 10_000), help="Events per transaction.")
    projections.command("rebuild")(
        click.option("--batch-size", default=REBUILD_BATCH, show_default=True,
                     type=click.IntRange(1, 10_000), help="Events per transaction.")(
            projections_rebuild))
    projections.command("status")(
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(
            projections_status))
    main.command("projector")(
        click.option("--poll-interval", default=DEFAULT_POLL, show_default=True,
                     type=click.FloatRange(0.01, 60), help="Seconds between polls when idle.")(
            batch(projector)))
