"""Comments, added information and evidence: a bounded allegation document (totals and the
latest few) and their own keyset-paged lists, read from the event log."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.helpers import assert_problem, submit
from tests.conftest import event_count
from tests.integration.conftest_projections import project
from tracker.application import RECENT_ENTRIES
from tracker.domain.allegation import Allegation
from tracker.domain.values import Provenance

KINDS = ("comments", "information", "evidence")


def _comment(client: Any, user: Any, aid: str, text: str) -> Any:
    r = client.post(f"/v1/allegations/{aid}/comments", headers=user.headers, json={"text": text})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _add(services: Any, actor: Any, aid: str, n: int, first: int = 0) -> None:
    """`n` comments numbered from `first`, saved in one transaction (fast, same events)."""
    app = services.app
    allegation = app.repository.get(uuid.UUID(aid))
    for k in range(first, first + n):
        allegation.comment(f"comment {k}", Provenance.of(actor, f"c{k}"))
    app.save(allegation)


def _pages(client: Any, user: Any, aid: str, kind: str = "comments", **query: Any
           ) -> list[dict[str, Any]]:
    """Every page of a list, following `next_cursor`."""
    pages: list[dict[str, Any]] = []
    while True:
        r = client.get(f"/v1/allegations/{aid}/{kind}", headers=user.headers, query_string=query)
        assert r.status_code == 200, r.get_json()
        pages.append(r.get_json())
        if pages[-1]["next_cursor"] is None:
            return pages
        query["cursor"] = pages[-1]["next_cursor"]


def test_the_allegation_shows_the_latest_comments_and_how_many(client, monitor, reviewer,
                                                              report, services):
    aid = submit(client, monitor, report)["id"]
    first = _comment(client, reviewer, aid, "The family confirms the date.")
    assert first["comments_total"] == 1 and first["comments_next_cursor"] is None
    assert first["comments"] == [{
        "text": "The family confirms the date.", "version": 2,
        "recorded_at": first["updated_at"], "actor": reviewer.id, "organisation": "un-office",
        "position": 1}]
    _add(services, reviewer.actor, aid, RECENT_ENTRIES + 4, first=1)
    got = client.get(f"/v1/allegations/{aid}", headers=monitor.headers).get_json()
    assert got["comments_total"] == RECENT_ENTRIES + 5
    assert [c["text"] for c in got["comments"]] == [
        f"comment {k}" for k in range(RECENT_ENTRIES + 4, 4, -1)]  # the latest, newest first
    assert got["comments_next_cursor"]
    assert (got["information_total"], got["information"]) == (0, [])
    assert (got["evidence_total"], got["evidence"]) == (0, [])
    # The cursor in the document continues where it stops: nothing skipped, nothing twice.
    rest = client.get(f"/v1/allegations/{aid}/comments", headers=monitor.headers,
                      query_string={"cursor": got["comments_next_cursor"]}).get_json()
    assert [c["text"] for c in rest["items"]] == [
        "comment 4", "comment 3", "comment 2", "comment 1", "The family confirms the date."]
    assert rest["next_cursor"] is None


def test_the_document_stays_bounded_as_comments_accumulate(client, monitor, reviewer, report,
                                                            services):
    aid = submit(client, monitor, report)["id"]
    _add(services, reviewer.actor, aid, RECENT_ENTRIES)
    small = client.get(f"/v1/allegations/{aid}", headers=reviewer.headers)
    _add(services, reviewer.actor, aid, 130, first=RECENT_ENTRIES)  # past two snapshots
    large = client.get(f"/v1/allegations/{aid}", headers=reviewer.headers)
    assert large.get_json()["comments_total"] == RECENT_ENTRIES + 130
    assert len(large.get_json()["comments"]) == RECENT_ENTRIES
    # Only the numbers in the texts, versions and positions grow.
    assert len(large.data) - len(small.data) < 200
    state = vars(services.app.repository.get(uuid.UUID(aid)))
    assert state["comments_total"] == RECENT_ENTRIES + 130
    assert not {"comments", "information", "evidence"} & set(state)


def test_the_comments_list_pages_newest_first_to_the_end(client, monitor, reviewer, report,
                                                         services):
    aid = submit(client, monitor, report)["id"]
    _add(services, reviewer.actor, aid, 25)
    pages = _pages(client, monitor, aid, limit=10)
    assert [len(p["items"]) for p in pages] == [10, 10, 5]
    texts = [c["text"] for p in pages for c in p["items"]]
    assert texts == [f"comment {k}" for k in range(24, -1, -1)]
    positions = [c["position"] for p in pages for c in p["items"]]
    assert positions == sorted(positions, reverse=True) and len(set(positions)) == 25
    # Exactly a page's worth: the last full page says there is no more.
    exact = _pages(client, monitor, aid, limit=25)
    assert len(exact) == 1 and exact[0]["next_cursor"] is None
    assert [len(p["items"]) for p in _pages(client, monitor, aid, limit=200)] == [25]
    assert len(_pages(client, monitor, aid)[0]["items"]) == RECENT_ENTRIES  # the default limit


def test_an_allegation_without_entries_has_empty_lists(client, monitor, report):
    aid = submit(client, monitor, report)["id"]
    for kind in KINDS:
        r = client.get(f"/v1/allegations/{aid}/{kind}", headers=monitor.headers)
        assert r.status_code == 200 and r.get_json() == {"items": [], "next_cursor": None}


def test_information_and_evidence_are_listed_like_comments(client, monitor, reviewer, report):
    aid = submit(client, monitor, report)["id"]
    client.post(f"/v1/allegations/{aid}/information", headers=monitor.headers,
                json={"text": "A second witness.", "source": {
                    "type": "witness", "reliability": "C", "credibility": 2,
                    "description": "Shopkeeper"}})
    client.post(f"/v1/allegations/{aid}/information", headers=reviewer.headers,
                json={"text": "The road was closed that day."})
    client.post(f"/v1/allegations/{aid}/information", headers=reviewer.headers,
                json={"source": {"type": "media", "reliability": "B", "credibility": 2,
                                 "description": "Radio report"}})  # a source alone
    for n in range(3):
        r = client.post(f"/v1/allegations/{aid}/evidence", headers=monitor.headers, json={
            "sha256": f"{n:x}" * 64, "media_type": "image/jpeg", "size": 100 + n,
            "description": f"Photo {n}", "uri": f"https://files.example/{n}.jpg"})
        assert r.status_code == 200
    doc = r.get_json()
    assert [s["id"] for s in doc["sources"]] == ["s1", "s2", "s3"]
    assert doc["information_total"] == 2 and doc["evidence_total"] == 3
    info = _pages(client, monitor, aid, "information", limit=1)
    assert [p["items"][0]["text"] for p in info] == ["The road was closed that day.",
                                                    "A second witness."]
    assert "source_id" not in info[0]["items"][0]
    assert info[1]["items"][0]["source_id"] == "s2"
    assert info[1]["items"][0]["organisation"] == "org-a"
    assert doc["information"] == [p["items"][0] for p in info]
    evidence = _pages(client, reviewer, aid, "evidence", limit=2)
    assert [e["description"] for p in evidence for e in p["items"]] == [
        "Photo 2", "Photo 1", "Photo 0"]
    assert evidence[0]["items"][0] == {
        "sha256": "2" * 64, "media_type": "image/jpeg", "size": 102, "description": "Photo 2",
        "uri": "https://files.example/2.jpg", "version": 7, "recorded_at": doc["updated_at"],
        "actor": monitor.id, "organisation": "org-a", "position": 6}
    assert doc["evidence"] == [e for p in evidence for e in p["items"]]


def test_version_and_as_of_show_the_comments_known_then(client, monitor, reviewer, report):
    aid = submit(client, monitor, report)["id"]
    _comment(client, reviewer, aid, "first")
    time.sleep(0.01)
    between = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    _comment(client, reviewer, aid, "second")
    client.post(f"/v1/allegations/{aid}/evidence", headers=monitor.headers, json={
        "sha256": "ab" * 32, "media_type": "image/png", "size": 1, "description": "map"})
    for query in ({"version": 2}, {"as_of": between}):
        then = client.get(f"/v1/allegations/{aid}", headers=reviewer.headers,
                          query_string=query).get_json()
        assert then["version"] == 2
        assert [c["text"] for c in then["comments"]] == ["first"]
        assert (then["comments_total"], then["evidence_total"], then["evidence"]) == (1, 0, [])
    v1 = client.get(f"/v1/allegations/{aid}?version=1", headers=reviewer.headers).get_json()
    assert (v1["comments_total"], v1["comments"]) == (0, [])
    now = client.get(f"/v1/allegations/{aid}", headers=reviewer.headers).get_json()
    assert [c["text"] for c in now["comments"]] == ["second", "first"]


def test_the_lists_follow_the_same_visibility_as_the_allegation(client, make_user, monitor,
                                                                reviewer, auditor, admin,
                                                                report, services):
    aid = submit(client, monitor, report)["id"]
    _comment(client, reviewer, aid, "noted")
    outsider = make_user("monitor", "org-b")
    for kind in KINDS:
        path = f"/v1/allegations/{aid}/{kind}"
        for user in (monitor, reviewer, auditor, admin, make_user("reviewer", "org-z")):
            assert client.get(path, headers=user.headers).status_code == 200
        # Another organisation's monitor cannot tell the allegation exists.
        hidden = assert_problem(client.get(path, headers=outsider.headers), 404)
        unknown = assert_problem(client.get(f"/v1/allegations/{uuid.uuid4()}/{kind}",
                                            headers=outsider.headers), 404)
        assert hidden["title"] == unknown["title"]
        assert_problem(client.get(f"/v1/allegations/not-an-id/{kind}",
                                  headers=monitor.headers), 404)
        assert_problem(client.get(path), 401)
    before = event_count(services)
    # A page of another organisation's allegation is refused even with a valid cursor.
    _add(services, reviewer.actor, aid, 3)
    cursor = client.get(f"/v1/allegations/{aid}/comments?limit=1",
                        headers=monitor.headers).get_json()["next_cursor"]
    assert_problem(client.get(f"/v1/allegations/{aid}/comments",
                              query_string={"cursor": cursor}, headers=outsider.headers), 404)
    assert event_count(services) == before + 3  # reading records nothing


@pytest.mark.parametrize("query", [
    {"limit": "0"}, {"limit": "201"}, {"limit": "-1"}, {"limit": "ten"}, {"limit": "1.5"},
    {"cursor": ""}, {"cursor": "x" * 1001}, {"cursor": "not-a-cursor"}, {"limt": "5"},
    {"version": "1"},
])
def test_bad_parameters_get_422_naming_the_parameter(client, monitor, reviewer, report, query):
    aid = submit(client, monitor, report)["id"]
    _comment(client, reviewer, aid, "noted")
    r = client.get(f"/v1/allegations/{aid}/comments", headers=monitor.headers,
                   query_string=query)
    body = assert_problem(r, 422)
    assert set(body["errors"]) == set(query)


def test_an_altered_or_borrowed_cursor_gets_422(client, monitor, reviewer, report, services):
    aid = submit(client, monitor, report)["id"]
    other = submit(client, monitor, report)["id"]
    _add(services, reviewer.actor, aid, 3)
    _add(services, reviewer.actor, other, 3)
    for n in range(3):
        client.post(f"/v1/allegations/{aid}/evidence", headers=monitor.headers, json={
            "sha256": f"{n:x}" * 64, "media_type": "image/png", "size": 1, "description": "p"})
    cursor = client.get(f"/v1/allegations/{aid}/comments?limit=1",
                        headers=monitor.headers).get_json()["next_cursor"]
    body, _, tag = cursor.partition(".")
    altered = [
        f"{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{tag}",  # another position
        f"{body}.{tag[:-1]}{'A' if tag[-1] != 'A' else 'B'}",  # another signature
        body, f"{body}.", f".{tag}", f"{cursor}.{tag}", cursor.upper(),
    ]
    for bad in altered:
        r = client.get(f"/v1/allegations/{aid}/comments", headers=monitor.headers,
                       query_string={"cursor": bad})
        assert "cursor" in assert_problem(r, 422)["errors"], bad
    # A genuine cursor, used on another allegation's list or another kind of list.
    for path in (f"/v1/allegations/{other}/comments", f"/v1/allegations/{aid}/evidence"):
        r = client.get(path, headers=monitor.headers, query_string={"cursor": cursor})
        assert "cursor" in assert_problem(r, 422)["errors"], path
    # The projection list's cursors are not accepted either, nor these by the list.
    project(services)
    listing = client.get("/v1/allegations?limit=1", headers=monitor.headers).get_json()
    assert listing["next_cursor"]
    assert_problem(client.get(f"/v1/allegations/{aid}/comments", headers=monitor.headers,
                              query_string={"cursor": listing["next_cursor"]}), 422)
    assert_problem(client.get("/v1/allegations", headers=monitor.headers,
                              query_string={"cursor": cursor}), 422)


def test_a_snapshot_that_still_carries_the_entries_loads(client, monitor, reviewer, report,
                                                         services):
    """Snapshots taken before the state kept counts hold the lists themselves."""
    app = services.app
    aid = submit(client, monitor, report)["id"]
    for text in ("one", "two", "three"):
        _comment(client, reviewer, aid, text)
    client.post(f"/v1/allegations/{aid}/information", headers=monitor.headers,
                json={"text": "more"})
    client.post(f"/v1/allegations/{aid}/evidence", headers=monitor.headers, json={
        "sha256": "ab" * 32, "media_type": "image/png", "size": 1, "description": "map"})
    current = app.repository.get(uuid.UUID(aid))
    snapshot = Allegation.Snapshot.take(current)
    old = {k: v for k, v in snapshot.state.items()
           if k not in ("class_version", "comments_total", "information_total",
                        "evidence_total")}
    old["comments"] = [{"text": t, "actor": reviewer.id, "version": v, "recorded_at": "x"}
                       for v, t in ((2, "one"), (3, "two"), (4, "three"))]
    old["information"] = [{"text": "more", "version": 5, "recorded_at": "x", "actor": "m",
                           "organisation": "org-a"}]
    old["evidence"] = [{"sha256": "ab" * 32, "version": 6}]
    app.snapshots.put([dataclasses.replace(snapshot, state=old)])  # as version 1 wrote them
    _comment(client, reviewer, aid, "four")
    loaded = app.repository.get(uuid.UUID(aid))
    assert (loaded.version, loaded.comments_total, loaded.information_total,
            loaded.evidence_total) == (7, 4, 1, 1)
    assert "comments" not in vars(loaded)
    got = client.get(f"/v1/allegations/{aid}", headers=reviewer.headers).get_json()
    assert [c["text"] for c in got["comments"]] == ["four", "three", "two", "one"]
    assert got["comments_total"] == 4 and got["evidence_total"] == 1
