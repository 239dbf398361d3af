"""Rate limits: failed authentications per client address, writes per token (429 + Retry-After).

Counters live in Redis so that every API process shares them; without REDIS_URL (a lone
process) or while Redis is unreachable they fall back to this process's memory.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from flask import Flask, request

from api.errors import TooManyRequests

log = logging.getLogger("tracker.api.limits")
AUTH_WINDOW = 60


class Counters:
    """Fixed-window counters: Redis when configured, else (or on failure) in memory."""

    def __init__(self, redis_url: str) -> None:
        self.prefix = f"tracker:rl:{uuid.uuid4().hex[:8]}:" if not redis_url else "tracker:rl:"
        self.redis: Any = None
        if redis_url:
            from redis import Redis

            self.redis = Redis.from_url(redis_url, socket_timeout=0.5,
                                        socket_connect_timeout=0.5)
        self.local: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def _window(self, seconds: int) -> tuple[int, int]:
        now = time.time()
        start = int(now // seconds) * seconds
        return start, max(1, math.ceil(start + seconds - now))

    def get(self, name: str, seconds: int) -> tuple[int, int]:
        """(count in the current window, seconds until it ends)."""
        start, left = self._window(seconds)
        key = f"{self.prefix}{name}:{start}"
        if self.redis is not None:
            try:
                return int(self.redis.get(key) or 0), left
            except Exception as e:  # noqa: BLE001 - degrade to this process, never to an error
                log.warning("rate-limit counters unavailable (%s); counting locally",
                            type(e).__name__)
        with self.lock:
            return self.local.get(key, 0), left

    def incr(self, name: str, seconds: int) -> tuple[int, int]:
        """Count one more; (new count, seconds until the window ends)."""
        start, left = self._window(seconds)
        key = f"{self.prefix}{name}:{start}"
        if self.redis is not None:
            try:
                pipe = self.redis.pipeline()
                pipe.incr(key)
                pipe.expire(key, seconds + 1)
                return int(pipe.execute()[0]), left
            except Exception as e:  # noqa: BLE001 - as above
                log.warning("rate-limit counters unavailable (%s); counting locally",
                            type(e).__name__)
        with self.lock:
            if len(self.local) > 100_000:
                self.local.clear()
            self.local[key] += 1
            return self.local[key], left


class Limits:
    """The two limits of SPEC §3."""

    def __init__(self, redis_url: str, write_rate: float, auth_failures: int) -> None:
        self.counters = Counters(redis_url)
        self.write_rate = write_rate
        self.auth_failures = auth_failures

    def check_address(self, address: str) -> None:
        """Refuse an address that failed to authenticate too often this minute."""
        count, left = self.counters.get(f"auth:{address}", AUTH_WINDOW)
        if count >= self.auth_failures:
            raise TooManyRequests(
                f"More than {self.auth_failures} failed authentications from this address "
                f"within a minute. Wait {left} s, and check the token you send.", left)

    def auth_failed(self, address: str) -> None:
        """Count a failed authentication."""
        self.counters.incr(f"auth:{address}", AUTH_WINDOW)

    def check_write(self, token_key: str) -> None:
        """Refuse writes beyond the per-token rate (0 turns the limit off)."""
        if self.write_rate <= 0:
            return
        window = max(1, math.ceil(1 / self.write_rate))
        allowed = max(1, int(self.write_rate * window))
        count, left = self.counters.incr(f"w:{token_key}", window)
        if count > allowed:
            raise TooManyRequests(
                f"This token is limited to {self.write_rate:g} writes per second "
                f"(TRACKER_WRITE_RATE). Retry after {left} s.", left)


def init_app(app: Flask, redis_url: str, write_rate: float, auth_failures: int) -> None:
    """Install the limits (the auth hook counts failures and checks the write rate)."""
    limits = Limits(redis_url, write_rate, auth_failures)
    app.extensions["tracker.limits"] = limits

    @app.before_request
    def _address() -> None:
        if request.path.startswith("/v1/") and request.routing_exception is None:
            limits.check_address(request.remote_addr or "unknown")
