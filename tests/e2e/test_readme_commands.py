"""The README's first command, run exactly as written on a fresh copy of the checkout.

`make test` is what CI itself runs; this test does `make run` in a copy with no virtualenv
and checks that a new user gets a working service and a token, and that Ctrl-C stops it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


def _copy_checkout(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for name in files:
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_make_run_on_a_fresh_copy(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "TRACKER_TEST_DATABASE_URL", "VIRTUAL_ENV")}
    env.update(PORT=str(port), WEB_CONCURRENCY="2")
    log = open(tmp_path / "make-run.log", "w+")
    proc = subprocess.Popen(["make", "run"], cwd=checkout, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        token = None
        deadline = time.monotonic() + 900  # a fresh virtualenv installs everything first
        while time.monotonic() < deadline and proc.poll() is None:
            log.seek(0)
            found = re.search(r"shown only this once\):\n\s+(trk_\S+)", log.read())
            if found:
                token = found.group(1)
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
            time.sleep(1)
        log.seek(0)
        output = log.read()
        assert token, output[-3000:]
        assert f"http://127.0.0.1:{port}" in output
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/me",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=5) as r:
            assert json.load(r)["role"] == "admin"
        assert (checkout / ".venv" / "bin" / "tracker").exists()
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    log.seek(0)
    assert "stopped" in log.read()[-2000:]
