"""GET /v1/allegations: filters, keyset pages, cursors, scoping and reading one's own writes."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.api.helpers import assert_problem, submit
from tests.integration.conftest_projections import project, report
from tracker.projections import start_thread
from tracker.projections.cursor import CursorCodec

URL = "/v1/allegations"


def _list(client: Any, user: Any, **query: Any) -> dict[str, Any]:
    r = client.get(URL, query_string=query, headers=user.headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    body: dict[str, Any] = r.get_json()
    return body


def _ids(client: Any, user: Any, **query: Any) -> list[str]:
    return [i["id"] for i in _list(client, user, **query)["items"]]


@pytest.fixture
def five(client: Any, services: Any, monitor: Any) -> list[str]:
    """Five allegations by `monitor`, oldest first, in the views."""
    ids = [submit(client, monitor, report(summary=f"case {n}"))["id"] for n in range(5)]
    project(services)
    return ids


def test_an_empty_list_is_an_empty_page(client: Any, reviewer: Any) -> None:
    assert _list(client, reviewer) == {"items": [], "next_cursor": None}


def test_pages_come_newest_first_until_a_last_page_without_cursor(
        client: Any, reviewer: Any, five: list[str]) -> None:
    first = _list(client, reviewer, limit=2)
    assert [i["id"] for i in first["items"]] == [five[4], five[3]]
    second = _list(client, reviewer, limit=2, cursor=first["next_cursor"])
    assert [i["id"] for i in second["items"]] == [five[2], five[1]]
    last = _list(client, reviewer, limit=2, cursor=second["next_cursor"])
    assert (last["items"][0]["id"], last["next_cursor"]) == (five[0], None)


def test_an_exact_multiple_of_the_limit_ends_without_an_empty_page(
        client: Any, reviewer: Any, five: list[str]) -> None:
    assert _list(client, reviewer, limit=5)["next_cursor"] is None
    assert _list(client, reviewer)["next_cursor"] is None  # default limit 50
    page = _list(client, reviewer, limit=4)
    assert len(page["items"]) == 4 and page["next_cursor"]


def test_an_item_carries_what_a_list_shows(client: Any, reviewer: Any,
                                           five: list[str]) -> None:
    item = _list(client, reviewer, limit=1)["items"][0]
    assert item["id"] == five[4] and item["summary"] == "case 4"
    assert {k: item[k] for k in ("status", "country", "admin1", "incident_date",
                                 "incident_date_precision", "incident_month", "victims",
                                 "children", "version", "assignee", "organisation")} == {
        "status": "received", "country": "ML", "admin1": "Gao", "incident_date": "2018-05-14",
        "incident_date_precision": "day", "incident_month": "2018-05", "victims": 3,
        "children": 0, "version": 1, "assignee": None, "organisation": "org-a"}
    assert item["categories"] == ["arbitrary_arrest_detention", "enforced_disappearance"]
    assert item["alleged_perpetrators"] == [{"name": "Unidentified armed group",
                                             "type": "armed_group"}]
    assert "protected" not in item and item["submitted_at"] == item["updated_at"]


def test_equal_submission_times_are_ordered_by_id(client: Any, services: Any, reviewer: Any,
                                                  five: list[str]) -> None:
    with services.app.db.tx() as cur:
        cur.execute("UPDATE allegation_list SET submitted_at = ?", ("2020-01-01T00:00:00+00:00",))
    seen, cursor = [], None
    while True:
        page = _list(client, reviewer, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [i["id"] for i in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == sorted(five, reverse=True)


@pytest.mark.parametrize("cursor", [
    "garbage", "", "a.b", "Zm9v.YmFy", "é.é", "W10.AAAAAAAAAAAAAAAAAAAAAA"])
def test_a_malformed_cursor_is_refused(client: Any, reviewer: Any, five: list[str],
                                       cursor: str) -> None:
    r = client.get(URL, query_string={"cursor": cursor}, headers=reviewer.headers)
    assert "cursor" in assert_problem(r, 422)["errors"]


def test_an_altered_or_foreign_cursor_is_refused(client: Any, reviewer: Any,
                                                 five: list[str]) -> None:
    cursor = _list(client, reviewer, limit=2)["next_cursor"]
    body, tag = cursor.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    foreign = CursorCodec(b"another deployment's key").encode(["2099-01-01", "z"])
    for bad in (f"{flipped}.{tag}", f"{body}.{tag[:-1]}", foreign):
        r = client.get(URL, query_string={"cursor": bad}, headers=reviewer.headers)
        assert assert_problem(r, 422)["errors"]["cursor"]


@pytest.mark.parametrize("query", [
    {"limit": 201}, {"limit": 0}, {"limit": "ten"}, {"status": "bogus"},
    {"status": "received,nope"}, {"category": "jaywalking"}, {"country": "XX"},
    {"country": "ml"}, {"submitted_from": "yesterday"}, {"incident_to": "2018-02-30"},
    {"submitted_from": "2020-02-01", "submitted_to": "2020-01-01"},
    {"incident_from": "2019-01-01", "incident_to": "2018-01-01"}, {"q": "?!"},
    {"q": "x" * 201}, {"min_position": -1}, {"colour": "red"}, {"perpetrator": ""},
])
def test_bad_query_values_are_422_problems(client: Any, reviewer: Any,
                                           query: dict[str, Any]) -> None:
    r = client.get(URL, query_string=query, headers=reviewer.headers)
    assert assert_problem(r, 422)["errors"]


def test_every_filter(client: Any, services: Any, monitor: Any, reviewer: Any,
                      make_user: Any) -> None:
    colleague = make_user("reviewer")
    a = submit(client, monitor, report(categories=["child_recruitment_use"],
                                       alleged_perpetrators=[{"name": "JNIM",
                                                              "type": "armed_group"}],
                                       incident={"date": "2019-07-01",
                                                 "date_precision": "month"},
                                       location={"country": "ML", "admin1": "Kidal"}))["id"]
    b = submit(client, monitor, report(summary="Attack on a school in Niger",
                                       categories=["attack_school_hospital"],
                                       alleged_perpetrators=[], location={
                                           "country": "NE", "admin1": "Tillabéri"}))["id"]
    c = submit(client, monitor, report(categories=["child_recruitment_use",
                                                   "attack_school_hospital"]))["id"]
    services.app.assign(reviewer.actor, a, reviewer.id, "x")
    services.app.assign(reviewer.actor, c, colleague.id, "y")
    services.app.change_status(reviewer.actor, b, "under_review", "triage", None, "z")
    project(services)
    assert _ids(client, reviewer, status="under_review") == [b]
    assert _ids(client, reviewer, status="under_review,received") == [c, b, a]
    assert _ids(client, reviewer, category="child_recruitment_use") == [c, a]
    assert _ids(client, reviewer, category="attack_school_hospital,child_recruitment_use",
                country="NE") == [b]
    assert _ids(client, reviewer, country="ML,NE", admin1="Kidal") == [a]
    assert _ids(client, reviewer, admin1="Tillabéri") == [b]
    assert _ids(client, reviewer, perpetrator="jnim") == [a]
    assert _ids(client, reviewer, perpetrator="armed_group") == [c, a]
    assert _ids(client, reviewer, assignee="me") == [a]
    assert _ids(client, colleague, assignee="me") == [c]
    assert _ids(client, reviewer, assignee=colleague.id) == [c]
    assert _ids(client, reviewer, assignee="none") == [b]
    assert _ids(client, reviewer, incident_from="2019-01-01") == [a]
    assert _ids(client, reviewer, incident_to="2018-12-31") == [c, b]
    assert _ids(client, reviewer, incident_from="2019-07-01", incident_to="2019-07-01") == [a]
    assert _ids(client, reviewer, q="niger school") == [b]
    assert _ids(client, reviewer, q="checkpoint", category="child_recruitment_use") == [c, a]
    times = {i["id"]: i["submitted_at"] for i in _list(client, reviewer)["items"]}
    assert _ids(client, reviewer, submitted_from=times[b]) == [c, b]
    assert _ids(client, reviewer, submitted_to=times[b]) == [b, a]
    assert _ids(client, reviewer, submitted_from=times[b], submitted_to=times[b]) == [b]
    day = times[a][:10]
    assert _ids(client, reviewer, submitted_from=day, submitted_to=day) == [c, b, a]
    assert _ids(client, reviewer, submitted_to="2000-01-01") == []


def test_monitors_see_only_their_organisation(client: Any, services: Any, monitor: Any,
                                              make_user: Any, auditor: Any) -> None:
    other = make_user("monitor", "org-b")
    mine = submit(client, monitor, report())["id"]
    theirs = submit(client, other, report())["id"]
    project(services)
    assert _ids(client, monitor) == [mine]
    assert _ids(client, other) == [theirs]
    assert _ids(client, other, q="checkpoint", status="received") == [theirs]
    assert set(_ids(client, auditor)) == {mine, theirs}


def test_no_token_no_list(client: Any) -> None:
    assert_problem(client.get(URL), 401)


def test_min_position_waits_for_the_projector(client: Any, services: Any, monitor: Any) -> None:
    thread, stop = start_thread(services, poll_interval=0.05)
    try:
        r = client.post(URL, json=report(), headers=monitor.headers)
        position = r.headers["X-Tracker-Position"]
        ids = _ids(client, monitor, min_position=position)
        assert ids == [r.get_json()["id"]]
    finally:
        stop.set()
        thread.join(timeout=5)


def test_min_position_not_reached_in_time_is_503_with_retry_after(
        app: Any, client: Any, monitor: Any) -> None:
    app.config["TRACKER_MIN_POSITION_TIMEOUT"] = 0.3  # the production bound is 5 s
    submit(client, monitor, report())  # no projector runs
    r = client.get(URL, query_string={"min_position": 0}, headers=monitor.headers)
    assert_problem(r, 503)
    assert r.headers["Retry-After"] == "1"


def test_min_position_beyond_the_log_is_refused_at_once(client: Any, monitor: Any) -> None:
    r = client.get(URL, query_string={"min_position": 10**9}, headers=monitor.headers)
    assert "min_position" in assert_problem(r, 422)["errors"]


def test_readiness_and_metrics_report_the_projection_lag(client: Any, services: Any,
                                                         monitor: Any) -> None:
    for _ in range(3):
        submit(client, monitor, report())
    ready = client.get("/readyz").get_json()["checks"]["projections"]
    assert ready == {"ok": True, "position": -1, "log_size": 3, "lag": 3}
    assert "tracker_projection_lag 3.0" in client.get("/metrics").get_data(as_text=True)
    project(services)
    assert client.get("/readyz").get_json()["checks"]["projections"]["lag"] == 0
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "tracker_projection_lag 0.0" in metrics
    assert "tracker_projection_position 2.0" in metrics


def test_concurrent_readers_while_the_projector_writes(client: Any, services: Any,
                                                       monitor: Any, app: Any) -> None:
    for n in range(30):
        services.app.submit(monitor.actor, report(summary=f"c{n}"), f"c{n}")
    errors: list[Any] = []

    def read() -> None:
        c = app.test_client()
        for _ in range(20):
            r = c.get(URL, query_string={"limit": 7}, headers=monitor.headers)
            if r.status_code != 200:
                errors.append(r.get_data(as_text=True))

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    project(services, batch_size=3)
    for t in readers:
        t.join()
    assert errors == []
