"""RQ job functions: they take ids, build the tracker services once per process, deliver."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from rq.job import Job, get_current_job

from tracker import config as tracker_config
from tracker.bootstrap import Tracker, build
from tracker.domain.allegation import Allegation
from tracker.domain.errors import NotFoundError
from tracker.notifications import log
from tracker.notifications.deliveries import Deliveries, Planned
from tracker.notifications.rules import LoggedEvent
from tracker.notifications.subscriptions import Record, Subscriptions
from workers import email, webhook

JOB = "workers.jobs.deliver"
ON_FAILURE = "workers.jobs.on_failure"

logger = logging.getLogger("workers.jobs")


class DeliveryFailedError(Exception):
    """An attempt failed and will be retried (RQ schedules the next one with backoff)."""


@dataclass(frozen=True)
class DeliverySettings:
    """How a worker delivers (command-line options of `python -m workers.worker`)."""

    webhook_timeout: float = 5.0
    smtp_timeout: float = 10.0


@dataclass
class Runtime:
    """A worker process's services, built after any fork and reused for every job."""

    services: Tracker
    settings: DeliverySettings
    subscriptions: Subscriptions
    deliveries: Deliveries


_runtime: Runtime | None = None


def configure(services: Tracker, settings: DeliverySettings | None = None) -> Runtime:
    """Install this process's services (the worker does it at start, lazily on first job)."""
    global _runtime
    app = services.app
    _runtime = Runtime(services, settings or DeliverySettings(),
                       Subscriptions(app.db, app.keys.master, services.config.webhook_deny_private),
                       Deliveries(app.db))
    return _runtime


def runtime() -> Runtime:
    """This process's services, built from the environment on first use."""
    return _runtime or configure(build(tracker_config.from_env()))


def deliver(delivery_id: str, position: int, subscription_id: str) -> str:
    """Deliver one notification (one attempt); raise to have RQ retry it with backoff."""
    rt = runtime()
    with rt.services.app.db.read() as cur:  # one read transaction for what the job needs
        try:
            sub = rt.subscriptions.get(subscription_id, include_deleted=True, cur=cur)
        except NotFoundError:
            logger.warning("delivery %s: subscription %s no longer exists", delivery_id,
                           subscription_id)
            return "gone"
        event = log.event_at(rt.services.app, int(position), cur)
    if event is None:
        raise LookupError(f"no event at log position {position}: is this worker using the "
                          "same DATABASE_URL as the relay?")
    logged = log.logged(int(position), event)
    planned = Planned(delivery_id, sub.id, sub.owner, sub.channel, logged.position,
                      logged.allegation_id, logged.event_type)
    job = get_current_job()
    lease = float(job.timeout) if job is not None and job.timeout else 60.0
    claimed = rt.deliveries.begin_attempt(planned, lease)
    if claimed is None:
        return "skipped"  # delivered, dead, or another attempt is in flight
    if sub.deleted_at is not None or not sub.owner_active:
        rt.deliveries.give_up(delivery_id, "The subscription was deleted, or its owner "
                              "disabled, before delivery; nothing was sent.")
        return "cancelled"
    try:
        _send(rt, sub, delivery_id, event, logged, int(claimed["attempts"]))
    except Exception as e:  # every failure is recorded, then retried or dead-lettered
        final = job is None or not job.retries_left
        rt.deliveries.attempt_failed(delivery_id, _describe(e), final)
        if final:
            logger.warning("delivery %s: dead letter after attempt %s: %s", delivery_id,
                           claimed["attempts"], _describe(e))
            return "failed"
        raise DeliveryFailedError(_describe(e)) from e
    rt.deliveries.delivered(delivery_id)
    return "delivered"


def _send(rt: Runtime, sub: Record, delivery_id: str, event: Any, logged: LoggedEvent,
          attempt: int) -> None:
    recorded_at = event.timestamp.isoformat()
    data = dict(logged.data)
    if sub.channel == "webhook":
        payload = webhook.body(delivery_id, logged.event_type, logged.allegation_id,
                               logged.position, recorded_at, data)
        webhook.post(sub.target, payload,
                     webhook.headers(delivery_id, logged.event_type, sub.secret or "", payload,
                                     attempt),
                     rt.settings.webhook_timeout, rt.services.config.webhook_deny_private)
        return
    smtp = email.parse_smtp_url(rt.services.config.smtp_url)
    msg = email.message(sub.target, smtp.sender, delivery_id, logged.event_type,
                        logged.position, recorded_at,
                        _allegation(rt, logged.allegation_id, event.originator_version),
                        data, _link(rt.services.config, logged.allegation_id))
    email.send(smtp, msg, rt.settings.smtp_timeout)


def _allegation(rt: Runtime, allegation_id: str, version: int) -> dict[str, Any]:
    a: Allegation = rt.services.app.repository.get(UUID(allegation_id), version=version)
    location = (a.incident or {}).get("location") or {}
    return {"summary": a.summary, "status": a.status, "categories": list(a.categories),
            "country": location.get("country"), "assignee": a.assignee}


def _link(cfg: tracker_config.Config, allegation_id: str) -> str:
    base = cfg.public_url.rstrip("/") or f"http://{cfg.host}:{cfg.port}"
    return f"{base}/v1/allegations/{allegation_id}"


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, webhook.WebhookError | email.EmailError):
        return text
    return f"{type(error).__name__}: {text}"


def on_failure(job: Job, connection: Any, exc_type: type, exc: BaseException,
               traceback: Any) -> None:
    """RQ failure callback: record an attempt whose worker died (abandoned by a crash)."""
    from rq.exceptions import AbandonedJobError

    if not isinstance(exc, AbandonedJobError):
        return  # ordinary failures were recorded by `deliver` itself
    delivery_id = str(job.args[0])
    final = not job.retries_left
    runtime().deliveries.attempt_failed(
        delivery_id, "The worker died during this attempt (abandoned job); "
        + ("giving up." if final else "retrying."), final)
