"""Personal data: encrypted at rest, clear only for the assigned reviewer and admins, erasable."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from tests.api.helpers import assert_problem, change, submit
from tracker.audit.verify import verify

SECRET_NAME = "Zeta Placeholder-Victim"
SECRETS = [SECRET_NAME, "Omega Placeholder-Witness", "+223 00 00 00 00", "Cousin of victim 1"]
CLEAR = {"victim_names": [SECRET_NAME], "witness_names": ["Omega Placeholder-Witness"],
         "contacts": ["+223 00 00 00 00"], "source_identity": "Cousin of victim 1"}
MASKED = {"victim_names": ["[protected]"], "witness_names": ["[protected]"],
          "contacts": ["[protected]"], "source_identity": "[protected]"}
ERASED = {k: (["[erased]"] if isinstance(v, list) else "[erased]") for k, v in CLEAR.items()}


@pytest.fixture
def case(client, monitor, reviewer, make_user, report):
    aid = submit(client, monitor, report)["id"]
    client.post(f"/v1/allegations/{aid}/assignment", headers=reviewer.headers,
                json={"assignee": reviewer.id})
    change(client, reviewer, aid, "under_review")
    return {"id": aid, "monitor": monitor, "assigned": reviewer,
            "other_reviewer": make_user("reviewer", "un-office"),
            "auditor": make_user("auditor", "audit"), "admin": make_user("admin", "hq")}


VIEWERS = [("monitor", MASKED), ("assigned", CLEAR), ("other_reviewer", MASKED),
           ("auditor", MASKED), ("admin", CLEAR)]


@pytest.mark.parametrize(("who", "expected"), VIEWERS)
def test_current_state_version_and_as_of(client, case, who, expected):
    user = case[who]
    aid = case["id"]
    assert client.get(f"/v1/allegations/{aid}", headers=user.headers).get_json()[
        "protected"] == expected
    assert client.get(f"/v1/allegations/{aid}?version=1", headers=user.headers).get_json()[
        "protected"] == expected
    now = datetime.now(UTC).isoformat()
    assert client.get(f"/v1/allegations/{aid}", query_string={"as_of": now},
                      headers=user.headers).get_json()["protected"] == expected


@pytest.mark.parametrize(("who", "expected"), [v for v in VIEWERS if v[0] != "monitor"])
def test_history(client, case, who, expected):
    history = client.get(f"/v1/allegations/{case['id']}/history",
                         headers=case[who].headers).get_json()
    assert history[0]["data"]["protected"] == expected


@pytest.mark.parametrize("who", ["auditor", "admin"])
def test_the_audit_log_is_always_redacted(client, case, who):
    log = client.get("/v1/audit/log", headers=case[who].headers).get_json()
    assert log["entries"][0]["data"]["protected"] == MASKED


def test_the_submitting_monitor_does_not_see_it_in_the_write_answer(client, monitor, report):
    created = client.post("/v1/allegations", json=report, headers=monitor.headers).get_json()
    assert created["protected"] == MASKED


def test_protected_strings_never_reach_the_database_file_or_the_logs(client, case, services,
                                                                      caplog, config):
    caplog.set_level(logging.DEBUG)
    client.post(f"/v1/allegations/{case['id']}/information", headers=case["monitor"].headers,
                json={"text": "Another witness.", "protected": {
                    "witness_names": ["Kappa Placeholder-Second"]}})
    services.close()
    if services.app.db.dialect == "sqlite":
        raw = b"".join(p.read_bytes() for p in config.data_dir.glob("tracker.sqlite3*"))
    else:
        import subprocess

        raw = subprocess.run(["pg_dump", "--data-only", config.database_url],
                             capture_output=True, check=True).stdout
    assert len(raw) > 10_000
    for secret in [*SECRETS, "Kappa Placeholder-Second"]:
        assert secret.encode() not in raw
        assert secret not in caplog.text


def test_erasure_shreds_for_every_role_and_version_and_the_log_still_verifies(client, case,
                                                                               services):
    aid = case["id"]
    before = client.get(f"/v1/allegations/{aid}", headers=case["admin"].headers).get_json()
    assert_problem(client.post(f"/v1/allegations/{aid}/erasure", headers=case["admin"].headers,
                               json={}), 422)
    assert_problem(client.post(f"/v1/allegations/{aid}/erasure",
                               headers=case["assigned"].headers, json={"reason": "x"}), 403)
    r = client.post(f"/v1/allegations/{aid}/erasure", headers=case["admin"].headers,
                    json={"reason": "The witness asked for erasure (ticket 12)."})
    assert r.status_code == 200
    assert r.get_json()["personal_data_erased"] is True
    for who, _ in VIEWERS:
        user = case[who]
        for query in ("", "?version=1", "?version=2"):
            got = client.get(f"/v1/allegations/{aid}{query}", headers=user.headers).get_json()
            assert got["protected"] == ERASED, (who, query)
    history = client.get(f"/v1/allegations/{aid}/history", headers=case["admin"].headers)
    assert history.get_json()[0]["data"]["protected"] == ERASED
    assert history.get_json()[-1]["type"] == "PersonalDataErased"
    after = client.get(f"/v1/allegations/{aid}", headers=case["admin"].headers).get_json()
    for field in ("summary", "description", "categories", "incident", "sources", "victims"):
        assert after[field] == before[field]
    outcome = verify(services.app.db, services.heads.signer.public, services.heads.all())
    assert outcome.ok, outcome
    again = client.post(f"/v1/allegations/{aid}/erasure", headers=case["admin"].headers,
                        json={"reason": "twice"})
    assert_problem(again, 409)
    more = client.post(f"/v1/allegations/{aid}/information", headers=case["monitor"].headers,
                       json={"text": "x", "protected": {"notes": "new secret"}})
    assert_problem(more, 409)
    with services.app.db.read() as cur:
        assert cur.scalar("SELECT wrapped FROM data_keys WHERE allegation_id = ?", (aid,)) is None
