"""
Liveness and readiness probes, served by uWSGI and daphne alike.

`/healthz` says the process answers; `/readyz` says it can do its work: the database answers a
query, and the channel layer carries a message there and back (with Redis, that is Redis: the
realtime broker and the shared cache live there too). Load balancers take a 503 from `/readyz`
out of rotation.

Which check failed, and why (exception text, with host names and ports), is told to loopback
clients alone: operators on the host. Anyone else gets `{"status"}` and the status code. The
client is judged as the throttles judge it (DRF's `get_ident`, `NUM_PROXIES`): behind nginx,
the address nginx appended to X-Forwarded-For, not whatever the client wrote there.
"""

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger(__name__)

LOOPBACK = {"127.0.0.1", "::1"}


# GET and HEAD alone (405 otherwise), and no CSRF check: a POST is not a session's write here.
@csrf_exempt
@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@csrf_exempt
@require_safe
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


PING_TIMEOUT = 2.0  # seconds for the channel layer's round trip


def _check_channel_layer() -> str:
    layer = get_channel_layer()
    if layer is None:
        return "error: no channel layer configured"
    try:
        async_to_sync(_ping)(layer)
    except Exception as exc:  # any failure means "not ready"; report it, never raise
        logger.warning("readyz: channel layer: %r", exc)
        return f"error: {exc!r}"
    return "ok"


async def _ping(layer: Any) -> None:
    """A message to a channel of its own and back. A second receive, cancelled, lets the layer
    drop the channel, as it does when a consumer ends (daphne runs this on its own loop, whose
    layer lives on)."""
    async with asyncio.timeout(PING_TIMEOUT):
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "readyz.ping"})
        await layer.receive(channel)
    letting_go = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    letting_go.cancel()
    await asyncio.gather(letting_go, return_exceptions=True)
