"""The web pages through the Flask test client: sign-in, roles and scoping, CSRF, languages."""

from __future__ import annotations

import re
import uuid
from html import unescape as html_unescape
from typing import Any

import pytest

from tests.api.helpers import submit
from tests.conftest import event_count
from tests.integration.conftest_projections import project
from tracker.domain.values import Provenance

SESSION = "tracker_session"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "no form with a CSRF token on this page"
    return found.group(1)


def sign_in(app: Any, user: Any, **headers: str) -> Any:
    """A test client signed in as `user` through the sign-in form."""
    client = app.test_client()
    page = client.get("/sign-in", headers=headers)
    r = client.post("/sign-in", data={"token": user.token,
                                      "csrf_token": csrf_of(page.get_data(as_text=True))},
                    headers=headers)
    assert r.status_code == 303, r.get_data(as_text=True)
    return client


def post_form(client: Any, page_url: str, action: str, **fields: str) -> Any:
    """Open a page, then post one of its forms with the page's CSRF token."""
    page = client.get(page_url)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(action, data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                     **fields})


@pytest.fixture
def allegation(client: Any, services: Any, monitor: Any, report: dict[str, Any]) -> str:
    """An allegation of org-a, in the views."""
    aid: str = submit(client, monitor, report)["id"]
    project(services)
    return aid


def test_signing_in_sets_an_httponly_samesite_strict_session_cookie(app, reviewer):
    client = app.test_client()
    form = client.get("/sign-in")
    assert form.status_code == 200 and 'type="password"' in form.get_data(as_text=True)
    r = client.post("/sign-in", data={"token": reviewer.token,
                                      "csrf_token": csrf_of(form.get_data(as_text=True))})
    assert r.status_code == 303 and r.headers["Location"].endswith("/queue")
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith(SESSION + "="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert reviewer.token not in cookie  # the token travels sealed, never readable
    assert client.get("/queue").status_code == 200


def test_over_https_the_session_cookie_is_secure(app, reviewer):
    client = app.test_client()
    base = {"base_url": "https://tracker.example"}
    form = client.get("/sign-in", **base).get_data(as_text=True)
    r = client.post("/sign-in", data={"token": reviewer.token, "csrf_token": csrf_of(form)},
                    **base)
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith(SESSION + "="))
    assert "Secure" in cookie


def test_a_bad_token_is_refused_and_no_session_is_opened(app, reviewer):
    client = app.test_client()
    form = client.get("/sign-in").get_data(as_text=True)
    r = client.post("/sign-in", data={"token": "trk_not-a-real-token", "csrf_token": csrf_of(form)})
    assert r.status_code == 401 and "not valid" in r.get_data(as_text=True)
    assert not any(c.startswith(SESSION + "=") for c in r.headers.getlist("Set-Cookie"))
    assert client.get("/queue").status_code == 302  # still signed out


def test_a_revoked_token_ends_the_session_at_the_next_request(app, services, reviewer):
    client = sign_in(app, reviewer)
    assert client.get("/allegations").status_code == 200
    services.users.revoke(reviewer.id)
    r = client.get("/allegations")
    assert r.status_code == 302 and "/sign-in" in r.headers["Location"]


def test_signing_out_ends_the_session(app, reviewer):
    client = sign_in(app, reviewer)
    r = post_form(client, "/allegations", "/sign-out")
    assert r.status_code == 303
    assert client.get("/allegations").status_code == 302


def test_the_front_door_sends_each_role_to_its_start(app, reviewer, auditor):
    assert app.test_client().get("/").headers["Location"].endswith("/sign-in")
    assert sign_in(app, reviewer).get("/").headers["Location"].endswith("/queue")
    assert sign_in(app, auditor).get("/").headers["Location"].endswith("/allegations")


def test_after_signing_in_one_goes_back_to_the_page_asked_for_but_never_off_site(
        app, reviewer, allegation):
    client = app.test_client()
    r = client.get(f"/allegations/{allegation}")
    assert r.status_code == 302 and "next=" in r.headers["Location"]
    for target, expected in [(f"/allegations/{allegation}", f"/allegations/{allegation}"),
                             ("//evil.example/x", "/queue"), ("https://evil.example", "/queue")]:
        form = client.get("/sign-in").get_data(as_text=True)
        r = client.post("/sign-in", data={"token": reviewer.token, "next": target,
                                          "csrf_token": csrf_of(form)})
        assert r.headers["Location"] == expected


