"""The pages' forms and views: legal statuses, stale forms, hostile text, filters, stats, audit."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.api.helpers import submit
from tests.api.test_pages import csrf_of, post_form, sign_in
from tests.conftest import event_count
from tests.integration.conftest_projections import project
from tracker.domain.values import TRANSITIONS

_RADIOS = re.compile(r'type="radio" name="status" value="([a-z_]+)"')
_FORM_KEY = re.compile(r'name="form_key" value="([0-9a-f]+)"')


def status_fields(html: str) -> dict[str, str]:
    """The hidden fields of the status form."""
    version = re.search(r'name="expected_version" value="(\d+)"', html)
    key = _FORM_KEY.search(html)
    assert version and key
    return {"csrf_token": csrf_of(html), "expected_version": version.group(1),
            "form_key": key.group(1)}


@pytest.fixture
def aid(client: Any, services: Any, monitor: Any, report: dict[str, Any]) -> str:
    """An allegation of org-a, in the views."""
    found: str = submit(client, monitor, report)["id"]
    project(services)
    return found


# The shortest path from `received` to each status.
PATHS = {"received": [], "under_review": ["under_review"],
         "needs_information": ["under_review", "needs_information"],
         "verified": ["under_review", "verified"], "unverified": ["under_review", "unverified"],
         "rejected": ["rejected"], "duplicate": ["duplicate"], "closed": ["rejected", "closed"]}


@pytest.mark.parametrize("current", list(TRANSITIONS))
def test_the_status_form_offers_only_the_legal_next_statuses(app, client, services, monitor,
                                                             reviewer, report, aid, current):
    other = submit(client, monitor, report)["id"]
    for step in PATHS[current]:
        duplicate_of = other if step == "duplicate" else None
        services.app.change_status(reviewer.actor, aid, step, "step", duplicate_of, "r")
    html = sign_in(app, reviewer).get(f"/allegations/{aid}/status").get_data(as_text=True)
    assert _RADIOS.findall(html) == list(TRANSITIONS[current])
    assert ('name="duplicate_of"' in html) == ("duplicate" in TRANSITIONS[current])


def test_a_status_change_needs_a_reason_and_is_recorded_with_it(app, services, reviewer, aid):
    client = sign_in(app, reviewer)
    html = client.get(f"/allegations/{aid}/status").get_data(as_text=True)
    before = event_count(services)
    r = client.post(f"/allegations/{aid}/status",
                    data={**status_fields(html), "status": "under_review", "reason": ""})
    assert r.status_code == 422 and 'aria-invalid="true"' in r.get_data(as_text=True)
    assert event_count(services) == before
    r = client.post(f"/allegations/{aid}/status", data={
        **status_fields(html), "status": "under_review", "reason": "Two sources agree"})
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/allegations/{aid}#timeline")
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Two sources agree" in page and "Status changed" in page
    assert services.app.get(reviewer.actor, aid)["status"] == "under_review"


def test_a_stale_status_form_shows_who_changed_it_and_records_nothing(app, services, reviewer,
                                                                      make_user, aid):
    colleague = make_user("reviewer", "un-office", "Colette Colleague")
    client = sign_in(app, reviewer)
    stale = client.get(f"/allegations/{aid}/status").get_data(as_text=True)
    services.app.change_status(colleague.actor, aid, "under_review", "I take it", None, "r")
    before = event_count(services)
    r = client.post(f"/allegations/{aid}/status", data={
        **status_fields(stale), "status": "rejected", "reason": "Out of scope"})
    html = r.get_data(as_text=True)
    assert r.status_code == 409 and event_count(services) == before
    assert "changed by Colette Colleague at" in html and "review and retry" in html
    assert "I take it" in html  # what changed, to review
    assert "Out of scope" in html  # what was typed is kept
    assert status_fields(html)["expected_version"] == "2"  # a deliberate retry is possible
    assert services.app.get(reviewer.actor, aid)["status"] == "under_review"


def test_a_double_submitted_form_records_once(app, services, reviewer, aid):
    client = sign_in(app, reviewer)
    html = client.get(f"/allegations/{aid}").get_data(as_text=True)
    key = _FORM_KEY.search(html)
    assert key
    fields = {"csrf_token": csrf_of(html), "form_key": key.group(1), "text": "Seen."}
    before = event_count(services)
    for _ in range(2):
        assert client.post(f"/allegations/{aid}/comment", data=fields).status_code == 303
    assert event_count(services) == before + 1


def test_assigning_from_the_allegation_page_fills_the_reviewers_queue(app, services, reviewer,
                                                                      aid):
    client = sign_in(app, reviewer)
    r = post_form(client, f"/allegations/{aid}", f"/allegations/{aid}/assign",
                  assignee=reviewer.id)
    assert r.status_code == 303
    project(services)
    queue = client.get("/queue").get_data(as_text=True)
    assert f"/allegations/{aid}" in queue and "Nothing is waiting for you" not in queue
    r = post_form(client, f"/allegations/{aid}", f"/allegations/{aid}/assign", assignee="nobody")
    assert r.status_code == 422 and "No active user" in r.get_data(as_text=True)


def test_hostile_text_comes_back_escaped_and_unsafe_links_inert(app, services, client, monitor,
                                                                 reviewer, report):
    report["summary"] = "<script>alert(1)</script>"
    report["description"] = '"><img src=x onerror=alert(1)>'
    aid = submit(client, monitor, report)["id"]
    for uri in ("javascript:alert(1)", "https://files.example/e1.jpg"):
        services.app.attach_evidence(reviewer.actor, aid, {
            "sha256": "ab" * 32, "media_type": "image/jpeg", "size": 10,
            "description": "<b>photo</b>", "uri": uri}, "r")
    services.app.comment(reviewer.actor, aid, "<script>alert(2)</script>", "r")
    project(services)
    pages = sign_in(app, reviewer)
    html = pages.get(f"/allegations/{aid}").get_data(as_text=True)
    assert "<script>" not in html and "<img src=x" not in html and "<b>photo" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html and "<code>javascript:alert(1)</code>" in html
    assert 'href="https://files.example/e1.jpg"' in html
    listing = pages.get("/allegations").get_data(as_text=True)
    assert "<script>" not in listing and "&lt;script&gt;" in listing


def test_the_list_applies_every_filter_and_pages_with_next_links(app, services, client,
                                                                  monitor, reviewer, report):
    for n in range(5):
        report["summary"] = f"case {n}"
        submit(client, monitor, report)
    report["summary"], report["categories"] = "school attack", ["attack_school_hospital"]
    report["incident"]["location"]["country"] = "NE"
    submit(client, monitor, report)
    project(services)
    pages = sign_in(app, reviewer)
    html = pages.get("/allegations?country=ne&category=attack_school_hospital").get_data(
        as_text=True)
    assert "school attack" in html and "case 1" not in html
    assert pages.get("/allegations?q=school").get_data(as_text=True).count("school attack") == 1
    query = ("status=received&status=rejected&admin1=Gao&perpetrator=armed_group&assignee=none"
             "&submitted_from=2000-01-01&submitted_to=2999-01-01&incident_from=2018-01-01"
             "&incident_to=2018-12-31&limit=2")
    first = pages.get(f"/allegations?{query}").get_data(as_text=True)
    seen = re.findall(r">(case \d|school attack)</a>", first)
    assert len(seen) == 2
    nxt = re.search(r'href="([^"]+)" rel="next"', first)
    assert nxt
    second = pages.get(nxt.group(1).replace("&amp;", "&")).get_data(as_text=True)
    more = re.findall(r">(case \d|school attack)</a>", second)
    assert len(more) == 2 and not set(more) & set(seen) and "First page" in second
    bad = pages.get("/allegations?country=XX&incident_from=someday")
    assert bad.status_code == 422 and "country" in bad.get_data(as_text=True)
    assert pages.get("/allegations?cursor=altered.x").status_code == 422


def test_statistics_draw_bar_charts_on_the_server(app, services, reviewer, aid):
    html = sign_in(app, reviewer).get("/statistics?country=ML").get_data(as_text=True)
    assert html.count("<svg") == 3 and 'class="chart-bar' in html
    assert "Arbitrary arrest and detention" in html and "Gao (ML)" in html and "2018-05" in html


def test_an_auditor_verifies_the_log_and_downloads_it(app, services, auditor, aid):
    client = sign_in(app, auditor)
    page = client.get("/audit").get_data(as_text=True)
    assert "test.tracker.example" in page and 'id="tree-size">1<' in page
    r = client.post("/audit/verify", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 200 and "The log verifies." in r.get_data(as_text=True)
    log = client.get("/audit/log.jsonl")
    lines = [json.loads(line) for line in log.get_data(as_text=True).splitlines()]
    assert log.headers["Content-Disposition"].startswith("attachment")
    assert [e["position"] for e in lines] == [0] and lines[0]["type"] == "Submitted"
    assert "Zeta Placeholder-Victim" not in log.get_data(as_text=True)


def test_protected_fields_read_as_the_service_returns_them(app, services, reviewer, admin, aid):
    html = sign_in(app, reviewer).get(f"/allegations/{aid}").get_data(as_text=True)
    assert "[protected]" in html and "Zeta Placeholder-Victim" not in html
    services.app.assign(admin.actor, aid, reviewer.id, "r")
    html = sign_in(app, reviewer).get(f"/allegations/{aid}").get_data(as_text=True)
    assert "Zeta Placeholder-Victim" in html
    services.app.erase(admin.actor, aid, "request of the person", "r")
    html = sign_in(app, reviewer).get(f"/allegations/{aid}").get_data(as_text=True)
    assert "[erased]" in html and "Zeta Placeholder-Victim" not in html
