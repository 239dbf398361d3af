"""Bad input gets a clear 4xx problem naming the field, and records nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.api.helpers import assert_problem, submit
from tests.conftest import REPORT, event_count


def without(path: str) -> dict[str, Any]:
    body = copy.deepcopy(REPORT)
    *parents, last = path.split(".")
    node = body
    for p in parents:
        node = node[p]
    del node[last]
    return body


def with_value(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(REPORT)
    *parents, last = path.split(".")
    node = body
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    node[last] = value
    return body


REQUIRED = ["summary", "description", "categories", "incident", "source",
            "incident.location", "incident.location.country", "source.type",
            "source.reliability", "source.credibility", "source.description"]


@pytest.mark.parametrize("field", REQUIRED)
def test_each_required_field_missing(client, monitor, services, field: str) -> None:
    r = client.post("/v1/allegations", json=without(field), headers=monitor.headers)
    body = assert_problem(r, 422)
    assert field in body["errors"], body
    assert event_count(services) == 0


BAD = [
    ("summary", ""), ("summary", "x" * 301), ("summary", 42), ("description", ""),
    ("description", "x" * 20_001), ("categories", []), ("categories", ["genocide"]),
    ("categories", "extrajudicial_execution"), ("categories", ["other", "other"]),
    ("incident.location.country", "XX"), ("incident.location.country", "mli"),
    ("incident.location.country", "ml"), ("incident.location.lat", 91),
    ("incident.location.lat", -90.5), ("incident.location.lon", 181),
    ("incident.location.lat", "north"), ("incident.location.precision", "street"),
    ("incident.date", "2018-02-30"), ("incident.date", "2999-01-01"),
    ("incident.date_precision", "week"),
    ("source.type", "rumour"), ("source.reliability", "G"), ("source.reliability", "a"),
    ("source.credibility", 7), ("source.credibility", 0), ("source.credibility", "2"),
    ("source.credibility", 2.5), ("victims.count", -1), ("victims.children", 4),
    ("victims.male", "3"), ("victims.female", 1),
    ("alleged_perpetrators", [{"name": "X", "type": "aliens"}]),
    ("alleged_perpetrators", [{"type": "militia"}]),
    ("consent.share_with_partners", "perhaps"), ("language", "French!"),
    ("protected.victim_names", "Alice"), ("protected.ssn", "123"),
]


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v!r}"[:40] for f, v in BAD])
def test_each_wrong_value_is_refused_naming_the_field(client, monitor, services, field, value):
    r = client.post("/v1/allegations", json=with_value(field, value), headers=monitor.headers)
    body = assert_problem(r, 422)
    named = list(body["errors"])
    top = field.rsplit(".", 1)[0] if field.startswith("victims.") else field
    assert any(n == field or n.startswith(field + ".") or n == top or n.startswith(top)
               for n in named), named
    assert event_count(services) == 0


def test_incident_needs_one_way_of_dating(client, monitor, services):
    both = with_value("incident.date_from", "2018-01-01")
    assert "incident.date" in assert_problem(
        client.post("/v1/allegations", json=both, headers=monitor.headers), 422)["errors"]
    neither = without("incident.date")
    assert_problem(client.post("/v1/allegations", json=neither, headers=monitor.headers), 422)
    backwards = without("incident.date")
    del backwards["incident"]["date_precision"]
    backwards["incident"].update(date_from="2018-03-01", date_to="2018-01-01")
    body = assert_problem(client.post("/v1/allegations", json=backwards,
                                      headers=monitor.headers), 422)
    assert "incident.date_from" in body["errors"]
    assert event_count(services) == 0


def test_a_date_range_is_accepted(client, monitor):
    body = without("incident.date")
    del body["incident"]["date_precision"]
    body["incident"].update(date_from="2018-01-01", date_to="2018-03-31")
    created = submit(client, monitor, body)
    assert created["incident"]["date_from"] == "2018-01-01"


def test_malformed_json_wrong_content_type_and_oversized_bodies(client, monitor, services):
    r = client.post("/v1/allegations", data="{not json",
                    headers={**monitor.headers, "Content-Type": "application/json"})
    assert_problem(r, 400)
    r = client.post("/v1/allegations", data=json.dumps(REPORT),
                    headers={**monitor.headers, "Content-Type": "text/plain"})
    assert_problem(r, 415)
    huge = with_value("description", "x" * (1024 * 1024))
    r = client.post("/v1/allegations", json=huge, headers=monitor.headers)
    assert_problem(r, 413)
    r = client.post("/v1/allegations", json=[REPORT], headers=monitor.headers)
    assert_problem(r, 422)
    assert event_count(services) == 0


def test_deeply_nested_json_is_refused_not_crashing(client, monitor, services):
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/v1/allegations", data=deep,
                    headers={**monitor.headers, "Content-Type": "application/json"})
    assert_problem(r, 400)
    nested: Any = "x"
    for _ in range(40):
        nested = {"a": nested}
    r = client.post("/v1/allegations", json={**REPORT, "notes": nested}, headers=monitor.headers)
    assert r.status_code in (400, 422)
    assert event_count(services) == 0


def test_status_change_input(client, monitor, reviewer, services, report):
    aid = submit(client, monitor, report)["id"]
    cases = [({"status": "under_review"}, "reason"), ({"reason": "x"}, "status"),
             ({"status": "done", "reason": "x"}, "status"),
             ({"status": "under_review", "reason": ""}, "reason"),
             ({"status": "under_review", "reason": "x", "expected_version": 0},
              "expected_version"),
             ({"status": "duplicate", "reason": "x", "duplicate_of": "nope"}, "duplicate_of")]
    for body, field in cases:
        r = client.post(f"/v1/allegations/{aid}/status", json=body, headers=reviewer.headers)
        assert field in assert_problem(r, 422)["errors"], (body, r.get_json())
    r = client.post(f"/v1/allegations/{aid}/status", headers={**reviewer.headers,
                    "If-Match": "garbage"}, json={"status": "under_review", "reason": "x"})
    assert "If-Match" in assert_problem(r, 422)["errors"]
    assert event_count(services) == 1


def test_evidence_and_information_input(client, monitor, services, report):
    aid = submit(client, monitor, report)["id"]
    evidence = {"sha256": "0" * 64, "media_type": "image/png", "size": 10, "description": "d"}
    for field, value in [("sha256", "xyz"), ("sha256", "0" * 63), ("media_type", "png"),
                         ("size", -1), ("description", ""), ("uri", "javascript:alert(1)")]:
        r = client.post(f"/v1/allegations/{aid}/evidence", json={**evidence, field: value},
                        headers=monitor.headers)
        assert field in assert_problem(r, 422)["errors"]
    r = client.post(f"/v1/allegations/{aid}/information", json={}, headers=monitor.headers)
    assert "text" in assert_problem(r, 422)["errors"]
    r = client.post(f"/v1/allegations/{aid}/information", headers=monitor.headers,
                    json={"text": "x", "source": {"type": "witness"}})
    assert "source.reliability" in assert_problem(r, 422)["errors"]
    assert event_count(services) == 1


def test_bad_idempotency_key_header(client, monitor, services):
    r = client.post("/v1/allegations", json=REPORT,
                    headers={**monitor.headers, "Idempotency-Key": "x" * 300})
    assert "Idempotency-Key" in assert_problem(r, 422)["errors"]
    assert event_count(services) == 0


def test_unknown_routes_and_methods_are_problems(client, monitor):
    assert_problem(client.get("/v1/nothing-here", headers=monitor.headers), 404)
    assert_problem(client.delete("/v1/allegations", headers=monitor.headers), 405)
