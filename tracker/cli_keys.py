"""`tracker keys rotate|check`: rotate the master key; check that every wrapped key opens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from tracker.domain.errors import MasterKeyError
from tracker.protection import rotation
from tracker.protection.keys import MasterKey


@contextmanager
def _bar(transient: bool) -> Iterator[rotation.Progress]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns, transient=transient) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase} keys", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield progress


def _counts(outcome: rotation.Outcome) -> str:
    return " and ".join(f"{n} {label.split(' of ')[0]}(s)"
                        for label, n in outcome.wrapped.items())


def register(main: click.Group) -> None:
    """Add the `keys` group to the CLI."""
    from tracker.cli import Group, _services

    @main.group(cls=Group)
    def keys() -> None:
        """The master key: rotate it, check that every wrapped key opens with it."""

    @keys.command("rotate")
    @click.option("--new-key-from", "new_key_from", type=click.Path(dir_okay=False,
                  exists=True, path_type=Path),
                  help="Use the key in this file (base64 of 32 random bytes, like master.key) "
                       "instead of generating one.")
    @click.option("--new-key-file", "new_key_file", type=click.Path(dir_okay=False,
                  path_type=Path),
                  help="Only with TRACKER_MASTER_KEY: write the generated new key to this file "
                       "(created with mode 0600; must not exist), for your secret store.")
    def keys_rotate(new_key_from: Path | None, new_key_file: Path | None) -> None:
        """Re-wrap every data key (and webhook secret) under a new master key.

        All keys are re-wrapped in one transaction and verified before it commits; erased keys
        stay erased. With the key file ($TRACKER_DATA_DIR/master.key), the new key replaces it
        and the old one is kept as master.key.old-<time> until you delete it. With
        TRACKER_MASTER_KEY, give --new-key-file (or --new-key-from), then put the new key in
        TRACKER_MASTER_KEY and restart every process. Stop the tracker's processes first.
        """
        t = _services()
        try:
            from_env = bool(t.config.master_key)
            if from_env and new_key_file is None and new_key_from is None:
                raise MasterKeyError(
                    "The master key comes from TRACKER_MASTER_KEY, so the tracker cannot store "
                    "the new one: run `tracker keys rotate --new-key-file FILE` (or "
                    "--new-key-from FILE with a key you made), then set TRACKER_MASTER_KEY to "
                    "the key in FILE and restart every process.")
            if not from_env and new_key_file is not None:
                raise MasterKeyError(
                    "--new-key-file is for a master key given in TRACKER_MASTER_KEY; with the "
                    "key file the new key replaces master.key (the old one is kept beside it).")
            if new_key_file is not None and new_key_from is not None:
                raise MasterKeyError("Give --new-key-file or --new-key-from, not both.")
            new = None if new_key_from is None else MasterKey.from_file(new_key_from)
            path = t.config.data_dir / "master.key"
            with _bar(transient=False) as progress:
                outcome = rotation.rotate(t.app.keys, path, new, from_environment=from_env,
                                          new_key_file=new_key_file, progress=progress)
        finally:
            t.close()
        click.echo(f"rotated the master key: re-wrapped {_counts(outcome)}, all verified "
                   f"with the new key; {outcome.erased} erased data key(s) stay erased")
        if outcome.swept:
            click.echo(f"re-wrapped {outcome.swept} key(s) written with the old key by a process "
                       "still running: restart it")
        if from_env:
            where = new_key_file or new_key_from
            click.echo(f"the new key is in {where}. Now: set TRACKER_MASTER_KEY to its content "
                       "in your secret store, restart every tracker process (until then they "
                       "refuse to start or to write: the old key no longer matches), then "
                       f"delete {where}.")
        else:
            click.echo(f"new key: {outcome.new_key_file} — back it up now, apart from the "
                       "database backups")
            click.echo(f"old key: {outcome.old_key_file} — reads only database backups taken "
                       "before now; delete it (and its backup copies) when those backups "
                       "expire. Restart every tracker process.")

    @keys.command("check")
    def keys_check() -> None:
        """Open every wrapped data key (and webhook secret) with the current master key;
        exit 1 naming the first that does not open."""
        t = _services()
        try:
            with _bar(transient=True) as progress:
                outcome = rotation.check(t.app.keys, progress)
        finally:
            t.close()
        if outcome.failures:
            click.echo(f"FAILED: the {outcome.failures[0]} does not open with the current "
                       f"master key ({len(outcome.failures)} failure(s) in all)", err=True)
            sys.exit(1)
        click.echo(f"OK: {_counts(outcome)} open with the current master key; "
                   f"{outcome.erased} erased data key(s)")
