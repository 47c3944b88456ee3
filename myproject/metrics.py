"""
Prometheus metrics (prometheus_client), served at `GET /metrics` by uWSGI, for all its
processes together, and by each daphne process, for itself.

uWSGI runs several processes: there, `PROMETHEUS_MULTIPROC_DIR` is set (uwsgi.ini) and every
process writes its samples to files in that directory, which `/metrics` adds up (prometheus_client's
multiprocess mode). daphne is one process: its metrics live in memory. nginx serves `/metrics`
to 127.0.0.1 and ::1 only.

    metrics.EVENTS_PUBLISHED.labels(topic=metrics.topic_label(topic)).inc()

What an on-call person reads off them: request rates, errors and latency per route
(`http_*`), database outages answered with 503 (`db_unavailable_total`), sockets per route
and their frames, error codes and refused handshakes (`ws_*`), resumes recovered or not
(`ws_resumes_total`), frames published or failing to be (`events_*`), frames committed and not
yet published (`outbox_*`), and the realtime Redis subscription's reconnections
(`realtime_redis_reconnects_total`).
"""

import atexit
import os
import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from myproject.realtime import topics

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, in this process.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DB_UNAVAILABLE = Counter(
    "db_unavailable_total", "Requests answered 503 because the database was unreachable."
)
WS_CONNECTIONS = Gauge(
    "ws_connections", "Open WebSocket connections.", ["route"], multiprocess_mode="livesum"
)
WS_FRAMES_SENT = Counter("ws_frames_sent_total", "Frames sent to WebSocket clients.")
WS_FRAMES_RECEIVED = Counter("ws_frames_received_total", "Frames received from WebSocket clients.")
WS_ERRORS = Counter("ws_errors_total", "Error frames sent, by code.", ["code"])
WS_REFUSED = Counter("ws_handshakes_refused_total", "WebSocket handshakes refused.", ["reason"])
WS_SLOW_CLOSED = Counter(
    "ws_slow_closed_total",
    "Sockets closed with 4408: their client left more than DJANGO_WS_MAX_BUFFER unread.",
)
WS_RESUMES = Counter(
    "ws_resumes_total", "Sockets and subscriptions that asked to resume.", ["recovered"]
)
EVENTS_PUBLISHED = Counter("events_published_total", "Frames published, by topic.", ["topic"])
EVENTS_PUBLISH_FAILURES = Counter(
    "events_publish_failures_total", "Publish attempts that failed (each batch is retried)."
)
REDIS_RECONNECTS = Counter(
    "realtime_redis_reconnects_total", "Times the realtime Redis subscription was lost."
)
ANNOUNCED_GAPS = Counter(
    "realtime_gaps_announced_total",
    "Gaps the history could not fill, announced to sockets (hello recovered: false).",
)


def topic_label(topic: str) -> str:
    """The server's event topics by name; every chat room as one label (no unbounded set)."""
    return topic if topic in topics.EVENT_TOPICS else "chat"


def route_label(route: str) -> str:
    """A URL pattern as a label: `catalog/^items/(?P<uuid>[^/.]+)/$` -> `/catalog/items/<uuid>/`."""
    return "/" + NAMED_GROUP.sub(r"<\1>", route).replace("^", "").replace("$", "")


NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


class OutboxCollector(Collector):
    """The outbox's backlog, read from the database when scraped: one number for the whole
    deployment, whichever process answers."""

    def describe(self) -> list[GaugeMetricFamily]:
        """The names alone: registering must not query the database (at import time)."""
        return self._families()

    def collect(self) -> list[GaugeMetricFamily]:
        from myproject.realtime import outbox

        try:
            count, age = outbox.backlog()
        except Exception:  # the database is down: /readyz says so; no figure rather than a 500
            return []
        return self._families(count, age)

    def _families(self, count: float | None = None, age: float | None = None) -> list:
        return [
            GaugeMetricFamily(
                "outbox_frames", "Frames committed and not yet published (the outbox).", count
            ),
            GaugeMetricFamily(
                "outbox_oldest_frame_age_seconds",
                "Age of the oldest frame waiting in the outbox (0 when empty).", age,
            ),
        ]  # fmt: skip


OUTBOX = OutboxCollector()
if not MULTIPROCESS:
    REGISTRY.register(OUTBOX)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`, Prometheus text format."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(OUTBOX)
    else:
        registry = REGISTRY
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every request by its route (the URL pattern, not the path: a bounded
    set of labels)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = route_label(match.route) if match is not None else "unmatched"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_DURATION.labels(request.method, route).observe(time.perf_counter() - started)
        return response


if MULTIPROCESS:
    # A worker that ends (a reload, max-requests) takes its live gauges out of the sum. (One
    # killed outright leaves its last values until uWSGI restarts and empties the directory.)
    atexit.register(multiprocess.mark_process_dead, os.getpid())
