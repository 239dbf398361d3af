"""Master-key rotation (`tracker keys rotate`), `tracker keys check`, and what happens to the
key table after an erasure on PostgreSQL — on a real SQLite file or a real PostgreSQL."""

from __future__ import annotations

import base64
import logging
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import PG_URL, REPORT
from tracker.bootstrap import Tracker, build
from tracker.cli import main
from tracker.config import Config
from tracker.domain.errors import MasterKeyError
from tracker.notifications.subscriptions import Subscriptions
from tracker.protection import erasure, rotation
from tracker.protection.keys import MasterKey

CLEAR = REPORT["protected"]
ERASED = {k: (["[erased]"] if isinstance(v, list) else "[erased]") for k, v in CLEAR.items()}
SECRET = "webhook-secret-" + "s" * 16


def _cli(config: Config, *args: str, **extra_env: str) -> Any:
    env = {"TRACKER_DATA_DIR": str(config.data_dir), "DATABASE_URL": PG_URL,
           "TRACKER_LOG_ORIGIN": config.log_origin, "TRACKER_MASTER_KEY": "", **extra_env}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _populate(config: Config) -> dict[str, Any]:
    """Two allegations (one assigned to a reviewer, one erased) and a webhook secret."""
    t = build(config)
    try:
        monitor, _ = t.users.add("Mona", "monitor", "org-a")
        reviewer, _ = t.users.add("Rémi", "reviewer", "un-office")
        admin, _ = t.users.add("Adam", "admin", "hq")
        kept = t.app.submit(monitor, REPORT, "r1").state["id"]
        erased = t.app.submit(monitor, REPORT, "r2").state["id"]
        t.app.assign(admin, kept, reviewer.id, "r3")
        t.app.erase(admin, erased, "Request of the witness", "r4")
        record, _ = Subscriptions(t.app.db, t.app.keys.master).create(
            reviewer, {"channel": "webhook", "url": "http://127.0.0.1:9/hook", "secret": SECRET})
        assert t.app.get(reviewer, kept)["protected"] == CLEAR
        return {"reviewer": reviewer, "admin": admin, "kept": kept, "erased": erased,
                "subscription": record.id}
    finally:
        t.close()


def _key_file(config: Config) -> Path:
    return config.data_dir / "master.key"


def _wrapped(t: Tracker, aid: str) -> bytes | None:
    with t.app.db.read() as cur:
        value = cur.scalar("SELECT wrapped FROM data_keys WHERE allegation_id = ?", (aid,))
    return None if value is None else bytes(value)


def _assert_readable(config: Config, case: dict[str, Any]) -> None:
    t = build(config)
    try:
        assert t.app.get(case["reviewer"], case["kept"])["protected"] == CLEAR
        assert t.app.get(case["admin"], case["erased"])["protected"] == ERASED
        assert t.app.keys.data_key(case["erased"]) is None
        store = Subscriptions(t.app.db, t.app.keys.master)
        assert store.get(case["subscription"]).secret == SECRET
        assert not rotation.check(t.app.keys).failures
    finally:
        t.close()


# ---- the round trip ------------------------------------------------------------------------

def test_rotation_round_trip(config: Config) -> None:
    case = _populate(config)
    old_text = _key_file(config).read_text()
    old = MasterKey.from_file(_key_file(config))

    result = _cli(config, "keys", "rotate")

    assert result.exit_code == 0, result.output
    assert "re-wrapped 1 data key(s) and 1 webhook secret(s)" in result.stdout
    assert "1 erased data key(s) stay erased" in result.stdout
    new_text = _key_file(config).read_text()
    assert new_text != old_text
    olds = list(config.data_dir.glob("master.key.old-*"))
    assert len(olds) == 1 and olds[0].read_text() == old_text
    assert not rotation.pending_path(_key_file(config)).exists()
    for path in (_key_file(config), olds[0]):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    _assert_readable(config, case)

    t = build(config)
    try:  # the old key no longer opens the new wraps; the erased key stays destroyed
        with pytest.raises(MasterKeyError):
            old.unwrap(_wrapped(t, case["kept"]) or b"", case["kept"])
        assert _wrapped(t, case["erased"]) is None
    finally:
        t.close()
    with pytest.raises(MasterKeyError, match="does not match"):
        build(replace(config, master_key=old_text.strip()))
    assert _cli(config, "audit", "verify").exit_code == 0
    assert _cli(config, "keys", "check").exit_code == 0