PAGES = ["/queue", "/allegations", "/allegations/{id}", "/allegations/{id}/status",
         "/statistics", "/audit", "/allegations/{id}/comments", "/allegations/{id}/information",
         "/allegations/{id}/evidence"]
# role -> status of each page (the queue sends non-reviewers to the list)
EXPECTED = {
    "monitor": [303, 200, 200, 403, 403, 403, 200, 200, 200],
    "reviewer": [200, 200, 200, 200, 200, 403, 200, 200, 200],
    "auditor": [303, 200, 200, 403, 200, 200, 200, 200, 200],
    "admin": [303, 200, 200, 200, 200, 200, 200, 200, 200],
}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_every_page_renders_for_the_roles_that_may_see_it(app, make_user, allegation, role):
    client = sign_in(app, make_user(role, "org-a"))
    for path, status in zip(PAGES, EXPECTED[role], strict=True):
        r = client.get(path.format(id=allegation))
        assert r.status_code == status, (role, path, r.status_code)
        if status in (200, 403):
            assert r.content_type.startswith("text/html")


def test_a_monitor_cannot_reach_another_organisations_allegation(app, make_user, allegation):
    client = sign_in(app, make_user("monitor", "org-b"))
    for path in ("", "/comments", "/information", "/evidence"):
        r = client.get(f"/allegations/{allegation}{path}")
        assert r.status_code == 404 and "text/html" in r.content_type
    assert allegation not in client.get("/allegations").get_data(as_text=True)
    assert client.get("/allegations/not-an-id").status_code == 404


def test_a_monitor_sees_no_timeline_and_no_forms(app, monitor, allegation):
    html = sign_in(app, monitor).get(f"/allegations/{allegation}").get_data(as_text=True)
    assert 'id="timeline"' not in html and "/assign" not in html and "/comment" not in html


def test_a_form_posted_without_its_csrf_token_is_refused_and_records_nothing(
        app, services, reviewer, allegation):
    client = sign_in(app, reviewer)
    before = event_count(services)
    for data in ({}, {"csrf_token": "forged"}):
        r = client.post(f"/allegations/{allegation}/comment", data={"text": "hi", **data})
        assert r.status_code == 400 and "expired" in r.get_data(as_text=True)
        r = client.post(f"/allegations/{allegation}/status",
                        data={"status": "under_review", "reason": "x", "expected_version": "1",
                              **data})
        assert r.status_code == 400
    assert event_count(services) == before
    stranger = app.test_client()  # and a sign-in form without the cookie's token
    r = stranger.post("/sign-in", data={"token": reviewer.token, "csrf_token": "guess"})
    assert r.status_code == 400


