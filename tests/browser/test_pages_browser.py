"""The web pages in a real browser (Chromium via Playwright) against a real HTTP server.

Skipped, with the reason, when the playwright package or Chromium is missing. Screenshots of
every page go to test-artifacts/screenshots/ (set TRACKER_DOCS_SCREENSHOT=path to also save
the README's picture of an allegation page).
"""

from __future__ import annotations

import copy
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_URL, REPORT, _reset_postgres

CHROMIUM = os.environ.get("TRACKER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=(
        f"Chromium not found at {CHROMIUM}: install Debian's `chromium` package (or set "
        "TRACKER_CHROMIUM) to run the browser tests")),
]
sync_api = pytest.importorskip("playwright.sync_api", reason=(
    "the playwright package is not installed: `.venv/bin/pip install -e '.[test]'`"))

from playwright.sync_api import Browser, Page, expect  # noqa: E402

from api import create_app  # noqa: E402
from tracker.bootstrap import Tracker, build  # noqa: E402
from tracker.config import Config  # noqa: E402
from tracker.domain.values import Actor  # noqa: E402
from tracker.projections import start_thread  # noqa: E402

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass
class Site:
    """The running tracker: its address, services, users (with tokens) and allegations."""

    url: str
    services: Tracker
    users: dict[str, tuple[Actor, str]]
    allegations: dict[str, str]


def _report(**changes: Any) -> dict[str, Any]:
    report = copy.deepcopy(REPORT)
    report.update(changes)
    return report


