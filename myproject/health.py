"""
Liveness and readiness probes, served by uWSGI and daphne alike.

`/healthz` says the process answers; `/readyz` says it can do its work: the database and the
channel layer (Redis: the realtime broker, the shared cache) are reachable. Load balancers take a
503 from `/readyz` out of rotation.

Which check failed, and why (exception text, with host names and ports), is told to loopback
clients alone: operators on the host. Anyone else gets `{"status"}` and the status code. The
client is judged as the throttles judge it (DRF's `get_ident`, `NUM_PROXIES`): behind nginx,
the address nginx appended to X-Forwarded-For, not whatever the client wrote there.
"""

import logging

import redis
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from rest_framework.throttling import BaseThrottle

from myproject import redis_clients

logger = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "::1"}


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "channel_layer": _check_channel_layer()}
    ready = all(value == "ok" for value in checks.values())
    answer = {"status": "ok" if ready else "unavailable"}
    if BaseThrottle().get_ident(request) in LOOPBACK:
        answer["checks"] = checks
    return JsonResponse(answer, status=200 if ready else 503)


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure means "not ready"; report it, never raise
        logger.warning("readyz: database: %s", exc)
        return f"error: {exc}"
    return "ok"


def _check_channel_layer() -> str:
    if not redis_clients.enabled():
        return "ok"  # the embedded default: no Redis to reach
    try:
        # The shared client: behind Sentinel it asks for the current primary.
        redis_clients.sync_client().ping()
    except (redis.RedisError, OSError) as exc:
        logger.warning("readyz: channel layer: %s", exc)
        return f"error: {exc}"
    return "ok"
