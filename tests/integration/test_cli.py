"""The `tracker` command as scripts use it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.conftest import PG_URL, _reset_postgres
from tracker.cli import main


@pytest.fixture
def run(tmp_path):
    if PG_URL:
        _reset_postgres(PG_URL)
    env = {"TRACKER_DATA_DIR": str(tmp_path), "DATABASE_URL": PG_URL,
           "TRACKER_LOG_ORIGIN": "cli.test"}
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return invoke


def test_users_add_prints_the_token_alone_on_the_last_line(run):
    result = run("users", "add", "Ann Admin", "--role", "admin", "--org", "HQ")
    assert result.exit_code == 0
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("trk_") and " " not in token and len(token) >= 40
    listed = run("users", "list", "--json")
    assert json.loads(listed.stdout.splitlines()[0])["name"] == "Ann Admin"


def test_bad_input_is_one_clear_line_and_exit_2(run):
    result = run("users", "add", "  ", "--role", "admin", "--org", "HQ")
    assert result.exit_code == 2
    assert "error:" in result.stderr
    assert "Traceback" not in result.output
    bad_role = run("users", "add", "X", "--role", "king", "--org", "HQ")
    assert bad_role.exit_code == 2
    assert "king" in bad_role.stderr


def test_revoke_then_the_token_no_longer_authenticates(run, tmp_path):
    token = run("users", "add", "R", "--role", "reviewer", "--org", "UN").stdout.splitlines()[-1]
    user_id = json.loads(run("users", "list", "--json").stdout.splitlines()[0])["id"]
    assert run("users", "revoke", user_id).exit_code == 0
    from tracker.bootstrap import build
    from tracker.config import Config

    t = build(Config(data_dir=tmp_path, database_url=PG_URL))
    assert t.users.authenticate(token) is None
    t.close()
    assert run("users", "revoke", "nobody").exit_code == 2


def test_demo_is_idempotent_and_the_audit_verifies(run, tmp_path):
    first = run("demo")
    assert first.exit_code == 0
    assert "12 example allegation(s) added" in first.stdout
    assert "0 example allegation(s) added" in run("demo").stdout
    verified = run("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert "OK: 12 events verified" in verified.stdout
    head = run("audit", "checkpoint")
    kept = tmp_path / "head.json"
    kept.write_text(head.stdout)
    assert json.loads(head.stdout)["tree_size"] == 12
    assert run("audit", "verify", "--against", str(kept)).exit_code == 0
    forged = json.loads(head.stdout) | {"tree_size": 11}
    kept.write_text(json.dumps(forged))
    refused = run("audit", "verify", "--against", str(kept))
    assert refused.exit_code == 1
    assert "signature" in refused.stderr


def test_verify_exits_1_naming_the_position_after_tampering(run, tmp_path):
    run("demo")
    from tracker.bootstrap import build
    from tracker.config import Config

    t = build(Config(data_dir=tmp_path, database_url=PG_URL))
    with t.app.db.tx() as cur:
        cur.execute("UPDATE audit_leaves SET version = 7 WHERE position = 3")
    t.close()
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert "position 3" in result.stderr


def test_replay_writes_json_lines_as_of_a_position(run, tmp_path):
    run("demo")
    out = tmp_path / "replay.jsonl"
    result = run("audit", "replay", "--as-of", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5
    assert all(line["protected"] is None or "[protected]" in json.dumps(line["protected"])
               for line in lines)
    early = run("audit", "replay", "--as-of", "2001-01-01T00:00:00Z", "--out", str(out))
    assert early.exit_code == 0
    assert out.read_text() == ""
    assert run("audit", "replay", "--as-of", "yesterday", "--out", str(out)).exit_code == 2


def test_erase_from_the_command_line(run, tmp_path):
    run("demo")
    from tracker.bootstrap import build
    from tracker.config import Config

    t = build(Config(data_dir=tmp_path, database_url=PG_URL))
    with t.app.db.read() as cur:
        rows = cur.execute("SELECT allegation_id FROM data_keys").fetchall()
    t.close()
    aid = rows[0]["allegation_id"]
    result = run("erase", aid, "--reason", "Request of the witness")
    assert result.exit_code == 0, result.output
    assert "erased personal data" in result.stdout
    assert run("audit", "verify").exit_code == 0


def test_every_command_has_help(run):
    for args in (["--help"], ["users", "--help"], ["users", "add", "--help"], ["audit", "--help"],
                 ["audit", "verify", "--help"], ["audit", "replay", "--help"], ["demo", "--help"],
                 ["erase", "--help"], ["run", "--help"], ["db", "init", "--help"],
                 ["keys", "--help"], ["keys", "rotate", "--help"], ["keys", "check", "--help"]):
        result = run(*args)
        assert result.exit_code == 0, args
        assert "Usage:" in result.stdout