def test_rotation_to_a_key_given_in_a_file(config: Config, tmp_path: Path) -> None:
    case = _populate(config)
    given = MasterKey.generate()
    given.write(tmp_path / "given.key")
    result = _cli(config, "keys", "rotate", "--new-key-from", str(tmp_path / "given.key"))
    assert result.exit_code == 0, result.output
    assert MasterKey.from_file(_key_file(config)).same_as(given)
    _assert_readable(config, case)
    same = _cli(config, "keys", "rotate", "--new-key-from", str(tmp_path / "given.key"))
    assert same.exit_code == 2 and "same as the current one" in same.stderr


def test_with_the_key_in_the_environment(config: Config, tmp_path: Path) -> None:
    old = base64.b64encode(os.urandom(32)).decode()
    cfg = replace(config, master_key=old)
    case = _populate(cfg)

    refused = _cli(cfg, "keys", "rotate", TRACKER_MASTER_KEY=old)
    assert refused.exit_code == 2
    assert "TRACKER_MASTER_KEY" in refused.stderr and "--new-key-file" in refused.stderr

    out = tmp_path / "secret" / "new.key"
    result = _cli(cfg, "keys", "rotate", "--new-key-file", str(out), TRACKER_MASTER_KEY=old)
    assert result.exit_code == 0, result.output
    assert "set TRACKER_MASTER_KEY" in result.stdout
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert not _key_file(config).exists()  # the key file is not involved
    with pytest.raises(MasterKeyError, match="does not match"):
        build(cfg)
    _assert_readable(replace(config, master_key=out.read_text().strip()), case)


def test_a_process_that_outlived_the_rotation_refuses_to_wrap_with_the_old_key(
        config: Config) -> None:
    case = _populate(config)
    stale = build(config)
    try:
        assert _cli(config, "keys", "rotate").exit_code == 0
        monitor = stale.users.add("M2", "monitor", "org-a")[0]
        with pytest.raises(MasterKeyError, match="rotated"):
            stale.app.submit(monitor, REPORT, "r9")
        with pytest.raises(MasterKeyError, match="rotated"):
            stale.app.get(case["reviewer"], case["kept"])
    finally:
        stale.close()
    _assert_readable(config, case)


# ---- crash safety ----------------------------------------------------------------------------

_CRASH = """
import os, sys
from tracker import config
from tracker.bootstrap import build
from tracker.protection import rotation
setattr(rotation, sys.argv[1], lambda: os._exit(3))  # the process dies at that moment
t = build(config.from_env())
rotation.rotate(t.app.keys, t.config.data_dir / "master.key")
"""


