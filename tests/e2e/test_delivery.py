"""End to end: monitors submit over HTTP; a relay and a worker process deliver signed webhooks."""
# ruff: noqa: F811  (pytest fixtures imported from the support module are parameters)

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis

from tests.conftest import User
from tests.integration.test_notifications_support import (  # noqa: F401
    Processes,
    Receiver,
    processes,
    queue_name,
    receiver,
    redis,
    relay_settings,
    relay_thread,
    rows,
    wait_until,
)
from tracker.bootstrap import Tracker
from tracker.notifications import rules
from workers.relay import Relay


def subscribe(client: Any, user: User, receiver: Receiver, path: str, **filters: Any
              ) -> tuple[str, str]:
    secret = f"secret-of-{path.strip('/')}-0123456789"
    answer = client.post("/v1/subscriptions", headers=user.headers,
                         json={"channel": "webhook", "url": receiver.url(path),
                               "secret": secret, **filters})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"], secret


def submit(client: Any, user: User, report: dict[str, Any], country: str,
           categories: list[str]) -> tuple[str, int]:
    body = copy.deepcopy(report)
    body["incident"]["location"] = {"country": country, "precision": "country"}
    body["categories"] = categories
    answer = client.post("/v1/allegations", headers=user.headers, json=body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"], int(answer.headers["X-Tracker-Position"])


def test_submissions_produce_exactly_the_expected_signed_deliveries(
        client: Any, services: Tracker, redis: Redis, queue_name: str, receiver: Receiver,
        processes: Processes, make_user: Callable[..., User], report: dict[str, Any]) -> None:
    lead, r_all, r_ml, r_children, r_ne = (make_user("reviewer", "un-office") for _ in range(5))
    m_a, m_b = make_user("monitor", "org-a"), make_user("monitor", "org-b")
    subs = {"all": subscribe(client, r_all, receiver, "/all"),
            "ml": subscribe(client, r_ml, receiver, "/ml", countries=["ML"]),
            "children": subscribe(client, r_children, receiver, "/children",
                                  categories=["child_recruitment_use"]),
            "ne": subscribe(client, r_ne, receiver, "/ne", countries=["NE"]),
            "mona": subscribe(client, m_a, receiver, "/mona")}
    processes.worker(queue_name, "--no-scheduler")
    with relay_thread(Relay(services, redis, relay_settings(queue_name))):
        a1, p1 = submit(client, m_a, report, "ML", ["arbitrary_arrest_detention"])
        _a2, p2 = submit(client, m_b, report, "NE", ["child_recruitment_use"])
        _a3, p3 = submit(client, m_a, report, "ML", ["child_recruitment_use", "other"])
        steps = [client.post(f"/v1/allegations/{a1}/assignment", headers=lead.headers,
                             json={"assignee": r_ml.id}),
                 client.post(f"/v1/allegations/{a1}/status", headers=lead.headers,
                             json={"status": "under_review", "reason": "triage"}),
                 client.post(f"/v1/allegations/{a1}/comments", headers=lead.headers,
                             json={"text": "nobody is notified of comments"}),
                 client.post(f"/v1/allegations/{a1}/status", headers=lead.headers,
                             json={"status": "needs_information", "reason": "which town?"})]
        assert [s.status_code for s in steps] == [200, 200, 200, 200]
        p4, p5, _p6, p7 = (int(s.headers["X-Tracker-Position"]) for s in steps)
        expected = {rules.delivery_id(p, subs[name][0]) for p, name in [
            (p1, "all"), (p1, "ml"), (p2, "all"), (p2, "children"), (p2, "ne"),
            (p3, "all"), (p3, "ml"), (p3, "children"), (p4, "ml"), (p5, "ml"), (p7, "ml"),
            (p7, "mona")]}

        def arrived() -> set[str]:
            return {h.headers["X-Tracker-Delivery"] for h in receiver.delivered()}

        wait_until(lambda: len(arrived()) >= len(expected), 30, "every delivery")
        time.sleep(0.5)  # anything unexpected would arrive now

    assert arrived() == expected
    assert len(receiver.delivered()) == len(expected)  # and, without faults, no repeats
    secrets = {f"/{name}": secret for name, (_sid, secret) in subs.items()}
    for hit in receiver.delivered():
        assert hit.signed_with(secrets[hit.path]), hit.path
        assert hit.json["delivery_id"] == hit.headers["X-Tracker-Delivery"]
    wait_until(lambda: {r["state"] for r in rows(services)} == {"delivered"}, 10,
               "every delivery recorded as delivered")


@pytest.mark.slow
def test_a_slow_receiver_does_not_hold_up_other_deliveries(
        client: Any, services: Tracker, redis: Redis, queue_name: str, receiver: Receiver,
        processes: Processes, make_user: Callable[..., User], monitor: User,
        report: dict[str, Any]) -> None:
    receiver.plans["/slow"] = [("sleep", 30, 200)]
    subscribe(client, make_user("reviewer"), receiver, "/slow")
    subscribe(client, make_user("reviewer"), receiver, "/fast")
    processes.worker(queue_name, "--no-scheduler", "--webhook-timeout", "0.5")
    started = time.monotonic()
    with relay_thread(Relay(services, redis, relay_settings(queue_name, max_attempts=2))):
        for _ in range(3):
            submit(client, monitor, report, "ML", ["other"])
        wait_until(lambda: len(receiver.delivered("/fast")) == 3, 20, "the fast receiver")
    took = time.monotonic() - started
    assert took < 15, f"one worker took {took:.1f} s: the 30 s receiver held it up"
    slow = wait_until(lambda: [r for r in rows(services) if r["state"] == "failed"], 20,
                      "the slow deliveries to become dead letters")
    assert all("timed out" in r["last_error"] for r in slow)
