"""Submitting and reading allegations through the API: the story a monitor and a reviewer live."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from tests.api.helpers import assert_problem, change, submit
from tests.conftest import event_count


def test_a_monitor_submits_and_reads_back_with_position_and_etag(client, monitor, report):
    r = client.post("/v1/allegations", json=report, headers=monitor.headers)
    assert r.status_code == 201
    body = r.get_json()
    assert r.headers["Location"] == f"/v1/allegations/{body['id']}"
    assert r.headers["X-Tracker-Position"] == "0"
    assert r.headers["ETag"] == '"1"'
    assert body["status"] == "received"
    assert body["version"] == 1
    assert body["organisation"] == "org-a"
    assert body["submitted_at"] == body["updated_at"]
    got = client.get(r.headers["Location"], headers=monitor.headers)
    assert got.status_code == 200
    assert got.headers["ETag"] == '"1"'
    assert got.get_json()["summary"] == report["summary"]
    assert got.get_json()["incident"]["location"]["country"] == "ML"


def test_positions_are_zero_based_and_contiguous_across_allegations(client, monitor, report,
                                                                     reviewer):
    a = submit(client, monitor, report)
    b = client.post("/v1/allegations", json=report, headers=monitor.headers)
    assert b.headers["X-Tracker-Position"] == "1"
    c = change(client, reviewer, a["id"], "under_review")
    assert c.headers["X-Tracker-Position"] == "2"


def test_the_server_sets_provenance_and_a_body_cannot(client, monitor, report, services):
    before = event_count(services)
    for field, value in [("actor", "someone-else"), ("recorded_at", "2001-01-01T00:00:00Z"),
                         ("organisation", "org-b"), ("status", "verified")]:
        r = client.post("/v1/allegations", json={**report, field: value}, headers=monitor.headers)
        body = assert_problem(r, 422)
        assert field in body["errors"]
    assert event_count(services) == before
    created = client.post("/v1/allegations", json=report,
                          headers={**monitor.headers, "X-Request-Id": "field-42"})
    history = services.app.history(_admin(services), created.get_json()["id"])
    assert history[0]["actor"] == monitor.id
    assert history[0]["actor_role"] == "monitor"
    assert history[0]["organisation"] == "org-a"
    assert history[0]["request_id"] == "field-42"
    recorded = datetime.fromisoformat(history[0]["recorded_at"])
    assert abs((datetime.now(UTC) - recorded).total_seconds()) < 60


def _admin(services):
    actor, _ = services.users.add("Audit helper", "admin", "hq")
    return actor


def test_same_idempotency_key_and_body_returns_the_same_allegation(client, monitor, report,
                                                                  services):
    headers = {"Idempotency-Key": "field-report-0001"}
    first = client.post("/v1/allegations", json=report, headers={**monitor.headers, **headers})
    second = client.post("/v1/allegations", json=report, headers={**monitor.headers, **headers})
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    assert second.headers["X-Tracker-Position"] == first.headers["X-Tracker-Position"]
    assert event_count(services) == 1


def test_same_idempotency_key_with_another_body_is_refused(client, monitor, report, services):
    headers = {**monitor.headers, "Idempotency-Key": "k-1"}
    client.post("/v1/allegations", json=report, headers=headers)
    r = client.post("/v1/allegations", json={**report, "summary": "other"}, headers=headers)
    assert_problem(r, 409)
    assert event_count(services) == 1


def test_two_racing_requests_with_one_key_make_one_allegation(app, monitor, report, services):
    results: list[Any] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        r = client.post("/v1/allegations", json=report,
                        headers={**monitor.headers, "Idempotency-Key": "race-1"})
        results.append((r.status_code, r.get_json()["id"]))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(code for code, _ in results) == [200, 200, 200, 201]
    assert len({aid for _, aid in results}) == 1
    assert event_count(services) == 1


def test_two_reviewers_changing_from_the_same_version_only_one_wins(app, monitor, reviewer,
                                                                    make_user, report, services):
    other = make_user("reviewer", "un-office")
    aid = submit(app.test_client(), monitor, report)["id"]
    codes: list[int] = []
    barrier = threading.Barrier(2)

    def send(user: Any, status: str) -> None:
        client = app.test_client()
        barrier.wait()
        codes.append(change(client, user, aid, status, version=1).status_code)

    threads = [threading.Thread(target=send, args=(reviewer, "under_review")),
               threading.Thread(target=send, args=(other, "rejected"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409]
    assert event_count(services) == 2


def test_a_stale_if_match_is_refused_and_records_nothing(client, monitor, reviewer, report,
                                                        services):
    aid = submit(client, monitor, report)["id"]
    assert change(client, reviewer, aid, "under_review", version=1).status_code == 200
    before = event_count(services)
    r = client.post(f"/v1/allegations/{aid}/status", headers={**reviewer.headers,
                    "If-Match": '"1"'}, json={"status": "verified", "reason": "corroborated"})
    body = assert_problem(r, 412)
    assert body["current_version"] == 2
    assert body["changed_by"] == reviewer.id
    stale = change(client, reviewer, aid, "verified", version=1)
    assert_problem(stale, 409)
    assert event_count(services) == before
    fresh = client.post(f"/v1/allegations/{aid}/status", headers={**reviewer.headers,
                        "If-Match": '"2"'}, json={"status": "verified", "reason": "corroborated"})
    assert fresh.status_code == 200
    assert fresh.get_json()["status"] == "verified"
    assert fresh.headers["ETag"] == '"3"'


def test_an_illegal_transition_names_the_allowed_statuses(client, monitor, reviewer, report,
                                                         services):
    aid = submit(client, monitor, report)["id"]
    r = change(client, reviewer, aid, "verified")
    body = assert_problem(r, 409)
    assert body["allowed"] == ["under_review", "rejected", "duplicate"]
    assert event_count(services) == 1


def test_duplicate_of_must_name_an_existing_allegation(client, monitor, reviewer, report):
    aid = submit(client, monitor, report)["id"]
    r = change(client, reviewer, aid, "duplicate",
               duplicate_of="00000000-0000-4000-8000-000000000000")
    assert "duplicate_of" in assert_problem(r, 422)["errors"]
    original = submit(client, monitor, report)["id"]
    ok = change(client, reviewer, aid, "duplicate", duplicate_of=original)
    assert ok.status_code == 200
    assert ok.get_json()["duplicate_of"] == original


def test_version_and_as_of_return_the_earlier_state(client, monitor, reviewer, report):
    aid = submit(client, monitor, report)["id"]
    change(client, reviewer, aid, "under_review")
    time.sleep(0.01)
    between = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    change(client, reviewer, aid, "verified")
    now = client.get(f"/v1/allegations/{aid}", headers=reviewer.headers).get_json()
    assert (now["status"], now["version"]) == ("verified", 3)
    v1 = client.get(f"/v1/allegations/{aid}?version=1", headers=reviewer.headers).get_json()
    assert (v1["status"], v1["version"]) == ("received", 1)
    then = client.get(f"/v1/allegations/{aid}", query_string={"as_of": between},
                      headers=reviewer.headers).get_json()
    assert (then["status"], then["version"]) == ("under_review", 2)
    before = client.get(f"/v1/allegations/{aid}", query_string={"as_of": "2001-01-01T00:00:00Z"},
                        headers=reviewer.headers)
    assert_problem(before, 404)
    assert_problem(client.get(f"/v1/allegations/{aid}?version=9", headers=reviewer.headers), 404)
    assert_problem(client.get(f"/v1/allegations/{aid}?version=x", headers=reviewer.headers), 422)
    assert_problem(client.get(f"/v1/allegations/{aid}?as_of=yesterday",
                              headers=reviewer.headers), 422)


def test_information_sources_evidence_comments_and_assignment(client, monitor, reviewer, report):
    aid = submit(client, monitor, report)["id"]
    info = client.post(f"/v1/allegations/{aid}/information", headers=monitor.headers, json={
        "text": "A second witness confirms the date.",
        "source": {"type": "witness", "reliability": "C", "credibility": 2,
                   "description": "Shopkeeper nearby"}})
    assert info.status_code == 200
    assert [s["id"] for s in info.get_json()["sources"]] == ["s1", "s2"]
    assert info.get_json()["sources"][1]["reliability"] == "C"
    ev = client.post(f"/v1/allegations/{aid}/evidence", headers=monitor.headers, json={
        "sha256": "AB" * 32, "media_type": "image/jpeg", "size": 123456,
        "description": "Photo of the checkpoint"})
    assert ev.status_code == 200
    assert ev.get_json()["evidence"][0]["sha256"] == "ab" * 32
    assert (ev.get_json()["information_total"], ev.get_json()["evidence_total"]) == (1, 1)
    assert ev.get_json()["information"][0]["source_id"] == "s2"
    assign = client.post(f"/v1/allegations/{aid}/assignment", headers=reviewer.headers,
                         json={"assignee": reviewer.id})
    assert assign.get_json()["assignee"] == reviewer.id
    bad = client.post(f"/v1/allegations/{aid}/assignment", headers=reviewer.headers,
                      json={"assignee": monitor.id})
    assert "assignee" in assert_problem(bad, 422)["errors"]
    comment = client.post(f"/v1/allegations/{aid}/comments", headers=reviewer.headers,
                          json={"text": "Ask the family for the date of arrest."})
    assert comment.get_json()["comments"][0]["text"].startswith("Ask")
    assert comment.get_json()["comments"][0]["position"] == 4
    assert comment.get_json()["comments_total"] == 1
    assert comment.get_json()["version"] == 5
    history = client.get(f"/v1/allegations/{aid}/history", headers=reviewer.headers).get_json()
    assert [h["type"] for h in history] == ["Submitted", "InformationAdded", "EvidenceAttached",
                                            "Assigned", "Commented"]
    assert [h["position"] for h in history] == [0, 1, 2, 3, 4]
    assert all(len(h["leaf_hash"]) == 44 for h in history)


def test_retried_write_with_an_idempotency_key_is_not_recorded_twice(client, monitor, reviewer,
                                                                     report, services):
    aid = submit(client, monitor, report)["id"]
    headers = {**reviewer.headers, "Idempotency-Key": "comment-7"}
    first = client.post(f"/v1/allegations/{aid}/comments", headers=headers, json={"text": "x"})
    again = client.post(f"/v1/allegations/{aid}/comments", headers=headers, json={"text": "x"})
    assert first.status_code == again.status_code == 200
    assert again.headers["X-Tracker-Position"] == first.headers["X-Tracker-Position"]
    assert event_count(services) == 2


def test_me_and_users(client, monitor, reviewer, admin):
    me = client.get("/v1/me", headers=monitor.headers).get_json()
    assert me == {"id": monitor.id, "name": "Mona Monitor", "role": "monitor",
                  "organisation": "org-a"}
    reviewers = client.get("/v1/users?role=reviewer", headers=admin.headers).get_json()
    assert [u["id"] for u in reviewers] == [reviewer.id]
    assert_problem(client.get("/v1/users?role=king", headers=admin.headers), 422)