def _crash_rotation(config: Config, at: str) -> None:
    env = {**os.environ, "TRACKER_DATA_DIR": str(config.data_dir), "DATABASE_URL": PG_URL,
           "TRACKER_LOG_ORIGIN": config.log_origin}
    env.pop("TRACKER_MASTER_KEY", None)
    done = subprocess.run([sys.executable, "-c", _CRASH, at], env=env, timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == 3, done.stderr


def test_a_crash_before_the_commit_leaves_the_old_key_in_force(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    case = _populate(config)
    old_text = _key_file(config).read_text()
    _crash_rotation(config, "before_commit")
    pending = rotation.pending_path(_key_file(config))
    assert pending.exists()  # written before the transaction, never used

    with caplog.at_level(logging.WARNING):
        _assert_readable(config, case)
    assert "did not commit" in caplog.text
    assert not pending.exists()
    assert _key_file(config).read_text() == old_text
    assert _cli(config, "keys", "rotate").exit_code == 0  # and a new rotation works
    _assert_readable(config, case)


def test_a_crash_after_the_commit_is_finished_at_start_up(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    case = _populate(config)
    old_text = _key_file(config).read_text()
    _crash_rotation(config, "after_commit")
    pending = rotation.pending_path(_key_file(config))
    new_text = pending.read_text()
    assert _key_file(config).read_text() == old_text  # the database is under the .new key

    with caplog.at_level(logging.WARNING):
        _assert_readable(config, case)
    assert "finished an interrupted master-key rotation" in caplog.text
    assert _key_file(config).read_text() == new_text and not pending.exists()
    (old_copy,) = config.data_dir.glob("master.key.old-*")
    assert old_copy.read_text() == old_text


def test_no_key_that_opens_the_database_is_refused_clearly(config: Config) -> None:
    _populate(config)
    _crash_rotation(config, "after_commit")
    MasterKey.generate().write(rotation.pending_path(_key_file(config)), replace=True)
    with pytest.raises(MasterKeyError, match=r"Neither .* nor .* is the master key"):
        build(config)


def test_a_failure_inside_the_transaction_changes_nothing(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    case = _populate(config)
    old_text = _key_file(config).read_text()

    def fail() -> None:
        raise RuntimeError("simulated failure before the commit")

    monkeypatch.setattr(rotation, "before_commit", fail)
    t = build(config)
    try:
        with pytest.raises(RuntimeError, match="simulated"):
            rotation.rotate(t.app.keys, _key_file(config))
    finally:
        t.close()
    assert _key_file(config).read_text() == old_text
    assert sorted(p.name for p in config.data_dir.glob("master.key*")) == [
        "master.key", "master.key.lock"]
    _assert_readable(config, case)


def test_start_up_leaves_the_new_key_of_a_running_rotation_alone(config: Config) -> None:
    case = _populate(config)
    pending = rotation.pending_path(_key_file(config))
    with rotation.rotation_lock(_key_file(config), wait=False) as held:
        assert held
        MasterKey.generate().write(pending)
        _assert_readable(config, case)  # starts with master.key ...
        assert pending.exists()  # ... without touching the running rotation's new key
        refused = _cli(config, "keys", "rotate")  # a second rotation waits its turn
        assert refused.exit_code == 2 and "Another master-key rotation" in refused.stderr
    _assert_readable(config, case)  # once no rotation runs, the leftover is removed
    assert not pending.exists()


# ---- tracker keys check, --help --------------------------------------------------------------

def test_keys_check_passes_then_names_a_key_that_does_not_open(config: Config) -> None:
    case = _populate(config)
    ok = _cli(config, "keys", "check")
    assert ok.exit_code == 0, ok.output
    assert "OK: 1 data key(s) and 1 webhook secret(s)" in ok.stdout and "1 erased" in ok.stdout

    t = build(config)
    try:
        with t.app.db.tx() as cur:
            cur.execute("UPDATE data_keys SET wrapped = ? WHERE allegation_id = ?",
                        (os.urandom(60), case["kept"]))
    finally:
        t.close()
    failed = _cli(config, "keys", "check")
    assert failed.exit_code == 1
    assert f"FAILED: the data key of allegation {case['kept']} does not open" in failed.stderr
    rotate = _cli(config, "keys", "rotate")  # nothing is rotated over a broken key
    assert rotate.exit_code == 2 and case["kept"] in rotate.stderr
    assert list(config.data_dir.glob("master.key.*")) == [config.data_dir / "master.key.lock"]


def test_help(config: Config) -> None:
    for args in (["keys", "--help"], ["keys", "rotate", "--help"], ["keys", "check", "--help"]):
        result = _cli(config, *args)
        assert result.exit_code == 0, args
        assert "Usage:" in result.stdout
    assert "--new-key-file" in _cli(config, "keys", "rotate", "--help").stdout


# ---- erasure on PostgreSQL -------------------------------------------------------------------

def _table_stats() -> dict[str, Any]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(PG_URL, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute("SELECT vacuum_count, last_vacuum, n_dead_tup FROM pg_stat_user_tables"
                           " WHERE relname = 'data_keys'").fetchone()
    assert row is not None
    return row


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs TRACKER_TEST_DATABASE_URL")
def test_erasure_vacuums_the_key_table_on_postgres(services: Tracker) -> None:
    monitor, _ = services.users.add("M", "monitor", "org-a")
    admin, _ = services.users.add("A", "admin", "hq")
    aid = services.app.submit(monitor, REPORT, "r1").state["id"]
    before = _table_stats()
    services.app.erase(admin, aid, "Request of the victim", "r2")
    after = _table_stats()
    assert after["vacuum_count"] > before["vacuum_count"]
    assert after["last_vacuum"] is not None
    assert after["n_dead_tup"] == 0  # the row version with the wrapped key is gone


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs TRACKER_TEST_DATABASE_URL")
def test_a_vacuum_that_cannot_run_never_fails_the_erasure(
        services: Tracker, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import psycopg

    monitor, _ = services.users.add("M", "monitor", "org-a")
    admin, _ = services.users.add("A", "admin", "hq")
    aid = services.app.submit(monitor, REPORT, "r1").state["id"]
    monkeypatch.setattr(erasure, "VACUUM_LOCK_TIMEOUT", 0.3)
    with psycopg.connect(PG_URL) as blocker, caplog.at_level(logging.WARNING):
        # Holds the lock VACUUM needs (writes still pass).
        blocker.execute("LOCK TABLE data_keys IN SHARE UPDATE EXCLUSIVE MODE")
        services.app.erase(admin, aid, "Request of the victim", "r2")
        blocker.rollback()
    assert "VACUUM data_keys after an erasure failed" in caplog.text
    assert services.app.get(admin, aid)["protected"] == ERASED
    assert services.app.keys.data_key(aid) is None


def test_a_key_wrapped_just_before_a_rotation_commits_is_refused_with_its_event(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window the start-up check cannot see: the data key is wrapped under the old master
    key, the rotation commits, then the submission commits. The submission's own transaction
    sees the new check value and rolls back: no event, no key wrapped by a retired key."""
    _populate(config)
    stale = build(config)
    try:
        monitor = stale.users.add("M2", "monitor", "org-a")[0]
        with stale.app.db.read() as cur:
            events = cur.scalar(f"SELECT COUNT(*) FROM {stale.app.db.events_table}")
        save = stale.app.save

        def rotate_then_save(*args: Any, **kwargs: Any) -> Any:
            assert _cli(config, "keys", "rotate").exit_code == 0
            return save(*args, **kwargs)

        monkeypatch.setattr(stale.app, "save", rotate_then_save)
        with pytest.raises(MasterKeyError, match="rotated"):
            stale.app.submit(monitor, REPORT, "in-the-window")
        with stale.app.db.read() as cur:
            assert cur.scalar(f"SELECT COUNT(*) FROM {stale.app.db.events_table}") == events
    finally:
        stale.close()
    fresh = build(config)
    try:
        assert _cli(config, "keys", "check").exit_code == 0  # every stored key opens
    finally:
        fresh.close()


def _sqlite_files(services: Tracker) -> list[Path]:
    path = Path(services.config.database.removeprefix("sqlite:///"))
    return [p for p in (path, Path(f"{path}-wal")) if p.exists()]


def test_erasure_leaves_no_copy_of_the_wrapped_key_in_the_sqlite_files(
        services: Tracker) -> None:
    if services.app.db.dialect != "sqlite":
        pytest.skip("the SQLite files")
    monitor, _ = services.users.add("M", "monitor", "org-a")
    admin, _ = services.users.add("A", "admin", "hq")
    aid = services.app.submit(monitor, REPORT, "r1").state["id"]
    for i in range(3):  # more page versions of the key table in the log
        services.app.submit(monitor, REPORT, f"more-{i}")
    with services.app.db.read() as cur:
        wrapped = bytes(cur.scalar("SELECT wrapped FROM data_keys WHERE allegation_id = ?",
                                   (aid,)))
    assert any(wrapped in p.read_bytes() for p in _sqlite_files(services))
    services.app.erase(admin, aid, "Request of the victim", "r2")
    assert not any(wrapped in p.read_bytes() for p in _sqlite_files(services))
    assert services.app.keys.data_key(aid) is None


def test_a_wal_that_cannot_be_truncated_never_fails_the_erasure(
        services: Tracker, caplog: pytest.LogCaptureFixture) -> None:
    if services.app.db.dialect != "sqlite":
        pytest.skip("the SQLite files")
    import sqlite3

    monitor, _ = services.users.add("M", "monitor", "org-a")
    admin, _ = services.users.add("A", "admin", "hq")
    aid = services.app.submit(monitor, REPORT, "r1").state["id"]
    reader = sqlite3.connect(services.config.database.removeprefix("sqlite:///"),
                             isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM data_keys").fetchone()  # holds an old snapshot
    with caplog.at_level(logging.WARNING):
        services.app.erase(admin, aid, "Request of the victim", "r2")
    reader.execute("COMMIT")
    reader.close()
    assert "could not be truncated" in caplog.text or "Checkpointing" in caplog.text
    assert services.app.keys.data_key(aid) is None
