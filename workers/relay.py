"""The relay: follows the event log from its own position and enqueues one job per delivery.

Jobs are enqueued first, with deterministic ids; then the pending delivery rows and the new
position commit in one transaction. Redis down: nothing commits, the relay waits and retries
the same batch. A crash between enqueue and commit re-enqueues the same ids, which workers
recognise (a delivered row is never sent again).
"""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Retry
from rq.callbacks import Callback
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.serializers import JSONSerializer

from tracker import config as tracker_config
from tracker.bootstrap import Tracker, build
from tracker.notifications import log, rules
from tracker.notifications.deliveries import Deliveries, Planned, job_id, record_pending
from tracker.notifications.rules import Facts
from tracker.notifications.subscriptions import Subscriptions
from workers import QUEUE, queue, redis_connection
from workers.jobs import JOB, ON_FAILURE

logger = logging.getLogger("workers.relay")
_LIVE = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED}


@dataclass(frozen=True)
class RelaySettings:
    """Batching, polling and the retry policy given to every job."""

    queue: str = QUEUE
    name: str = "notifications"
    batch: int = 500
    poll_interval: float = 0.05
    max_attempts: int = 6
    backoff_base: int = 10
    backoff_cap: int = 3600
    jitter: float = 0.2
    job_timeout: int = 60
    sweep_interval: float = 60.0
    stale_after: float = 1800.0


def backoff(attempts: int, base: int, cap: int, jitter: float,
            rng: random.Random | None = None) -> list[int]:
    """Seconds before retries 1 … attempts-1: base·2^i, ± jitter, at most `cap` (whole s)."""
    r = rng or random.Random()
    out = []
    for i in range(max(attempts - 1, 0)):
        nominal = min(cap, base * 2 ** i)
        out.append(max(0, round(nominal * (1 + r.uniform(-jitter, jitter)))))
    return out


class _LostRaceError(Exception):
    """Another relay advanced the position first; this batch is rolled back."""


