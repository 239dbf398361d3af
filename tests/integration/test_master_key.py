"""A lost or wrong master key stops the tracker with a clear message instead of serving garbage."""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import replace

import pytest

from tests.conftest import REPORT
from tracker.bootstrap import build
from tracker.domain.errors import MasterKeyError


def _with_data(config):
    t = build(config)
    monitor, _ = t.users.add("M", "monitor", "org")
    t.app.submit(monitor, REPORT, "r1")
    t.close()


def test_the_key_file_is_created_private_on_first_run(config):
    build(config).close()
    mode = stat.S_IMODE(os.stat(config.data_dir / "master.key").st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(config.data_dir / "signing.key").st_mode) == 0o600


def test_a_lost_key_file_is_reported_at_start_up(config):
    _with_data(config)
    (config.data_dir / "master.key").unlink()
    with pytest.raises(MasterKeyError, match="missing"):
        build(config)
    assert not (config.data_dir / "master.key").exists()  # no new key silently made


def test_a_wrong_key_is_refused(config):
    _with_data(config)
    wrong = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(MasterKeyError, match="does not match"):
        build(replace(config, master_key=wrong))


def test_a_malformed_key_is_refused(config):
    with pytest.raises(MasterKeyError, match="base64"):
        build(replace(config, master_key="not base64!"))
    with pytest.raises(MasterKeyError, match="32 bytes"):
        build(replace(config, master_key=base64.b64encode(b"short").decode()))


def test_the_key_from_the_environment_works_across_restarts(config):
    key = base64.b64encode(os.urandom(32)).decode()
    cfg = replace(config, master_key=key)
    _with_data(cfg)
    t = build(cfg)
    admin, _ = t.users.add("A", "admin", "hq")
    with t.app.db.read() as cur:
        aid = cur.scalar("SELECT allegation_id FROM audit_leaves WHERE position = 0")
    assert t.app.get(admin, aid)["protected"]["victim_names"] == REPORT["protected"][
        "victim_names"]
    t.close()
