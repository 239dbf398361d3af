"""Liveness, readiness and Prometheus metrics (no authentication)."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api import metrics_queue
from api.context import tracker
from tracker.audit.log import tree_size

bp = Blueprint("health", __name__)
logger = logging.getLogger("tracker.api.health")

# Optional readiness checks that other parts add (queue, projections): name -> callable.
CHECKS: dict[str, Any] = {}


@bp.route("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@bp.route("/readyz")
def readyz() -> Response:
    """Readiness: the event store (and the queue, views) answer."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        with tracker().app.db.read() as cur:
            checks["store"] = {"ok": True, "log_size": tree_size(cur)}
    except Exception as e:  # noqa: BLE001 - readiness reports, never raises
        checks["store"] = {"ok": False, "error": type(e).__name__}
        ok = False
    for name, check in CHECKS.items():
        try:
            checks[name] = check(current_app)
        except Exception as e:  # noqa: BLE001 - a failing check is reported, not raised
            checks[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:200]}
        ok = ok and bool(checks[name].get("ok"))
    response = jsonify({"ready": ok, "checks": checks})
    response.status_code = 200 if ok else 503
    return response


class Metrics:
    """Per-process request metrics plus log gauges computed at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("tracker_http_requests_total", "HTTP requests",
                                ["method", "endpoint", "status"], registry=self.registry)
        self.latency = Histogram("tracker_http_request_seconds", "HTTP request latency",
                                 ["method", "endpoint"], registry=self.registry)
        self.log_size = Gauge("tracker_log_size", "Events in the log (tree size)",
                              registry=self.registry)
        self.gauges: dict[str, Gauge] = {}

    def gauge(self, name: str, doc: str) -> Gauge:
        """A gauge that other parts set at scrape time."""
        if name not in self.gauges:
            self.gauges[name] = Gauge(name, doc, registry=self.registry)
        return self.gauges[name]

    def labelled_gauge(self, name: str, doc: str, labels: list[str]) -> Gauge:
        """A gauge with labels (callers keep each label to a small fixed set of values)."""
        if name not in self.gauges:
            self.gauges[name] = Gauge(name, doc, labels, registry=self.registry)
        return self.gauges[name]


# Other parts add scrape-time updates here: callable(app, metrics).
SCRAPERS: list[Any] = []


@bp.route("/metrics")
def metrics() -> Response:
    """Prometheus metrics of this process."""
    m: Metrics = current_app.extensions["tracker.metrics"]
    try:
        with tracker().app.db.read() as cur:
            m.log_size.set(tree_size(cur))
    except Exception as e:  # noqa: BLE001 - metrics answer; /readyz says what is wrong
        logger.warning("metrics: the store did not answer (%s)", type(e).__name__)
        m.log_size.set(math.nan)
    for scrape in SCRAPERS:
        try:
            scrape(current_app, m)
        except Exception:  # one part's trouble must not hide the others
            logger.exception("metrics: %s failed", getattr(scrape, "__name__", scrape))
    return Response(generate_latest(m.registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Time every request."""
    m = Metrics()
    app.extensions["tracker.metrics"] = m
    CHECKS["queue"] = metrics_queue.queue_check
    if metrics_queue.queue_metrics not in SCRAPERS:
        SCRAPERS.append(metrics_queue.queue_metrics)

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()

    # The labelled children, looked up once each (`labels()` takes a lock and validates the
    # labels on every call). They hold what the metrics hold (one entry per child), and no
    # child is ever removed from these metrics, so a kept child is the one `labels()` returns.
    counters: dict[tuple[str, str, int], Any] = {}
    timers: dict[tuple[str, str], Any] = {}

    @app.after_request
    def _count(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        method, status = request.method, response.status_code
        counter = counters.get((method, endpoint, status))
        if counter is None:
            counter = counters.setdefault((method, endpoint, status),
                                          m.requests.labels(method, endpoint, str(status)))
        counter.inc()
        if "started" in g:
            timer = timers.get((method, endpoint))
            if timer is None:
                timer = timers.setdefault((method, endpoint), m.latency.labels(method, endpoint))
            timer.observe(time.perf_counter() - g.started)
        return response
