"""A NUL character anywhere in a request is a clear 400 and records nothing, on every database
(PostgreSQL text cannot hold one: it used to be a 500 there)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import event_count

NUL = quote("a\x00b")


@pytest.mark.parametrize("query", ["q", "country", "assignee", "category", "status",
                                   "perpetrator", "cursor", "organisation"])
def test_a_nul_in_a_list_filter_is_a_400(client, admin, query):
    r = client.get(f"/v1/allegations?{query}={NUL}", headers=admin.headers)
    assert r.status_code == 400, r.get_data(as_text=True)
    problem = r.get_json()
    assert f"'{query}'" in problem["detail"] and "NUL" in problem["detail"]


def test_a_nul_in_a_query_parameter_name_is_a_400(client, admin):
    r = client.get(f"/v1/allegations?{NUL}=1", headers=admin.headers)
    assert r.status_code == 400


def test_a_nul_anywhere_in_a_json_body_is_a_400_and_records_nothing(client, monitor, report,
                                                                      services):
    before = event_count(services)
    for body in ({**report, "summary": "x\x00y"},
                 {**report, "sources": [{"kind": "witness", "notes": "\x00"}]},
                 {**report, "\x00": 1}):
        r = client.post("/v1/allegations", json=body, headers=monitor.headers)
        assert r.status_code == 400, r.get_data(as_text=True)
        assert "NUL" in r.get_json()["detail"]
    assert event_count(services) == before


def test_the_text_backslash_u0000_is_not_a_nul(client, monitor, report):
    body = {**report, "summary": "a note about the escape \\u0000 in a log file"}
    r = client.post("/v1/allegations", json=body, headers=monitor.headers)
    assert r.status_code == 201, r.get_data(as_text=True)
