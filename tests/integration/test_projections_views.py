"""The list view, event type by event type; text search; dating; the reviewer queue; the CLI."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner

from tests.integration.conftest_projections import (
    dump_views,
    project,
    report,
    view_rows,
)
from tracker.bootstrap import Tracker
from tracker.config import Config
from tracker.domain.errors import ValidationError
from tracker.domain.values import Provenance
from tracker.projections import Filters, Views, rebuild, reviewer_queue, start_thread, status
from tracker.projections.runner import lag
from tracker.projections.schema import SCHEMA_VERSION
from tracker.projections.tracking import wait_for_position

SECRET_NAMES = ["Zeta Placeholder-Victim", "Omega Placeholder-Witness", "Kappa Hidden-Contact"]


def test_every_event_type_moves_version_and_update_time(services: Tracker,
                                                        make_user: Any) -> None:
    app = services.app
    monitor, reviewer, admin = make_user("monitor"), make_user("reviewer"), make_user("admin")
    other = app.submit(monitor.actor, report(), "o").state["id"]
    aid = app.submit(monitor.actor, report(), "s").state["id"]
    source = {"type": "media", "reliability": "B", "credibility": 2, "description": "radio"}
    steps: list[tuple[str, Any]] = [
        ("InformationAdded", lambda: app.add_information(monitor.actor, aid, "more", source,
                                                         None, "i")),
        ("SourceAdded", lambda: app.add_information(reviewer.actor, aid, None, source, None,
                                                    "so")),
        ("EvidenceAttached", lambda: app.attach_evidence(reviewer.actor, aid, {
            "sha256": "cd" * 32, "media_type": "image/png", "size": 3, "description": "p"}, "e")),
        ("Assigned", lambda: app.assign(reviewer.actor, aid, reviewer.id, "a")),
        ("StatusChanged", lambda: app.change_status(reviewer.actor, aid, "duplicate", "same",
                                                    other, "st")),
        ("Commented", lambda: app.comment(reviewer.actor, aid, "hm", "c")),
        ("OfficialResponseRecorded", lambda: _official_response(services, admin.actor, aid)),
        ("PersonalDataErased", lambda: app.erase(admin.actor, aid, "asked", "er")),
    ]
    for name, step in steps:
        step()
        project(services)
        row = view_rows(services)[aid]
        current: Any = app.repository.get(uuid.UUID(aid))
        assert (row["version"], row["updated_at"]) == (
            current.version, current.modified_on.isoformat()), name
    assert {k: row[k] for k in ("status", "duplicate_of", "assignee", "erased", "sources",
                                "information", "evidence", "comments", "version")} == {
        "status": "duplicate", "duplicate_of": other, "assignee": reviewer.id, "erased": 1,
        "sources": 3, "information": 1, "evidence": 1, "comments": 1, "version": 9}


def _official_response(services: Tracker, actor: Any, aid: str) -> None:
    a: Any = services.app.repository.get(uuid.UUID(aid))
    a.record_official_response({"type": "denial", "text": "No such operation."},
                               Provenance.of(actor, "r"))
    services.app.save(a)


def test_personal_data_never_enters_the_views(services: Tracker, make_user: Any) -> None:
    app = services.app
    monitor, reviewer = make_user("monitor"), make_user("reviewer")
    aid = app.submit(monitor.actor, report(), "s").state["id"]
    app.add_information(reviewer.actor, aid, "a second witness came forward", None,
                        {"witness_names": [SECRET_NAMES[2]]}, "i")
    project(services)
    dumped = json.dumps(dump_views(services), default=str)
    for name in SECRET_NAMES:
        for word in name.split():
            assert word.lower() not in dumped.lower()
    views = Views(services.app.db)
    assert views.list_page(reviewer.actor, Filters(q="Zeta")).items == []
    assert len(views.list_page(reviewer.actor, Filters(q="witness came")).items) == 1


def test_text_search_ignores_case_and_accents_and_needs_every_word(services: Tracker,
                                                                   make_user: Any) -> None:
    app = services.app
    monitor, reviewer = make_user("monitor"), make_user("reviewer")
    first = app.submit(monitor.actor, report(summary="Écoles fermées à Ménaka"), "a").state["id"]
    app.submit(monitor.actor, report(summary="Exécutions sommaires près de Mopti",
                                     alleged_perpetrators=[{"name": "Dan Na Ambassagou",
                                                            "type": "militia"}]), "b")
    app.add_information(reviewer.actor, first, "Les enseignants ont fui vers Gao.", None, None,
                        "i")
    project(services)
    views = Views(services.app.db)

    def found(q: str) -> list[str]:
        return [i["summary"] for i in views.list_page(reviewer.actor, Filters(q=q)).items]

    assert found("ecoles MENAKA") == ["Écoles fermées à Ménaka"]
    assert found("enseignants") == ["Écoles fermées à Ménaka"]  # added later
    assert found("ambassagou") == ["Exécutions sommaires près de Mopti"]  # perpetrator name
    assert found("ecoles mopti") == []
    assert found('fui* "GAO" (') == ["Écoles fermées à Ménaka"]  # query syntax is not read
    with pytest.raises(ValidationError):
        found("?!")


def test_incidents_dated_by_a_range_use_their_first_day(services: Tracker,
                                                        make_user: Any) -> None:
    app = services.app
    monitor, auditor = make_user("monitor"), make_user("auditor")
    app.submit(monitor.actor, report(incident={"date_from": "2018-03-30",
                                               "date_to": "2018-04-02"}), "r")
    app.submit(monitor.actor, report(incident={"date": "2018-01-01", "date_precision": "year"}),
               "y")
    project(services)
    views = Views(services.app.db)
    page = views.list_page(auditor.actor, Filters())
    items = {i["incident_date_precision"]: i for i in page.items}
    assert (items["range"]["incident_date"], items["range"]["incident_date_to"],
            items["range"]["incident_month"]) == ("2018-03-30", "2018-04-02", "2018-03")
    assert items["year"]["incident_month"] is None
    april = Filters(incident_from=date(2018, 4, 1))
    assert views.list_page(auditor.actor, april).items == []
    months = views.stats(auditor.actor, Filters(), ["month"])["groups"]
    assert [g["key"]["month"] for g in months] == ["2018-03", None]


def test_the_reviewer_queue_holds_what_waits_for_them_longest_untouched_first(
        services: Tracker, make_user: Any) -> None:
    app = services.app
    monitor, me, colleague = make_user("monitor"), make_user("reviewer"), make_user("reviewer")
    ids = [app.submit(monitor.actor, report(summary=f"case {n}"), f"s{n}").state["id"]
           for n in range(4)]
    for aid in ids:
        app.assign(me.actor, aid, me.id, f"a{aid}")
    app.assign(me.actor, ids[3], colleague.id, "to colleague")
    app.change_status(me.actor, ids[2], "rejected", "out of mandate", None, "rej")
    app.comment(me.actor, ids[0], "still checking", "touch")  # now the most recently touched
    project(services)
    queue = reviewer_queue(services.app.db, me.actor)
    assert [i["id"] for i in queue] == [ids[1], ids[0]]
    assert [i["id"] for i in Views(services.app.db).queue(colleague.actor)] == [ids[3]]


def test_waiting_for_a_position(services: Tracker, make_user: Any) -> None:
    monitor = make_user("monitor")
    db = services.app.db
    position = services.app.submit(monitor.actor, report(), "s").position
    started = time.monotonic()
    assert wait_for_position(db, position, 0.2) is False
    assert time.monotonic() - started >= 0.2
    thread, stop = start_thread(services, poll_interval=0.02)
    try:
        assert wait_for_position(db, position, 10.0) is True
    finally:
        stop.set()
        thread.join(timeout=5)
    assert wait_for_position(db, position, 0) is True
    assert lag(services.app) == {"position": position, "log_size": position + 1, "lag": 0}


def test_the_cli_reports_status_and_rebuilds(services: Tracker, config: Config,
                                             make_user: Any) -> None:
    from tracker.cli import main

    monitor = make_user("monitor")
    for n in range(3):
        services.app.submit(monitor.actor, report(summary=f"c{n}"), f"c{n}")
    env = {"TRACKER_DATA_DIR": str(config.data_dir), "DATABASE_URL": config.database_url}
    runner = CliRunner()
    before = runner.invoke(main, ["projections", "status", "--json"], env=env)
    assert before.exit_code == 0, before.output
    assert json.loads(before.output) == {
        "projection": "allegations", "position": -1, "log_size": 3, "lag": 3,
        "allegations": 0, "schema_version": SCHEMA_VERSION, "indexed": True}
    rebuilt = runner.invoke(main, ["projections", "rebuild", "--batch-size", "2"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt the views from 3 event(s)" in rebuilt.output
    after = runner.invoke(main, ["projections", "status"], env=env)
    assert "views include positions: 0 to 2" in after.output and "lag: 0" in after.output
    assert "indexed: yes" in after.output
    assert status(services.app)["allegations"] == 3


def test_a_projector_thread_survives_a_failing_step(services: Tracker, make_user: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker.projections import runner

    monitor = make_user("monitor")
    fail = {"left": 2}
    original = runner.Projector.step

    def flaky(self: runner.Projector) -> int:
        if fail["left"]:
            fail["left"] -= 1
            raise ConnectionError("database went away")
        return original(self)

    monkeypatch.setattr(runner.Projector, "step", flaky)
    position = services.app.submit(monitor.actor, report(), "s").position
    stop = threading.Event()
    thread = threading.Thread(target=runner.run_projector, args=(services, stop, 0.01))
    thread.start()
    try:
        assert wait_for_position(services.app.db, position, 10.0)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert fail["left"] == 0


def test_perpetrator_names_match_in_any_case_beyond_ascii(services: Tracker,
                                                          make_user: Any) -> None:
    app = services.app
    monitor, reviewer = make_user("monitor"), make_user("reviewer")
    app.submit(monitor.actor, report(alleged_perpetrators=[
        {"name": "Groupe ÉTAT de la Straße", "type": "militia"}]), "s")
    app.submit(monitor.actor, report(), "other")
    project(services)
    views = Views(services.app.db)
    for query in ("groupe état de la strasse", "GROUPE ÉTAT DE LA STRASSE", "militia"):
        found = views.list_page(reviewer.actor, Filters(perpetrator=query)).items
        assert [i["alleged_perpetrators"][0]["name"] for i in found] == [
            "Groupe ÉTAT de la Straße"], query
    counts = views.stats(reviewer.actor, Filters(perpetrator="groupe état de la strasse"),
                         ["perpetrator"])["groups"]
    assert [(g["key"]["perpetrator"], g["allegations"]) for g in counts] == [
        ("Groupe ÉTAT de la Straße", 1)]


@pytest.mark.parametrize("values", [
    [], ["a"], ["child_recruitment_use", "extrajudicial_execution"], ['say "no"'],
    ["back\\slash"], ["tab\there", "new\nline"], ["é", "ü\u2028"], ["\x7f"], [None], [1, "a"]])
def test_the_fast_json_of_lists_is_the_library_encoders(values: list[Any]) -> None:
    from tracker.projections.allegations import _ENCODER, perpetrators_json, strings_json

    assert strings_json(values) == _ENCODER.encode(values)
    pairs = [(v, "armed_group") for v in values] + [("FAMa", v) for v in values]
    assert perpetrators_json(pairs) == _ENCODER.encode(
        [{"name": n, "type": k} for n, k in pairs])


def test_events_of_a_versioned_class_are_decoded_by_the_library_with_its_upcasters(
        services: Tracker, make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker.domain.allegation import Allegation
    from tracker.projections import allegations as view_module

    app = services.app
    monitor, reviewer = make_user("monitor"), make_user("reviewer")
    aid = app.submit(monitor.actor, report(), "s").state["id"]
    app.assign(reviewer.actor, aid, reviewer.id, "a")
    project(services)
    plain = dump_views(services)

    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["assignee"] = state["assignee"].upper()  # what an upcaster might do

    monkeypatch.setattr(Allegation.Assigned, "class_version", 2, raising=False)
    monkeypatch.setattr(Allegation.Assigned, "upcast_v1_v2", staticmethod(upcast_v1_v2),
                        raising=False)
    monkeypatch.setattr(view_module, "_KINDS", {})
    rebuild(app)
    assert view_rows(services)[aid]["assignee"] == reviewer.id.upper()
    monkeypatch.undo()
    rebuild(app)
    assert dump_views(services) == plain


@pytest.mark.parametrize("window", [1, 2, 3, 7, 1000])
def test_text_search_among_the_newest_rows_first_gives_the_same_pages(
        services: Tracker, make_user: Any, monkeypatch: pytest.MonkeyPatch,
        window: int) -> None:
    from tracker.projections import listing

    app = services.app
    monitor, other, reviewer = make_user("monitor"), make_user("monitor", "org-b"), \
        make_user("reviewer")
    for n in range(24):
        words = ["common"] + (["half"] if n % 2 else []) + (["rare"] if n in (3, 17) else [])
        author = monitor if n % 3 else other
        aid = app.submit(author.actor, report(summary=f"case {n} {' '.join(words)}"),
                         f"s{n}").state["id"]
        if n % 4 == 0:
            app.add_information(reviewer.actor, aid, "later a rare detail", None, None, f"i{n}")
    project(services)
    with app.db.tx() as cur:  # ties of submission time, broken by id
        seqs = [r["seq"] for r in cur.execute("SELECT seq FROM allegation_list").fetchall()]
        cur.executemany("UPDATE allegation_list SET submitted_at = ? WHERE seq = ?",
                        [("2020-01-01T00:00:00+00:00", q) for q in seqs if q % 5 == 0])
    views = Views(app.db)

    def pages(actor: Any, f: Filters, limit: int) -> list[str]:
        seen, cursor = [], None
        while True:
            page = views.list_page(actor, f, limit=limit, cursor=cursor)
            seen += [i["id"] for i in page.items]
            if not (cursor := page.next_cursor):
                return seen

    cases = [(reviewer.actor, Filters(q=q)) for q in ("common", "half", "rare", "case half")]
    cases += [(monitor.actor, Filters(q="half")),
              (reviewer.actor, Filters(q="common", status=("received",)))]
    original = listing._recent_matches
    for actor, f in cases:
        for limit in (1, 2, 5):
            monkeypatch.setattr(listing, "_recent_matches", lambda *a: None)
            expected = pages(actor, f, limit)  # the whole index asked at once
            monkeypatch.setattr(listing, "_recent_matches", original)
            monkeypatch.setattr(listing, "SEARCH_WINDOW", window)
            assert pages(actor, f, limit) == expected, (f, limit)
            assert expected
