"""Faults: Redis stopped and restarted, a worker killed mid-delivery, retries with backoff."""
# ruff: noqa: F811  (pytest fixtures imported from the support module are parameters)

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.conftest import User
from tests.integration.test_notifications_support import (  # noqa: F401
    OwnRedis,
    Processes,
    Receiver,
    free_port,
    process_env,
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
from tracker.notifications import log, rules
from tracker.notifications.subscriptions import Subscriptions
from workers.relay import Relay

pytestmark = pytest.mark.slow
SECRET = "fault-tolerant-secret-0123456789"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def webhook(services: Tracker, user: User, url: str) -> str:
    store = Subscriptions(services.app.db, services.app.keys.master)
    record, _ = store.create(user.actor, {"channel": "webhook", "url": url, "secret": SECRET})
    return record.id


def relay_position(services: Tracker) -> int:
    with services.app.db.read() as cur:
        return log.relay_position(cur, "notifications")


def arrived(receiver: Receiver) -> set[str]:
    return {h.headers["X-Tracker-Delivery"] for h in receiver.delivered()}


def test_redis_stopped_while_allegations_are_submitted_loses_nothing(
        services: Tracker, own_redis: OwnRedis, queue_name: str, receiver: Receiver,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    sid = webhook(services, make_user("reviewer"), receiver.url())
    procs = Processes(process_env(services, own_redis.url))
    connection = Redis.from_url(own_redis.url, socket_connect_timeout=1)
    try:
        procs.worker(queue_name, "--no-scheduler")
        with relay_thread(Relay(services, connection, relay_settings(queue_name))):
            before = [services.app.submit(monitor.actor, report, f"b{n}") for n in range(3)]
            wait_until(lambda: len(arrived(receiver)) == 3, 30, "deliveries before the outage")
            wait_until(lambda: relay_position(services) == before[-1].position + 1, 10,
                       "the relay to commit (it may do so after the worker delivered)")

            own_redis.stop()
            during = [services.app.submit(monitor.actor, report, f"d{n}") for n in range(4)]
            time.sleep(1.5)  # the relay retries, the worker waits
            assert len(arrived(receiver)) == 3
            assert relay_position(services) == before[-1].position + 1  # nothing recorded

            own_redis.start()
            expected = {rules.delivery_id(r.position, sid) for r in before + during}
            wait_until(lambda: arrived(receiver) == expected, 60, "every delivery after restart")
            # the worker records the outcome just after the receiver answered
            wait_until(lambda: {r["state"] for r in rows(services)} == {"delivered"}, 20,
                       "every delivery recorded as delivered")
    finally:
        procs.stop()
        connection.close()
    assert {r["state"] for r in rows(services)} == {"delivered"}
    assert all(h.signed_with(SECRET) for h in receiver.delivered())


def test_a_worker_killed_mid_delivery_is_replaced_and_the_delivery_arrives_with_its_id(
        services: Tracker, redis: Redis, queue_name: str, receiver: Receiver,
        processes: Processes, make_user: Callable[..., User], monitor: User,
        report: dict[str, Any]) -> None:
    receiver.plans["/slow"] = [("sleep", 3, 200), 200]
    sid = webhook(services, make_user("reviewer"), receiver.url("/slow"))
    first = processes.worker(queue_name)
    with relay_thread(Relay(services, redis, relay_settings(queue_name, job_timeout=4))):
        submitted = services.app.submit(monitor.actor, report, "r1")
        wait_until(lambda: receiver.calls.get("/slow") == 1, 30, "the first attempt")
        processes.kill(first)  # SIGKILL in the middle of the delivery

        processes.worker(queue_name)
        did = rules.delivery_id(submitted.position, sid)
        wait_until(lambda: [r for r in rows(services) if r["state"] == "delivered"], 60,
                   "the delivery after the new worker started")

    [row] = rows(services)
    assert row["id"] == did and row["attempts"] == 2
    assert "worker died" in row["last_error"]
    hits = receiver.delivered("/slow")
    assert {h.headers["X-Tracker-Delivery"] for h in hits} == {did}  # duplicates share the id
    assert 1 <= len(hits) <= 2


def test_retries_wait_for_their_backoff_through_rq_s_scheduler(
        services: Tracker, redis: Redis, queue_name: str, receiver: Receiver,
        processes: Processes, make_user: Callable[..., User], monitor: User,
        report: dict[str, Any]) -> None:
    receiver.plans["/flaky"] = [503, 200]
    webhook(services, make_user("reviewer"), receiver.url("/flaky"))
    processes.worker(queue_name)  # with the scheduler
    settings = relay_settings(queue_name, backoff_base=2, jitter=0.0, max_attempts=3)
    with relay_thread(Relay(services, redis, settings)):
        services.app.submit(monitor.actor, report, "r1")
        wait_until(lambda: receiver.calls.get("/flaky") == 1, 30, "the first attempt")
        failed_at = time.monotonic()
        wait_until(lambda: receiver.delivered("/flaky"), 30, "the retry")
        assert time.monotonic() - failed_at >= 1.5
        # the worker records the outcome just after the receiver answered
        wait_until(lambda: [r for r in rows(services) if r["state"] == "delivered"], 20,
                   "the retry recorded as delivered")
    [row] = rows(services)
    assert (row["state"], row["attempts"], row["last_error"]) == (
        "delivered", 2, "HTTP 503 Service Unavailable")