class Relay:
    """Follows the log, decides deliveries with the rules, enqueues, records, advances."""

    def __init__(self, services: Tracker, connection: Redis,
                 settings: RelaySettings | None = None) -> None:
        self.services = services
        self.app = services.app
        self.settings = settings or RelaySettings()
        self.connection = connection
        self.queue: Queue = queue(connection, self.settings.queue)
        self.subscriptions = Subscriptions(self.app.db, self.app.keys.master)
        self.deliveries = Deliveries(self.app.db)
        self._last_sweep = 0.0

    def step(self) -> int:
        """One pass: a batch of the log, due re-drives, and now and then a sweep."""
        done = self.relay_log() + self.redrive()
        if time.monotonic() - self._last_sweep >= self.settings.sweep_interval:
            self.sweep()
            self._last_sweep = time.monotonic()
        return done

    def relay_log(self) -> int:
        """Relay the next batch of events; returns how many were read."""
        s = self.settings
        with self.app.db.read() as cur:
            start = log.relay_position(cur, s.name)
            batch = log.read(self.app, cur, start, s.batch)
            if not batch:
                return 0
            subs = self.subscriptions.for_rules(cur)
            facts = log.load_facts(cur, {str(e.originator_id) for _p, e in batch})
        planned: list[Planned] = []
        changed: dict[str, tuple[Facts, int]] = {}
        for position, event in batch:
            seen = log.logged(position, event)
            before = facts.get(seen.allegation_id)
            for sub in rules.recipients(seen, before, subs):
                planned.append(Planned(rules.delivery_id(position, sub.id), sub.id, sub.owner,
                                       sub.channel, position, seen.allegation_id,
                                       seen.event_type))
            after = rules.facts_after(before, seen)
            if after is not None and after != before:
                facts[seen.allegation_id] = after
                changed[seen.allegation_id] = (after, position)
        self._enqueue([(p.id, p.id, p.position, p.subscription_id) for p in planned])
        end = batch[-1][0] + 1
        try:
            with self.app.db.tx() as cur:
                if not log.advance(cur, s.name, start, end):
                    raise _LostRaceError
                record_pending(cur, planned)
                log.save_facts(cur, changed)
        except _LostRaceError:
            logger.info("another relay advanced past %s; re-reading", start)
            return 0
        if planned:
            logger.info("positions %s-%s: %s deliveries enqueued", start, end - 1, len(planned))
        return len(batch)

    def redrive(self) -> int:
        """Enqueue the re-drives asked for (dead letters an admin or owner retried)."""
        due = self.deliveries.drives_due(self.settings.batch)
        if not due:
            return 0
        self._enqueue([(job_id(r["id"], int(r["drive"])), r["id"], int(r["position"]),
                        r["subscription_id"]) for r in due])
        self.deliveries.mark_enqueued([(r["id"], int(r["drive"])) for r in due])
        return len(due)

    def sweep(self) -> int:
        """Find pending deliveries whose job vanished (e.g. Redis lost data) and re-drive them."""
        stale = self.deliveries.stale_pending(timedelta(seconds=self.settings.stale_after),
                                              self.settings.batch)
        count = 0
        for row in stale:
            jid = job_id(row["id"], int(row["drive"]))
            try:
                status = Job.fetch(jid, connection=self.connection,
                                   serializer=JSONSerializer).get_status()
            except NoSuchJobError:
                status = None
            if status in _LIVE:
                continue
            if status == JobStatus.FAILED:
                self.deliveries.give_up(row["id"], "The job failed in the queue (its worker "
                                        "died on the last attempt); re-drive it to try again.")
            else:
                self.deliveries.redrive_lost(row["id"], int(row["drive"]))
            count += 1
        if count:
            logger.warning("sweep: %s pending deliveries had lost their job", count)
        return count

    def _enqueue(self, jobs: list[tuple[str, str, int, str]]) -> None:
        s = self.settings
        if not jobs:
            return
        datas = []
        for jid, delivery_id, position, subscription_id in jobs:
            intervals = backoff(s.max_attempts, s.backoff_base, s.backoff_cap, s.jitter)
            datas.append(Queue.prepare_data(
                JOB, args=[delivery_id, position, subscription_id], job_id=jid,
                timeout=s.job_timeout, result_ttl=600, failure_ttl=7 * 86400,
                retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
                on_failure=Callback(ON_FAILURE), description=f"deliver {delivery_id}"))
        for i in range(0, len(datas), 1000):
            self.queue.enqueue_many(datas[i:i + 1000])

    def run(self, stop: threading.Event | None = None) -> None:
        """Relay until `stop` is set; waits out Redis or database outages, losing nothing."""
        stop = stop or threading.Event()
        failures = 0
        while not stop.is_set():
            try:
                done = self.step()
            except RedisError as e:
                failures += 1
                wait = min(30.0, 0.25 * 2 ** min(failures, 8))
                logger.warning("Redis unavailable (%s); retrying in %.1f s", e, wait)
                stop.wait(wait)
                continue
            except Exception:  # a database outage must not kill the relay: wait and retry
                failures += 1
                logger.exception("relay step failed; retrying")
                stop.wait(min(30.0, 0.25 * 2 ** min(failures, 8)))
                continue
            failures = 0
            if done == 0:
                stop.wait(self.settings.poll_interval)


def main(argv: list[str] | None = None) -> None:
    """`python -m workers.relay`: run the relay (configuration from the environment)."""
    p = argparse.ArgumentParser(prog="python -m workers.relay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = RelaySettings()
    p.add_argument("--queue", default=tracker_config.from_env().queue,
                   help="RQ queue name (default: TRACKER_QUEUE, else %(default)s)")
    p.add_argument("--poll", type=float, default=d.poll_interval, help="seconds between polls")
    p.add_argument("--batch", type=int, default=d.batch, help="events per transaction")
    p.add_argument("--max-attempts", type=int, default=d.max_attempts,
                   help="attempts per delivery before it becomes a dead letter")
    p.add_argument("--backoff", type=int, default=d.backoff_base,
                   help="first retry delay in seconds, doubled each retry (with jitter)")
    p.add_argument("--job-timeout", type=int, default=d.job_timeout, help="seconds per attempt")
    p.add_argument("--sweep-interval", type=float, default=d.sweep_interval)
    p.add_argument("--stale-after", type=float, default=d.stale_after,
                   help="seconds before a pending delivery's missing job is re-enqueued")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s relay %(message)s")
    settings = RelaySettings(queue=a.queue, poll_interval=a.poll, batch=a.batch,
                             max_attempts=a.max_attempts, backoff_base=a.backoff,
                             job_timeout=a.job_timeout, sweep_interval=a.sweep_interval,
                             stale_after=a.stale_after)
    services = build(tracker_config.from_env())
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        Relay(services, redis_connection(services.config), settings).run(stop)
    finally:
        services.close()


def _stop_on_signals(stop: threading.Event) -> None:
    import signal

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":
    main()
