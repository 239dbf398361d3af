"""Delivering for real: webhooks to an HTTP receiver, e-mail to an SMTP server, retries."""
# ruff: noqa: F811  (pytest fixtures imported from the support module are parameters)

from __future__ import annotations

import dataclasses
import email
import email.policy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from redis import Redis

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
    work_burst,
)
from tracker.bootstrap import Tracker
from tracker.notifications import rules
from tracker.notifications.subscriptions import Subscriptions
from workers.relay import Relay

SECRET = "a-long-shared-secret-for-hmac"


def subscribe(services: Tracker, user: User, **spec: Any) -> str:
    store = Subscriptions(services.app.db, services.app.keys.master)
    record, _ = store.create(user.actor, spec)
    return record.id


def webhook(services: Tracker, user: User, url: str) -> str:
    return subscribe(services, user, channel="webhook", url=url, secret=SECRET)


class Inbox:
    """An aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def test_a_webhook_gets_the_public_event_signed_with_the_subscription_secret(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str, receiver: Receiver,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    sid = webhook(services, make_user("reviewer"), receiver.url())
    submitted = services.app.submit(monitor.actor, report, "r1")

    drain_relay(relay)
    work_burst(services, redis, queue_name)

    [hit] = receiver.delivered()
    did = rules.delivery_id(submitted.position, sid)
    assert hit.signed_with(SECRET)
    assert hit.headers["X-Tracker-Delivery"] == did
    assert hit.headers["X-Tracker-Event"] == "Submitted"
    body = hit.json
    assert set(body) == {"delivery_id", "event_type", "allegation_id", "position",
                         "recorded_at", "data"}
    assert body["delivery_id"] == did and body["position"] == submitted.position
    assert body["allegation_id"] == submitted.state["id"]
    assert body["data"]["summary"] == report["summary"]
    assert "protected" not in body["data"] and "fingerprint" not in body["data"]
    for name in ("Zeta Placeholder-Victim", "Omega Placeholder-Witness", "+223", "Cousin"):
        assert name not in hit.body.decode()
    [row] = rows(services)
    assert row["state"] == "delivered" and row["attempts"] == 1 and row["delivered_at"]


def test_a_receiver_failing_three_times_gets_the_fourth_attempt_with_the_same_id(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str, receiver: Receiver,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    receiver.plans["/flaky"] = [500, 500, 500, 200]
    webhook(services, make_user("reviewer"), receiver.url("/flaky"))
    services.app.submit(monitor.actor, report, "r1")

    drain_relay(relay)
    work_burst(services, redis, queue_name)

    [hit] = receiver.delivered()
    assert receiver.calls["/flaky"] == 4
    [row] = rows(services)
    assert (row["state"], row["attempts"]) == ("delivered", 4)
    assert row["last_error"] == "HTTP 500 Internal Server Error"
    assert hit.headers["X-Tracker-Delivery"] == row["id"]
    assert hit.headers["X-Tracker-Attempt"] == "4"


def test_a_receiver_that_never_answers_becomes_a_dead_letter_then_is_re_driven(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str, receiver: Receiver,
        make_user: Callable[..., User], monitor: User, admin: User, client: Any,
        report: dict[str, Any]) -> None:
    receiver.plans["/down"] = [("hang", 1.0)]
    webhook(services, make_user("reviewer"), receiver.url("/down"))
    services.app.submit(monitor.actor, report, "r1")

    drain_relay(relay)
    work_burst(services, redis, queue_name, webhook_timeout=0.3)

    [row] = rows(services)
    assert (row["state"], row["attempts"]) == ("failed", 4)
    assert "timed out" in row["last_error"] and row["failed_at"]
    assert receiver.delivered() == []
    failed = client.get("/v1/notifications?state=failed", headers=admin.headers).get_json()
    assert [d["id"] for d in failed["items"]] == [row["id"]]

    receiver.plans["/down"] = [200]  # the receiver is back
    answer = client.post(f"/v1/notifications/{row['id']}/retry", json={},
                         headers=admin.headers)
    assert answer.status_code == 202 and answer.get_json()["state"] == "pending"
    drain_relay(relay)
    work_burst(services, redis, queue_name)

    [hit] = receiver.delivered()
    assert hit.headers["X-Tracker-Delivery"] == row["id"]
    [row] = rows(services)
    assert (row["state"], row["attempts"], row["drive"]) == ("delivered", 5, 1)


def test_email_reaches_the_smtp_server_without_personal_data(
        services: Tracker, redis: Redis, queue_name: str, smtp: tuple[Inbox, int],
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    inbox, port = smtp
    services.config = dataclasses.replace(
        services.config, smtp_url=f"smtp://127.0.0.1:{port}?from=tracker@example.org",
        public_url="https://tracker.example.org")
    relay = Relay(services, redis, relay_settings(queue_name))
    reviewer = make_user("reviewer")
    sid = subscribe(services, reviewer, channel="email", address="rev@example.org")
    submitted = services.app.submit(monitor.actor, report, "r1")
    aid = submitted.state["id"]

    drain_relay(relay)
    work_burst(services, redis, queue_name)

    [msg] = inbox.messages
    did = rules.delivery_id(submitted.position, sid)
    assert msg["To"] == "rev@example.org" and msg["From"] == "tracker@example.org"
    assert msg["X-Tracker-Delivery"] == did
    assert msg["Subject"].startswith("[Tracker] New allegation matching your subscription")
    text = msg.get_content()
    assert f"https://tracker.example.org/v1/allegations/{aid}" in text
    assert report["summary"] in text and "ML" in text
    for name in ("Zeta Placeholder-Victim", "Omega Placeholder-Witness", "+223", "Cousin"):
        assert name not in msg.as_string()
    assert rows(services)[0]["state"] == "delivered"


def test_without_smtp_settings_email_deliveries_fail_with_a_clear_error(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    subscribe(services, make_user("reviewer"), channel="email", address="rev@example.org")
    services.app.submit(monitor.actor, report, "r1")

    drain_relay(relay)
    work_burst(services, redis, queue_name)

    [row] = rows(services)
    assert row["state"] == "failed" and "SMTP_URL is not set" in row["last_error"]


def test_nothing_is_sent_once_the_subscription_is_deleted_or_its_owner_disabled(
        services: Tracker, relay: Relay, redis: Redis, queue_name: str, receiver: Receiver,
        make_user: Callable[..., User], monitor: User, report: dict[str, Any]) -> None:
    leaving, deleting = make_user("reviewer"), make_user("reviewer")
    webhook(services, leaving, receiver.url("/leaving"))
    sid = webhook(services, deleting, receiver.url("/deleting"))
    services.app.submit(monitor.actor, report, "r1")
    drain_relay(relay)

    services.users.disable(leaving.id)
    Subscriptions(services.app.db, services.app.keys.master).delete(sid, deleting.id)
    work_burst(services, redis, queue_name)

    assert receiver.delivered() == []
    assert [r["state"] for r in rows(services)] == ["failed", "failed"]
    assert all("nothing was sent" in r["last_error"] for r in rows(services))
