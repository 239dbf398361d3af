"""The auditor's API: log pages, verification, signed heads, proofs, the standalone verifier."""

from __future__ import annotations

import base64
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from werkzeug.serving import make_server

from tests.api.helpers import assert_problem, change, submit
from tracker.audit import merkle


@pytest.fixture
def filled(client, monitor, reviewer, report):
    ids = [submit(client, monitor, report)["id"] for _ in range(3)]
    for aid in ids:
        change(client, reviewer, aid, "under_review")
    return ids


def test_only_auditors_and_admins_read_the_audit_api(client, monitor, reviewer, auditor, admin,
                                                     filled):
    for path in ("/v1/audit/log", "/v1/audit/verify", "/v1/audit/checkpoint",
                 "/v1/audit/public-key", "/v1/audit/proof/inclusion?position=0",
                 "/v1/audit/proof/consistency?from=1"):
        assert client.get(path, headers=monitor.headers).status_code == 403
        assert client.get(path, headers=reviewer.headers).status_code == 403
        assert client.get(path, headers=auditor.headers).status_code == 200, path
        assert client.get(path, headers=admin.headers).status_code == 200


def test_log_pages_in_commit_order_with_redacted_data(client, auditor, filled):
    first = client.get("/v1/audit/log?limit=4", headers=auditor.headers).get_json()
    assert [e["position"] for e in first["entries"]] == [0, 1, 2, 3]
    assert first["next_after"] == 3
    rest = client.get("/v1/audit/log?after=3&limit=200", headers=auditor.headers).get_json()
    assert [e["position"] for e in rest["entries"]] == [4, 5]
    assert rest["next_after"] is None
    submitted = first["entries"][0]
    assert submitted["type"] == "Submitted"
    assert submitted["actor_role"] == "monitor"
    assert submitted["data"]["protected"]["victim_names"] == ["[protected]"]
    assert "Zeta" not in str(first)
    assert_problem(client.get("/v1/audit/log?limit=201", headers=auditor.headers), 422)
    assert_problem(client.get("/v1/audit/log?after=x", headers=auditor.headers), 422)


def test_the_checkpoint_is_signed_over_the_c2sp_body(client, auditor, filled, services):
    head = client.get("/v1/audit/checkpoint", headers=auditor.headers).get_json()
    key = client.get("/v1/audit/public-key", headers=auditor.headers).get_json()
    assert head["tree_size"] == 6
    assert head["origin"] == "test.tracker.example"
    assert head["key_id"] == key["key_id"]
    body = f"{head['origin']}\n{head['tree_size']}\n{head['root_hash']}\n".encode()
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    public.verify(base64.b64decode(head["signature"]), body)  # raises if not valid
    assert len(base64.b64decode(key["public_key"])) == 32
    with services.app.db.read() as cur:  # issuing a head adds no event
        assert cur.scalar("SELECT COUNT(*) FROM audit_leaves") == 6


def test_history_positions_and_leaf_hashes_match_the_log(client, auditor, reviewer, filled):
    history = client.get(f"/v1/allegations/{filled[1]}/history",
                         headers=reviewer.headers).get_json()
    log = client.get("/v1/audit/log", headers=auditor.headers).get_json()["entries"]
    by_position = {e["position"]: e for e in log}
    for h in history:
        assert by_position[h["position"]]["leaf_hash"] == h["leaf_hash"]
        assert by_position[h["position"]]["version"] == h["version"]


def test_proofs_verify_against_the_signed_root(client, auditor, filled):
    head = client.get("/v1/audit/checkpoint", headers=auditor.headers).get_json()
    root = merkle.unb64(head["root_hash"])
    for position in range(6):
        p = client.get(f"/v1/audit/proof/inclusion?position={position}&tree_size=6",
                       headers=auditor.headers).get_json()
        merkle.verify_inclusion(position, 6, merkle.unb64(p["leaf_hash"]),
                                [merkle.unb64(x) for x in p["audit_path"]], root)
    c = client.get("/v1/audit/proof/consistency?from=6&to=6", headers=auditor.headers).get_json()
    assert c["consistency"] == []
    for bad in ("position=6&tree_size=6", "position=0&tree_size=7", "position=-1"):
        assert_problem(client.get(f"/v1/audit/proof/inclusion?{bad}", headers=auditor.headers),
                       422)
    for bad in ("from=0&to=3", "from=4&to=3", "from=1&to=99"):
        assert_problem(client.get(f"/v1/audit/proof/consistency?{bad}",
                                  headers=auditor.headers), 422)


def test_verify_reports_ok_then_the_first_bad_position(client, auditor, filled, services):
    ok = client.get("/v1/audit/verify", headers=auditor.headers).get_json()
    assert ok["ok"] is True
    assert ok["checked"] == ok["tree_size"] == 6
    assert len(base64.b64decode(ok["root_hash"])) == 32
    with services.app.db.tx() as cur:
        cur.execute("UPDATE audit_leaves SET topic = 'Allegation.Commented' WHERE position = 5")
    bad = client.get("/v1/audit/verify", headers=auditor.headers).get_json()
    assert bad["ok"] is False
    assert bad["first_bad_position"] == 5
    assert bad["reason"]


@pytest.fixture
def live(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _tool():
    from tools import verify_log

    return verify_log


def test_the_standalone_verifier_checks_the_real_api(live, auditor, filled, tmp_path, client,
                                                     monitor, report):
    tool = _tool()
    state = tmp_path / "state"
    args = ["--url", live, "--token", auditor.token, "--state-dir", str(state), "--full",
            "--position", "0", "--position", "5", "--quiet"]
    assert tool.main(args) == 0
    submit(client, monitor, report)  # the log grows; the kept head must still be a prefix
    assert tool.main(args) == 0
    assert (state / "head.json").exists()
