"""The HTTP API of subscriptions and delivery records: who may do what, and what is shown."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import User
from tracker.bootstrap import Tracker
from tracker.notifications import schema
from tracker.notifications.deliveries import Planned, record_pending

HOOK = {"channel": "webhook", "url": "http://127.0.0.1:8000/hooks/tracker",
        "secret": "0123456789abcdef-secret"}


def test_a_reviewer_subscribes_a_webhook_and_never_sees_the_secret_again(
        client: Any, reviewer: User) -> None:
    answer = client.post("/v1/subscriptions", headers=reviewer.headers,
                         json={**HOOK, "countries": ["ML"], "categories": ["other"]})
    assert answer.status_code == 201, answer.get_json()
    created = answer.get_json()
    assert answer.headers["Location"].endswith(f"/v1/subscriptions/{created['id']}")
    assert created["url"] == HOOK["url"] and created["countries"] == ["ML"]
    assert "secret" not in created

    listed = client.get("/v1/subscriptions", headers=reviewer.headers).get_json()
    assert [s["id"] for s in listed] == [created["id"]]
    one = client.get(f"/v1/subscriptions/{created['id']}", headers=reviewer.headers)
    for body in (*listed, one.get_json()):
        assert "secret" not in body and HOOK["secret"] not in str(body)


def test_without_a_secret_the_server_generates_one_and_shows_it_once(
        client: Any, reviewer: User) -> None:
    answer = client.post("/v1/subscriptions", headers=reviewer.headers,
                         json={"channel": "webhook", "url": "https://example.org/hook"})
    secret = answer.get_json()["secret"]
    assert answer.status_code == 201 and len(secret) >= 32
    assert secret not in client.get("/v1/subscriptions", headers=reviewer.headers).text


def test_email_subscriptions_and_monitors(client: Any, reviewer: User, monitor: User) -> None:
    mail = {"channel": "email", "address": "rev@example.org", "event_types": ["Submitted"]}
    assert client.post("/v1/subscriptions", headers=reviewer.headers, json=mail
                       ).status_code == 201
    # Monitors subscribe to requests for information on their organisation's allegations.
    assert client.post("/v1/subscriptions", headers=monitor.headers, json=mail
                       ).status_code == 201


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_other_roles_may_not_subscribe(client: Any, make_user: Callable[..., User],
                                       role: str) -> None:
    answer = client.post("/v1/subscriptions", headers=make_user(role).headers, json=HOOK)
    assert answer.status_code == 403
    assert answer.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("body, field", [
    ({**HOOK, "url": "ftp://example.org/x"}, "url"),
    ({**HOOK, "url": "https://user:pw@example.org/x"}, "url"),
    ({**HOOK, "url": "not a url"}, "url"),
    ({**HOOK, "secret": "short"}, "secret"),
    ({"channel": "webhook", "address": "a@example.org", "url": "https://example.org"}, "address"),
    ({"channel": "email"}, "address"),
    ({"channel": "email", "address": "not-an-address"}, "address"),
    ({"channel": "email", "address": "a@example.org", "secret": "0123456789abcdefgh"}, "secret"),
    ({"channel": "sms", "address": "+1"}, "channel"),
    ({**HOOK, "countries": ["XX"]}, "countries.0"),
    ({**HOOK, "categories": ["genocide"]}, "categories.0"),
    ({**HOOK, "event_types": ["Exploded"]}, "event_types.0"),
    ({**HOOK, "owner": "someone-else"}, "owner"),
])
def test_invalid_subscriptions_are_refused_field_by_field(
        client: Any, reviewer: User, body: dict[str, Any], field: str) -> None:
    answer = client.post("/v1/subscriptions", headers=reviewer.headers, json=body)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["errors"]


def test_private_addresses_are_refused_when_the_deployment_says_so(
        services: Tracker, make_user: Callable[..., User]) -> None:
    from api import create_app

    services.config = dataclasses.replace(services.config, webhook_deny_private=True)
    client = create_app(services=services).test_client()
    reviewer = make_user("reviewer")
    for url in ("http://127.0.0.1:9000/h", "http://localhost/h", "http://10.1.2.3/h",
                "http://[::1]/h", "http://169.254.169.254/latest/meta-data",
                "http://192.168.0.10/h", "http://no-such-host.invalid/h"):
        answer = client.post("/v1/subscriptions", headers=reviewer.headers,
                             json={**HOOK, "url": url})
        assert answer.status_code == 422, url
        assert "url" in answer.get_json()["errors"]
    public = client.post("/v1/subscriptions", headers=reviewer.headers,
                         json={**HOOK, "url": "https://93.184.215.14/hook"})
    assert public.status_code == 201


def test_subscriptions_are_private_to_their_owner(client: Any,
                                                  make_user: Callable[..., User]) -> None:
    alice, bob = make_user("reviewer"), make_user("reviewer")
    sid = client.post("/v1/subscriptions", headers=alice.headers, json=HOOK).get_json()["id"]

    assert client.get("/v1/subscriptions", headers=bob.headers).get_json() == []
    assert client.get(f"/v1/subscriptions/{sid}", headers=bob.headers).status_code == 404
    assert client.delete(f"/v1/subscriptions/{sid}", headers=bob.headers).status_code == 404
    assert client.delete(f"/v1/subscriptions/{sid}", headers=alice.headers).status_code == 204
    assert client.get("/v1/subscriptions", headers=alice.headers).get_json() == []
    assert client.delete(f"/v1/subscriptions/{sid}", headers=alice.headers).status_code == 404


def _deliveries(services: Tracker, owner: User, count: int, state: str = "pending",
                start: int = 0) -> list[str]:
    planned = [Planned(f"{owner.id}-{n:03d}", "sub", owner.id, "webhook", start + n, "a",
                       "Submitted") for n in range(count)]
    schema.ensure(services.app.db)
    with services.app.db.tx() as cur:
        record_pending(cur, planned)
        cur.execute("UPDATE notification_deliveries SET state = ? WHERE owner = ?",
                    (state, owner.id))
    return [p.id for p in planned]


def test_reviewers_list_their_own_deliveries_and_admins_everyone_s(
        client: Any, services: Tracker, make_user: Callable[..., User], admin: User) -> None:
    alice, bob = make_user("reviewer"), make_user("reviewer")
    mine = _deliveries(services, alice, 3)
    theirs = _deliveries(services, bob, 2, state="failed", start=10)

    own = client.get("/v1/notifications", headers=alice.headers).get_json()
    assert [d["id"] for d in own["items"]] == mine[::-1] and own["next_cursor"] is None
    assert own["items"][0]["attempts"] == 0 and own["items"][0]["state"] == "pending"
    everyone = client.get("/v1/notifications", headers=admin.headers).get_json()
    assert {d["id"] for d in everyone["items"]} == set(mine + theirs)
    failed = client.get("/v1/notifications?state=failed", headers=admin.headers).get_json()
    assert {d["id"] for d in failed["items"]} == set(theirs)
    assert client.get(f"/v1/notifications/{theirs[0]}", headers=alice.headers
                      ).status_code == 404


def test_delivery_pages_follow_an_opaque_cursor(client: Any, services: Tracker,
                                               reviewer: User) -> None:
    ids = _deliveries(services, reviewer, 7)
    seen: list[str] = []
    url = "/v1/notifications?limit=3"
    while url:
        page = client.get(url, headers=reviewer.headers).get_json()
        seen += [d["id"] for d in page["items"]]
        url = page["next_cursor"] and f"/v1/notifications?limit=3&cursor={page['next_cursor']}"
    assert seen == ids[::-1]
    for bad in ("limit=201", "limit=0", "cursor=%%%", "cursor=bm9wZQ", "state=lost"):
        answer = client.get(f"/v1/notifications?{bad}", headers=reviewer.headers)
        assert answer.status_code == 422, bad


def test_only_dead_letters_can_be_re_driven_by_their_owner_or_an_admin(
        client: Any, services: Tracker, make_user: Callable[..., User], admin: User) -> None:
    alice, bob = make_user("reviewer"), make_user("reviewer")
    [failed] = _deliveries(services, alice, 1, state="failed")
    [pending] = _deliveries(services, bob, 1, start=5)

    assert client.post(f"/v1/notifications/{failed}/retry", json={}, headers=bob.headers
                       ).status_code == 404
    answer = client.post(f"/v1/notifications/{failed}/retry", json={}, headers=alice.headers)
    assert answer.status_code == 202
    assert answer.get_json()["state"] == "pending" and answer.get_json()["redrives"] == 1
    again = client.post(f"/v1/notifications/{pending}/retry", json={}, headers=admin.headers)
    assert again.status_code == 409 and "only failed" in again.get_json()["detail"]


def test_auditors_and_unauthenticated_callers_see_no_deliveries(
        client: Any, auditor: User) -> None:
    assert client.get("/v1/notifications", headers=auditor.headers).status_code == 403
    assert client.get("/v1/notifications").status_code == 401
    assert client.post("/v1/subscriptions", json=HOOK).status_code == 401
