"""GET /v1/stats: counts grouped by the database, at a stated views position."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.helpers import assert_problem, submit
from tests.integration.conftest_projections import project, report

URL = "/v1/stats"


def _stats(client: Any, user: Any, **query: Any) -> dict[str, Any]:
    r = client.get(URL, query_string=query, headers=user.headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    body: dict[str, Any] = r.get_json()
    return body


@pytest.fixture
def corpus(client: Any, services: Any, monitor: Any, reviewer: Any) -> list[str]:
    """Three allegations in Mali and Niger, one of them rejected, all in the views."""
    ids = [
        submit(client, monitor, report(
            categories=["child_recruitment_use", "attack_school_hospital"],
            victims={"count": 10, "children": 8},
            alleged_perpetrators=[{"name": "JNIM", "type": "armed_group"},
                                  {"name": "FAMa", "type": "state_forces"}],
            incident={"date": "2019-07-15", "date_precision": "day"}))["id"],
        submit(client, monitor, report(
            categories=["child_recruitment_use"], victims={"count": 2, "children": 2},
            alleged_perpetrators=[{"name": "JNIM", "type": "armed_group"}],
            location={"country": "NE", "admin1": "Tillabéri"},
            incident={"date_from": "2019-07-30", "date_to": "2019-08-02"}))["id"],
        submit(client, monitor, report(categories=["attack_school_hospital"],
                                       alleged_perpetrators=[]))["id"],
    ]
    services.app.change_status(reviewer.actor, ids[2], "rejected", "out of scope", None, "r")
    project(services)
    return ids


def _grouped(client: Any, user: Any, group_by: str, **query: Any) -> list[tuple[Any, ...]]:
    return _groups(_stats(client, user, group_by=group_by, **query), group_by)


def _groups(body: dict[str, Any], dims: str = "") -> list[tuple[Any, ...]]:
    keys = [d for d in dims.split(",") if d]
    for g in body["groups"]:
        assert sorted(g["key"]) == sorted(keys)
    return [(*(g["key"][k] for k in keys), g["allegations"], g["victims"], g["children"])
            for g in body["groups"]]


def test_who_may_see_statistics(client: Any, monitor: Any, reviewer: Any, auditor: Any,
                                admin: Any) -> None:
    assert_problem(client.get(URL, headers=monitor.headers), 403)
    for user in (reviewer, auditor, admin):
        assert client.get(URL, headers=user.headers).status_code == 200
    assert_problem(client.get(URL), 401)


def test_totals_without_grouping(client: Any, auditor: Any, corpus: list[str]) -> None:
    body = _stats(client, auditor)
    assert body == {"position": 3, "groups": [
        {"key": {}, "allegations": 3, "victims": 15, "children": 10}]}


def test_grouped_by_category_an_allegation_counts_in_each_of_its_categories(
        client: Any, auditor: Any, corpus: list[str]) -> None:
    assert _grouped(client, auditor, "category") == [
        ("attack_school_hospital", 2, 13, 8), ("child_recruitment_use", 2, 12, 10)]


def test_several_dimensions_and_the_null_group(client: Any, auditor: Any,
                                               corpus: list[str]) -> None:
    assert _grouped(client, auditor, "country,perpetrator") == [
        ("ML", "FAMa", 1, 10, 8), ("ML", "JNIM", 1, 10, 8), ("ML", None, 1, 3, 0),
        ("NE", "JNIM", 1, 2, 2)]
    assert _grouped(client, auditor, "status,month") == [
        ("received", "2019-07", 2, 12, 10), ("rejected", "2018-05", 1, 3, 0)]
    assert _grouped(client, auditor, "perpetrator_type,admin1") == [
        ("armed_group", "Gao", 1, 10, 8), ("armed_group", "Tillabéri", 1, 2, 2),
        ("state_forces", "Gao", 1, 10, 8), (None, "Gao", 1, 3, 0)]


def test_filters_narrow_the_counts_and_the_grouped_values(client: Any, auditor: Any,
                                                          corpus: list[str]) -> None:
    assert _grouped(client, auditor, "category", category="child_recruitment_use") == [
        ("child_recruitment_use", 2, 12, 10)]
    assert _grouped(client, auditor, "perpetrator", perpetrator="fama") == [
        ("FAMa", 1, 10, 8)]
    assert _groups(_stats(client, auditor, status="rejected")) == [(1, 3, 0)]
    assert _groups(_stats(client, auditor, country="NE", q="checkpoint")) == [(1, 2, 2)]
    assert _grouped(client, auditor, "month", incident_from="2019-07-20") == [("2019-07", 1, 2, 2)]


@pytest.mark.parametrize("query", [
    {"group_by": "colour"}, {"group_by": "category,colour"}, {"group_by": "category,"},
    {"status": "bogus"}, {"limit": 5}, {"min_position": "x"}])
def test_bad_queries_are_422(client: Any, auditor: Any, query: dict[str, Any]) -> None:
    assert assert_problem(client.get(URL, query_string=query, headers=auditor.headers),
                          422)["errors"]


def test_the_position_is_that_of_the_counts(client: Any, services: Any, auditor: Any,
                                            monitor: Any, corpus: list[str]) -> None:
    extra = client.post("/v1/allegations", json=report(), headers=monitor.headers)
    stale = _stats(client, auditor)
    assert (stale["position"], stale["groups"][0]["allegations"]) == (3, 3)
    project(services)
    fresh = _stats(client, auditor, min_position=extra.headers["X-Tracker-Position"])
    assert (fresh["position"], fresh["groups"][0]["allegations"]) == (4, 4)


def test_min_position_not_reached_is_503(app: Any, client: Any, auditor: Any,
                                         monitor: Any) -> None:
    app.config["TRACKER_MIN_POSITION_TIMEOUT"] = 0.2
    submit(client, monitor, report())
    r = client.get(URL, query_string={"min_position": 0}, headers=auditor.headers)
    assert_problem(r, 503)
    assert r.headers["Retry-After"]
