"""The `tracker` command: users and tokens, the service, demo data, audit, projections."""

from __future__ import annotations

import json
import sys
import uuid
from importlib import resources
from typing import Any

import click

from tracker import config as tracker_config
from tracker.bootstrap import Tracker, build
from tracker.domain.errors import TrackerError
from tracker.domain.values import ROLES, Actor


def _services() -> Tracker:
    return build(tracker_config.from_env())


class Group(click.Group):
    """Turns the tracker's own errors into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TrackerError as e:
            errors = getattr(e, "errors", None)
            click.echo(f"error: {e.detail}", err=True)
            for field, messages in (errors or {}).items():
                click.echo(f"  {field}: {'; '.join(messages)}", err=True)
            sys.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Allegation Tracker: record, review and audit allegations of violations.

    Configuration comes from the environment (DATABASE_URL, REDIS_URL, TRACKER_DATA_DIR,
    PORT, HOST, ...): see the README.
    """


@main.group(cls=Group)
def users() -> None:
    """Create, list and revoke users and their tokens."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES), help="The user's one role.")
@click.option("--org", "organisation", required=True, help="The user's organisation.")
def users_add(name: str, role: str, organisation: str) -> None:
    """Create a user; the token is printed once, alone on the last line."""
    t = _services()
    user, token = t.users.add(name, role, organisation)
    click.echo(f"created {user.role} {user.name!r} of {user.organisation!r} with id {user.id}",
               err=False)
    click.echo("the token below is shown only once; it cannot be recovered:")
    click.echo(token)


@users.command("list")
@click.option("--role", type=click.Choice(ROLES), help="Only users of this role.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def users_list(role: str | None, as_json: bool) -> None:
    """List active users."""
    t = _services()
    rows = t.users.list(role)
    for row in rows:
        click.echo(json.dumps(row) if as_json else
                   f"{row['id']}  {row['role']:<8}  {row['organisation']:<20}  {row['name']}")
    if not rows and not as_json:
        click.echo("no users yet: add one with `tracker users add NAME --role ROLE --org ORG`",
                   err=True)


@users.command("token")
@click.argument("user_id")
def users_token(user_id: str) -> None:
    """Issue another token for a user (printed once, alone on the last line)."""
    t = _services()
    token = t.users.issue_token(user_id)
    click.echo("the token below is shown only once; it cannot be recovered:")
    click.echo(token)


@users.command("revoke")
@click.argument("user_or_token_id")
@click.option("--disable", is_flag=True, help="Also disable the user (by user id).")
def users_revoke(user_or_token_id: str, disable: bool) -> None:
    """Revoke a token by its id, or every token of a user by the user's id."""
    t = _services()
    if disable:
        t.users.disable(user_or_token_id)
        click.echo(f"disabled user {user_or_token_id} and revoked their tokens")
        return
    count = t.users.revoke(user_or_token_id)
    click.echo(f"revoked {count} token(s)")


@main.group(cls=Group)
def db() -> None:
    """Database set-up."""


@db.command("init")
def db_init() -> None:
    """Create the tables (also done on start-up) and the master key on first run."""
    t = _services()
    click.echo(f"schema ready in {t.config.database.split('@')[-1]}")


def _system_actor(t: Tracker, role: str = "admin") -> Actor:
    return Actor(id="cli", name="command line", role=role, organisation="(command line)")


@main.command()
@click.argument("allegation_id")
@click.option("--reason", required=True, help="Why the personal data is erased (recorded).")
def erase(allegation_id: str, reason: str) -> None:
    """Crypto-shred an allegation's personal data (records PersonalDataErased)."""
    t = _services()
    result = t.app.erase(_system_actor(t), allegation_id, reason, f"cli-{uuid.uuid4().hex}")
    click.echo(f"erased personal data of {allegation_id} at log position {result.position}")


@main.command()
@click.option("--org", "organisation", default="Demo NGO", show_default=True,
              help="Organisation of the demo monitor who submits the examples.")
def demo(organisation: str) -> None:
    """Load a dozen example allegations written from public reporting on Mali."""
    t = _services()
    text = resources.files("tracker.demo").joinpath("allegations.json").read_text("utf-8")
    reports = json.loads(text)
    monitors = [u for u in t.users.list("monitor") if u["organisation"] == organisation]
    if monitors:
        monitor = Actor(**monitors[0])
    else:
        monitor, _token = t.users.add("Demo Monitor", "monitor", organisation)
    from rich.progress import track

    created = 0
    for n, report in enumerate(track(reports, description="loading examples")):
        # The same key each run: loading twice does not duplicate.
        result = t.app.submit(monitor, report, f"demo-{n}", idempotency_key=f"demo-{n}")
        created += result.created
    click.echo(f"{created} example allegation(s) added ({len(reports) - created} already there), "
               f"submitted by {monitor.name} ({monitor.id}) of {organisation!r}")


@main.command()
def run() -> None:
    """Start the whole service: API (gunicorn), projector, relay, worker, embedded Redis."""
    import os

    # A process boundary, not an import: tracker/ stays free of web and queue frameworks.
    os.execv(sys.executable, [sys.executable, "-m", "workers.supervisor"])  # noqa: S606


def _register_optional() -> None:
    # Commands of other parts register themselves here when present.
    for module in ("tracker.cli_run", "tracker.cli_audit", "tracker.cli_projections",
                   "tracker.cli_keys"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        mod.register(main)


_register_optional()


if __name__ == "__main__":
    main()