def test_a_cross_site_link_bounces_once_so_the_strict_cookie_comes_along(app, reviewer,
                                                                         allegation):
    fresh = app.test_client()
    r = fresh.get(f"/allegations/{allegation}", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200 and 'http-equiv="refresh"' in r.get_data(as_text=True)
    assert f"url=/allegations/{allegation}" in r.get_data(as_text=True)
    client = sign_in(app, reviewer)
    r = client.get(f"/allegations/{allegation}", headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200 and "refresh" not in r.get_data(as_text=True)


def test_pages_send_a_csp_without_unsafe_inline_and_carry_no_inline_script_or_style(
        app, reviewer, auditor, allegation):
    for user, paths in [(reviewer, ["/sign-in", "/queue", "/allegations",
                                    f"/allegations/{allegation}",
                                    f"/allegations/{allegation}/status", "/statistics",
                                    f"/allegations/{allegation}/evidence"]),
                        (auditor, ["/audit"])]:
        client = sign_in(app, user)
        for path in paths:
            r = client.get(path)
            csp = r.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
            html = r.get_data(as_text=True)
            assert "<script" not in html and " style=" not in html and "<style" not in html


def test_french_pages_follow_the_browser_and_the_language_switch(app, reviewer, allegation):
    client = sign_in(app, reviewer, **{"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    html = client.get(f"/allegations/{allegation}",
                      headers={"Accept-Language": "fr-FR,fr;q=0.9"}).get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "Chronologie" in html and "Déconnexion" in html
    assert "Arrestation et détention arbitraires" in html  # taxonomy.json's label_fr
    r = client.get("/language/en?next=/allegations")
    assert r.status_code == 303 and r.headers["Location"] == "/allegations"
    html = client.get(f"/allegations/{allegation}",
                      headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="en">' in html and "Timeline" in html
    assert client.get("/language/en?next=https://evil.example").headers["Location"] == "/"


def test_repeated_bad_sign_ins_are_limited_like_the_api(app, reviewer):
    app.extensions["tracker.limits"].auth_failures = 2
    client = app.test_client()
    statuses = []
    for _ in range(3):
        form = client.get("/sign-in").get_data(as_text=True)
        statuses.append(client.post("/sign-in", data={"token": "trk_wrong",
                                                      "csrf_token": csrf_of(form)}))
    assert [r.status_code for r in statuses] == [401, 401, 429]
    assert statuses[-1].headers["Retry-After"] and "text/html" in statuses[-1].content_type


def test_behind_a_tls_proxy_an_https_public_url_makes_the_cookies_secure(services, reviewer):
    from dataclasses import replace

    from api import create_app

    services.config = replace(services.config, public_url="https://tracker.example")
    app = create_app(services=services)
    client = app.test_client()
    form = client.get("/sign-in")
    assert "Secure" in form.headers["Set-Cookie"]
    r = client.post("/sign-in", data={"token": reviewer.token,
                                      "csrf_token": csrf_of(form.get_data(as_text=True))})
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith(SESSION + "="))
    assert "Secure" in cookie


def _comments(services: Any, reviewer: Any, aid: str, n: int) -> None:
    """`n` comments `comment 0` .. `comment n-1`, in one transaction."""
    allegation = services.app.repository.get(uuid.UUID(aid))
    for k in range(n):
        allegation.comment(f"comment {k}", Provenance.of(reviewer.actor, f"c{k}"))
    services.app.save(allegation)


def _shown(html: str) -> list[str]:
    return re.findall(r'<p class="text">(comment \d+)</p>', html)


def test_a_monitor_sees_the_latest_comments_and_pages_through_all_of_them(
        app, services, monitor, reviewer, allegation):
    _comments(services, reviewer, allegation, 55)
    client = sign_in(app, monitor)
    html = client.get(f"/allegations/{allegation}").get_data(as_text=True)
    assert _shown(html) == [f"comment {k}" for k in range(54, 34, -1)]  # the latest 20
    link = f'href="/allegations/{allegation}/comments"'
    assert link in html and "All 55, newest first" in html
    first = client.get(f"/allegations/{allegation}/comments").get_data(as_text=True)
    assert _shown(first) == [f"comment {k}" for k in range(54, 4, -1)]
    assert "55 in all" in first and "First page" not in first
    found = re.search(r'href="([^"]+)" rel="next"', first)
    assert found
    second = client.get(html_unescape(found.group(1)))
    assert second.status_code == 200
    assert _shown(second.get_data(as_text=True)) == [f"comment {k}" for k in range(4, -1, -1)]
    assert 'rel="next"' not in second.get_data(as_text=True)
    assert "First page" in second.get_data(as_text=True)


def test_an_altered_cursor_or_unknown_list_on_the_pages_is_refused(app, services, monitor,
                                                                    reviewer, allegation):
    _comments(services, reviewer, allegation, 3)
    client = sign_in(app, monitor)
    r = client.get(f"/allegations/{allegation}/comments?cursor=forged")
    assert r.status_code == 422 and "text/html" in r.content_type
    assert "cursor" in r.get_data(as_text=True)
    assert client.get(f"/allegations/{allegation}/secrets").status_code == 404


def test_evidence_beyond_the_latest_is_one_link_away_and_escaped(app, services, monitor,
                                                               allegation):
    for n in range(22):
        services.app.attach_evidence(monitor.actor, allegation, {
            "sha256": f"{n:02x}" * 32, "media_type": "image/jpeg", "size": n,
            "description": f"<b>photo {n}</b>", "uri": "javascript:alert(1)"}, "r")
    client = sign_in(app, monitor)  # no timeline: the evidence section alone shows them
    html = client.get(f"/allegations/{allegation}").get_data(as_text=True)
    shown = re.findall(r"<strong>&lt;b&gt;photo (\d+)&lt;/b&gt;</strong>", html)
    assert shown == [str(n) for n in range(21, 1, -1)]
    assert f'href="/allegations/{allegation}/evidence"' in html and "All 22" in html
    every = client.get(f"/allegations/{allegation}/evidence").get_data(as_text=True)
    shown = re.findall(r"<strong>&lt;b&gt;photo (\d+)&lt;/b&gt;</strong>", every)
    assert shown == [str(n) for n in range(21, -1, -1)]
    assert "<b>" not in every and 'href="javascript:' not in every
