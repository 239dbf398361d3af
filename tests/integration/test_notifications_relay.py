"""The relay against the real store and a real Redis: what it enqueues, records and resumes."""
# ruff: noqa: F811  (pytest fixtures imported from the support module are parameters)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from tests.conftest import User
from tests.integration.test_notifications_support import (  # noqa: F401
    Receiver,
    drain_relay,
    free_port,
    queue_name,
    receiver,
    redis,
    relay,
    relay_settings,
    rows,
)
from tracker.bootstrap import Tracker
from tracker.notifications import log, rules
from tracker.notifications.subscriptions import Subscriptions
from workers import queue as rq_queue
from workers.relay import Relay


def subscribe(services: Tracker, user: User, url: str = "http://127.0.0.1:9/hook",
              **filters: Any) -> str:
    store = Subscriptions(services.app.db, services.app.keys.master)
    record, _ = store.create(user.actor, {"channel": "webhook", "url": url,
                                          "secret": "s" * 20, **filters})
    return record.id


def queued_ids(redis: Redis, name: str) -> list[str]:
    return rq_queue(redis, name).get_job_ids()


def test_the_relay_enqueues_one_json_job_per_delivery_and_records_it_pending(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    rev_ml = make_user("reviewer", "un-office")
    rev_ne = make_user("reviewer", "un-office")
    s_ml = subscribe(services, rev_ml, countries=["ML"])
    subscribe(services, rev_ne, countries=["NE"])
    first = services.app.submit(monitor.actor, report, "r1")
    second = services.app.submit(monitor.actor, report, "r2")

    drain_relay(relay)

    expected = {rules.delivery_id(first.position, s_ml), rules.delivery_id(second.position, s_ml)}
    assert set(queued_ids(redis, queue_name)) == expected
    job = Job.fetch(rules.delivery_id(first.position, s_ml), connection=redis,
                    serializer=JSONSerializer)
    assert job.func_name == "workers.jobs.deliver"
    assert job.args == [rules.delivery_id(first.position, s_ml), first.position, s_ml]
    assert job.retries_left == 3
    recorded = rows(services)
    assert {r["id"] for r in recorded} == expected
    assert {r["state"] for r in recorded} == {"pending"}
    assert {r["owner"] for r in recorded} == {rev_ml.id}
    with services.app.db.read() as cur:
        assert log.relay_position(cur, "notifications") == second.position + 1
    assert relay.step() == 0  # nothing new: nothing enqueued twice
    assert len(queued_ids(redis, queue_name)) == 2


def test_assignment_and_later_events_follow_the_assignee(
        services: Tracker, relay: Relay, make_user: Callable[..., User], monitor: User,
        report: dict[str, Any]) -> None:
    lead = make_user("reviewer", "un-office")
    assignee = make_user("reviewer", "un-office")
    s_lead = subscribe(services, lead, event_types=["Assigned"])  # no new-allegation mail
    s_assignee = subscribe(services, assignee, countries=["NE"])
    aid = services.app.submit(monitor.actor, report, "r").state["id"]
    assigned = services.app.assign(lead.actor, aid, assignee.id, "r")
    moved = services.app.change_status(lead.actor, aid, "under_review", "triage", None, "r")
    comment = services.app.comment(lead.actor, aid, "looks serious", "r")
    info = services.app.add_information(monitor.actor, aid, "two more witnesses", None, None, "r")

    drain_relay(relay)

    assert {(r["position"], r["subscription_id"]) for r in rows(services)} == {
        (assigned.position, s_assignee), (moved.position, s_assignee),
        (info.position, s_assignee)}
    assert comment.position not in {r["position"] for r in rows(services)}
    assert s_lead not in {r["subscription_id"] for r in rows(services)}


def test_with_redis_down_the_relay_records_nothing_and_resumes_where_it_was(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    sid = subscribe(services, make_user("reviewer"))
    first = services.app.submit(monitor.actor, report, "r1")
    nowhere = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    down = Relay(services, nowhere, relay_settings(queue_name))

    with pytest.raises(RedisError):
        down.step()

    assert rows(services) == []
    with services.app.db.read() as cur:
        assert log.relay_position(cur, "notifications") == 0
    drain_relay(relay)
    assert queued_ids(redis, queue_name) == [rules.delivery_id(first.position, sid)]


def test_a_crash_between_enqueue_and_commit_re_enqueues_only_the_same_ids(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    sid = subscribe(services, make_user("reviewer"))
    first = services.app.submit(monitor.actor, report, "r1")

    def crash(*_: Any) -> bool:
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(log, "advance", crash)
        with pytest.raises(RuntimeError):
            relay.step()
    assert rows(services) == []
    drain_relay(relay)

    assert set(queued_ids(redis, queue_name)) == {rules.delivery_id(first.position, sid)}
    assert [r["id"] for r in rows(services)] == [rules.delivery_id(first.position, sid)]


def test_two_relays_at_once_record_each_delivery_once(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    subscribe(services, make_user("reviewer"))
    for n in range(5):
        services.app.submit(monitor.actor, report, f"r{n}")
    other = Relay(services, redis, relay_settings(queue_name, batch=2))

    while relay.step() + other.step():
        pass

    assert len(rows(services)) == 5
    assert len(set(queued_ids(redis, queue_name))) == 5


def test_a_subscription_created_later_hears_only_of_later_events(
        services: Tracker, relay: Relay, make_user: Callable[..., User], monitor: User,
        report: dict[str, Any]) -> None:
    services.app.submit(monitor.actor, report, "before")
    sid = subscribe(services, make_user("reviewer"))
    later = services.app.submit(monitor.actor, report, "after")

    drain_relay(relay)

    assert [(r["position"], r["subscription_id"]) for r in rows(services)] == [
        (later.position, sid)]


def test_the_sweep_re_enqueues_a_pending_delivery_whose_job_vanished(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    sid = subscribe(services, make_user("reviewer"))
    first = services.app.submit(monitor.actor, report, "r1")
    drain_relay(relay)
    did = rules.delivery_id(first.position, sid)
    rq_queue(redis, queue_name).empty()  # Redis lost its data
    with services.app.db.tx() as cur:
        cur.execute("UPDATE notification_deliveries SET updated_at = '2000-01-01T00:00:00'")

    assert relay.sweep() == 1
    drain_relay(relay)

    assert queued_ids(redis, queue_name) == [f"{did}_1"]
    assert rows(services)[0]["drive"] == 1