SCHOOL = _report(
    summary="School closed after threats in Timbuktu region",
    description="Teachers at the village school were told by armed men to stop teaching in "
                "French. The school has been closed since; about 240 pupils are out of school.",
    categories=["attack_school_hospital", "child_recruitment_use"],
    incident={"date": "2018-03-01", "date_precision": "month",
              "location": {"country": "ML", "admin1": "Tombouctou", "place": "Ber",
                           "precision": "approximate"}},
    source={"type": "ngo_report", "reliability": "C", "credibility": 3,
            "description": "Report of an education partner, confirmed by a teacher by phone"},
    victims={"count": 240, "children": 240, "groups": ["pupils"]},
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app under a real threaded HTTP server on 127.0.0.1, with a projector running."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any) -> None:
            """No access log in the test output."""

    if PG_URL:
        _reset_postgres(PG_URL)
    services = build(Config(data_dir=tmp_path_factory.mktemp("browser"), database_url=PG_URL,
                            write_rate=0, log_origin="browser.tracker.example"))
    users = {key: services.users.add(name, role, org) for key, name, role, org in [
        ("reviewer", "Rémi Reviewer", "reviewer", "un-office"),
        ("colleague", "Colette Colleague", "reviewer", "un-office"),
        ("monitor", "Mona Monitor", "monitor", "org-a"),
        ("stranger", "Sam Stranger", "monitor", "org-b"),
        ("auditor", "Ada Auditor", "auditor", "audit-office")]}
    mona = users["monitor"][0]
    found = {
        "gao": services.app.submit(mona, _report(), "seed").state["id"],
        "school": services.app.submit(mona, SCHOOL, "seed").state["id"],
        "hostile": services.app.submit(mona, _report(
            summary="<script>alert(1)</script>", description="<img src=x onerror=alert(2)>"),
            "seed").state["id"],
    }
    last = services.app.attach_evidence(users["reviewer"][0], found["hostile"], {
        "sha256": "ab" * 32, "media_type": "image/jpeg", "size": 1234,
        "description": "<b onmouseover=alert(3)>photo</b>", "uri": "javascript:alert(4)"},
        "seed")
    app = create_app(services=services)
    app.config["PAGES_READ_YOUR_WRITES_TIMEOUT"] = 5.0
    projector, stop = start_thread(services, poll_interval=0.05)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    assert app.extensions["tracker.views"].wait_for(last.position, 10.0)
    yield Site(f"http://127.0.0.1:{server.server_port}", services, users, found)
    server.shutdown()
    stop.set()
    projector.join(5)
    services.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


_HTTP_STATUS = "Failed to load resource: the server responded with a status of"


class Watch:
    """Dialogs (alert, confirm) and console errors (CSP violations) a page produced."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.contexts: list[Any] = []

    def attach(self, page: Page) -> Page:
        self.contexts.append(page.context)
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("console", self._console)
        return page

    def _console(self, message: Any) -> None:
        # Chromium logs each 4xx page (a 404, a 409 conflict) as an error: those are expected.
        if message.type == "error" and not message.text.startswith(_HTTP_STATUS):
            self.errors.append(message.text)


@pytest.fixture
def watch() -> Iterator[Watch]:
    """Fails the test if any page opened a dialog or logged an error."""
    w = Watch()
    yield w
    for context in w.contexts:
        context.close()
    assert w.dialogs == [], f"a dialog fired: {w.dialogs}"
    assert w.errors == [], f"console errors (CSP?): {w.errors}"


def open_page(browser: Browser, watch: Watch, locale: str = "en-GB",
              width: int = 1200) -> Page:
    """A fresh browser context (no cookies) and page."""
    context = browser.new_context(locale=locale, viewport={"width": width, "height": 900})
    context.set_default_timeout(10_000)
    return watch.attach(context.new_page())


def sign_in(page: Page, site: Site, who: str, label: str = "Your API token",
            button: str = "Sign in") -> None:
    """Sign in through the form."""
    page.goto(site.url + "/sign-in")
    page.get_by_label(label).fill(site.users[who][1])
    page.get_by_role("button", name=button, exact=True).click()
    expect(page.get_by_role("button", name=button, exact=True)).to_have_count(0)


def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot for people to look at."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_reviewer_finds_an_allegation_changes_its_status_and_sees_the_timeline_grow(
        browser: Browser, site: Site, watch: Watch) -> None:
    page = open_page(browser, watch)
    sign_in(page, site, "reviewer")
    expect(page.get_by_role("heading", name="My queue")).to_be_visible()
    shot(page, "queue")
    page.get_by_role("link", name="All allegations").click()
    page.locator("details.filters > summary").click()  # folded while no filter is set
    page.get_by_label("Text search").fill("Timbuktu")
    page.get_by_role("button", name="Apply filters").click()
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(1)
    shot(page, "list-filtered")
    rows.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(SCHOOL["summary"])
    events = page.locator("ol.timeline > li")
    expect(events).to_have_count(1)
    expect(page.locator("abbr.grade").first).to_have_attribute(
        "title", "Source: fairly reliable, information: possibly true")
    page.get_by_role("link", name="Change status").click()
    assert page.get_by_role("radio").count() == 3  # received -> under_review|rejected|duplicate
    shot(page, "status-form")
    page.get_by_role("radio", name="Under review").check()
    page.get_by_label("Reason (required)").fill("A second source confirms the closure")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_role("status").first).to_contain_text("Status changed to")
    expect(events).to_have_count(2)
    expect(events.first).to_contain_text("A second source confirms the closure")
    expect(events.first).to_contain_text("Rémi Reviewer")
    shot(page, "allegation")
    page.get_by_label("Comment").fill("Asked the field team for photos.")
    page.get_by_role("button", name="Add comment").click()
    expect(events).to_have_count(3)
    if os.environ.get("TRACKER_DOCS_SCREENSHOT"):
        page.set_viewport_size({"width": 1100, "height": 1000})
        page.goto(page.url.split("#")[0])
        page.screenshot(path=os.environ["TRACKER_DOCS_SCREENSHOT"])


def test_a_change_from_a_stale_page_shows_the_conflict(browser: Browser, site: Site,
                                                       watch: Watch) -> None:
    aid = site.allegations["gao"]
    mine, theirs = open_page(browser, watch), open_page(browser, watch)
    sign_in(mine, site, "reviewer")
    sign_in(theirs, site, "colleague")
    mine.goto(f"{site.url}/allegations/{aid}/status")
    theirs.goto(f"{site.url}/allegations/{aid}/status")
    theirs.get_by_role("radio", name="Under review").check()
    theirs.get_by_label("Reason (required)").fill("Taking this one")
    theirs.get_by_role("button", name="Change status").click()
    expect(theirs.get_by_role("status").first).to_contain_text("Status changed")
    mine.get_by_role("radio", name="Rejected").check()
    mine.get_by_label("Reason (required)").fill("Out of scope")
    mine.get_by_role("button", name="Change status").click()
    alert = mine.get_by_role("alert")
    expect(alert).to_contain_text("changed by Colette Colleague at")
    expect(alert).to_contain_text("review and retry")
    expect(alert).to_contain_text("Taking this one")
    expect(mine.get_by_label("Reason (required)")).to_have_value("Out of scope")
    shot(mine, "status-conflict")
    state = site.services.app.get(site.users["reviewer"][0], aid)
    assert (state["status"], state["version"]) == ("under_review", 2)


def test_a_monitor_cannot_reach_another_organisations_allegation(browser: Browser, site: Site,
                                                                 watch: Watch) -> None:
    page = open_page(browser, watch)
    sign_in(page, site, "stranger")
    response = page.goto(f"{site.url}/allegations/{site.allegations['gao']}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_contain_text("Not found")
    page.get_by_role("link", name="All allegations").click()
    expect(page.get_by_text("No allegation matches these filters.")).to_be_visible()
    shot(page, "monitor-other-organisation")


def test_an_auditor_runs_verify_and_sees_the_signed_head(browser: Browser, site: Site,
                                                         watch: Watch) -> None:
    page = open_page(browser, watch)
    sign_in(page, site, "auditor")
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_text("browser.tracker.example")).to_be_visible()
    size = int(page.locator("#tree-size").inner_text())
    assert size >= 4
    page.get_by_role("button", name="Verify now").click()
    expect(page.locator("#verify-result")).to_contain_text("The log verifies.")
    shot(page, "audit")
    page.get_by_role("link", name="Statistics").click()
    assert page.locator("svg.chart").count() == 3
    shot(page, "statistics")


def test_french_pages_render_and_the_language_can_be_switched(browser: Browser, site: Site,
                                                              watch: Watch) -> None:
    page = open_page(browser, watch, locale="fr-FR")
    sign_in(page, site, "reviewer", label="Votre jeton d'API", button="Connexion")
    expect(page.get_by_role("heading", name="Ma file")).to_be_visible()
    page.goto(f"{site.url}/allegations/{site.allegations['gao']}")
    expect(page.get_by_text("Arrestation et détention arbitraires").first).to_be_visible()
    expect(page.get_by_role("heading", name="Chronologie")).to_be_visible()
    shot(page, "allegation-fr")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()


def test_hostile_text_renders_inert(browser: Browser, site: Site, watch: Watch) -> None:
    page = open_page(browser, watch)
    sign_in(page, site, "reviewer")
    page.goto(f"{site.url}/allegations/{site.allegations['hostile']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("<script>alert(1)</script>")
    expect(page.get_by_text("<img src=x onerror=alert(2)>")).to_be_visible()
    assert page.locator("a[href^='javascript']").count() == 0
    page.get_by_text("<b onmouseover=alert(3)>photo</b>", exact=True).first.hover()
    page.get_by_text("javascript:alert(4)", exact=True).click()
    page.goto(f"{site.url}/allegations?q=script")
    shot(page, "hostile")
    assert watch.dialogs == []


def test_pages_work_at_360_pixels_and_from_the_keyboard(browser: Browser, site: Site,
                                                        watch: Watch) -> None:
    page = open_page(browser, watch, width=360)
    sign_in(page, site, "reviewer")
    for path in ("/allegations", "/statistics", f"/allegations/{site.allegations['gao']}"):
        page.goto(site.url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, path
    shot(page, "allegation-360px")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
