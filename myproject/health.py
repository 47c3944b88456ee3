"""
Liveness and readiness probes, served by uWSGI and daphne alike.

`/healthz` says the process answers; `/readyz` says it can do its work: the database and the
channel layer (Redis) are reachable. Load balancers take a 503 from `/readyz` out of rotation.
"""

import logging

import redis
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from myproject import redis_clients

logger = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "channel_layer": _check_channel_layer()}
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


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
        return "ok"  # in-memory layer: lives in this process
    try:
        # The shared client: behind Sentinel it asks for the current primary.
        redis_clients.sync_client().ping()
    except redis.RedisError as exc:
        logger.warning("readyz: channel layer: %s", exc)
        return f"error: {exc}"
    return "ok"
