"""`python -m workers.worker`: an RQ worker (no fork per job, JSON jobs) that delivers.

The worker runs each job in its own process (SimpleWorker), so the tracker services are
built once, after start-up. A worker killed in the middle of a job leaves it in RQ's
StartedJobRegistry; any worker's maintenance (every --maintenance-interval seconds) finds it
once its heartbeat expires (job timeout + --grace seconds) and retries it, and the delivery
keeps its id.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import uuid
from typing import Any

from redis.exceptions import RedisError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from tracker import config as tracker_config
from tracker.bootstrap import build
from workers import jobs, redis_connection

logger = logging.getLogger("workers.worker")


class DeliveryWorker(SimpleWorker):
    """A SimpleWorker whose started-job entries expire soon after the job's own timeout.

    A SimpleWorker does not heartbeat while a job runs, so RQ gives its jobs timeout + 60 s
    before calling them abandoned; our jobs are bounded by their timeout (SIGALRM), so a
    shorter grace finds the jobs of a killed worker sooner without touching live ones.
    """

    grace: int = 15
    stopping: bool = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        """SIGTERM/SIGINT: finish the current job, then leave (and do not restart)."""
        self.stopping = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """The started-registry TTL of a job: its timeout plus a grace period."""
        if job.timeout is None or job.timeout < 0:
            return super().get_heartbeat_ttl(job, working_time)
        return int(job.timeout) + self.grace


def make_worker(connection: Any, queue: str, grace: int, maintenance_interval: int,
                worker_ttl: int) -> DeliveryWorker:
    """A worker on one queue with the JSON serializer."""
    worker = DeliveryWorker(
        [queue], connection=connection, serializer=JSONSerializer,
        name=f"{queue}.{os.uname().nodename}.{os.getpid()}.{uuid.uuid4().hex[:6]}",
        maintenance_interval=maintenance_interval, worker_ttl=worker_ttl)
    worker.grace = grace
    return worker


def main(argv: list[str] | None = None) -> None:
    """Run a delivery worker until SIGTERM/SIGINT (`--burst`: until the queue is empty)."""
    p = argparse.ArgumentParser(prog="python -m workers.worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queue", default=tracker_config.from_env().queue,
                   help="RQ queue name (default: TRACKER_QUEUE, else %(default)s)")
    p.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    p.add_argument("--webhook-timeout", type=float, default=5.0,
                   help="seconds to connect, and for each read, per webhook attempt")
    p.add_argument("--smtp-timeout", type=float, default=10.0)
    p.add_argument("--grace", type=int, default=15,
                   help="seconds after a job's timeout before it counts as abandoned")
    p.add_argument("--maintenance-interval", type=int, default=30,
                   help="seconds between registry clean-ups (abandoned jobs are retried)")
    p.add_argument("--worker-ttl", type=int, default=60,
                   help="seconds a silent worker stays registered; also bounds idle waits")
    p.add_argument("--no-scheduler", action="store_true",
                   help="do not run RQ's scheduler (retries with backoff need one somewhere)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    config = tracker_config.from_env()
    settings = jobs.DeliverySettings(webhook_timeout=a.webhook_timeout,
                                     smtp_timeout=a.smtp_timeout)
    services = None
    try:
        while True:
            try:
                connection = redis_connection(config)
                worker = make_worker(connection, a.queue, a.grace, a.maintenance_interval,
                                     a.worker_ttl)
                if services is None:
                    # Built after the worker exists but before work(): the scheduler
                    # process RQ forks never uses them, and no job forks.
                    services = build(config)
                    jobs.configure(services, settings)
                worker.work(burst=a.burst, with_scheduler=not a.no_scheduler)
            except RedisError as e:
                logger.warning("Redis unavailable (%s); retrying in 2 s", e)
                time.sleep(2)
                continue
            if a.burst or worker.stopping:
                return
            logger.warning("worker loop ended (Redis connection lost?); restarting in 2 s")
            time.sleep(2)
    finally:
        if services is not None:
            services.close()


if __name__ == "__main__":
    main()
