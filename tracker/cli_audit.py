"""`tracker audit ...`: verify the log, issue a signed head, replay as of a moment."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from tracker.audit.heads import verify_head
from tracker.audit.replay import replay, versions_as_of
from tracker.audit.verify import verify
from tracker.domain.errors import TrackerError


def register(main: click.Group) -> None:
    """Add the `audit` group to the CLI."""
    from tracker.cli import Group, _services

    @main.group(cls=Group)
    def audit() -> None:
        """Verify and replay the audit log; issue signed tree heads."""

    @audit.command("verify")
    @click.option("--against", "kept", type=click.Path(exists=True, dir_okay=False),
                  multiple=True, help="A tree head (JSON from /v1/audit/checkpoint) you kept; "
                                      "repeatable.")
    @click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
    def audit_verify(kept: tuple[str, ...], as_json: bool) -> None:
        """Recompute every leaf and root; exit 0 only when the whole log verifies."""
        t = _services()
        heads = t.heads.all()
        for path in kept:
            head = json.loads(Path(path).read_text())
            try:
                verify_head(head, t.heads.signer.public)
            except TrackerError as e:
                click.echo(f"FAILED: {path}: {e.detail}", err=True)
                sys.exit(1)
            heads.append(head)
        started = time.perf_counter()
        with Progress(TextColumn("verifying"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} events {task.fields[rate]}"),
                      TimeRemainingColumn(), transient=True, disable=as_json) as bar:
            task = bar.add_task("verify", total=None, rate="")

            def progress(done: int, total: int) -> None:
                rate = done / max(time.perf_counter() - started, 1e-9)
                bar.update(task, completed=done, total=total, rate=f"{rate:,.0f}/s")

            outcome = verify(t.app.db, t.heads.signer.public, heads, progress)
        elapsed = time.perf_counter() - started
        if as_json:
            click.echo(json.dumps(outcome.as_dict()))
        elif outcome.ok:
            click.echo(f"OK: {outcome.checked} events verified in {elapsed:.2f} s "
                       f"({outcome.checked / max(elapsed, 1e-9):,.0f} events/s); tree size "
                       f"{outcome.tree_size}, root {outcome.root_hash}; "
                       f"{outcome.heads_checked} signed head(s) match")
            for note in outcome.notes:
                click.echo(f"note: {note}")
        else:
            where = ("" if outcome.first_bad_position is None
                     else f" at position {outcome.first_bad_position}")
            click.echo(f"FAILED{where}: {outcome.reason}", err=True)
        sys.exit(0 if outcome.ok else 1)

    @audit.command("checkpoint")
    def audit_checkpoint() -> None:
        """Sign the current tree (if it grew) and print the latest head as JSON."""
        t = _services()
        click.echo(json.dumps(t.heads.issue(), indent=2))

    @audit.command("replay")
    @click.option("--as-of", "as_of", required=True,
                  help="An ISO 8601 time (as known then) or a log position (0-based).")
    @click.option("--out", type=click.Path(dir_okay=False, writable=True), required=True,
                  help="Where to write JSON lines (one allegation per line); '-' for stdout.")
    def audit_replay(as_of: str, out: str) -> None:
        """Write every allegation as the tracker knew it at a moment (personal data redacted)."""
        moment: datetime | int
        if as_of.isdigit():
            moment = int(as_of)
        else:
            try:
                moment = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
            except ValueError:
                raise click.BadParameter("give an ISO 8601 time such as 2019-03-23T12:00:00Z "
                                         "or a log position such as 1200") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        t = _services()
        total = len(versions_as_of(t.app, moment))
        stream = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")
        with stream, Progress(TextColumn("replaying"), BarColumn(),
                              TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn(),
                              transient=True, disable=out == "-") as bar:
            task = bar.add_task("replay", total=total)
            for state in replay(t.app, moment):
                stream.write(json.dumps(state, ensure_ascii=False) + "\n")
                bar.advance(task)
        if out != "-":
            click.echo(f"wrote {total} allegation(s) as of {as_of} to {out}", err=True)
