"""
The Redis clients of everything that talks to Redis directly (WebSocket limits, readiness, and
the realtime history), built in one place from the settings, so that each follows the primary
the same way: one address (`REDIS_URL`), or Sentinel (`REDIS_SENTINELS`), whose clients find
the current primary again after a failover.

    sync_client().ping()                  # uWSGI, management commands, threads
    await async_client().ping()           # daphne: one client per event loop

The cache (django-redis) builds its own connection pool from the same settings
(myproject/settings.py).
"""

import asyncio
import weakref
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

_sync: redis.Redis | None = None
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
    weakref.WeakKeyDictionary()
)


@receiver(setting_changed)
def _forget_clients(setting: str, **kwargs: Any) -> None:
    """Tests point REDIS_URL elsewhere (a private server): build new clients then."""
    global _sync
    if setting.startswith("REDIS_"):
        _sync = None
        _async.clear()


def enabled() -> bool:
    """Whether Redis is configured at all (the embedded default runs without it)."""
    return bool(settings.REDIS_URL or settings.REDIS_SENTINELS)


def _options() -> dict[str, Any]:
    return {
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "db": settings.REDIS_DB,
        "password": settings.REDIS_PASSWORD,
        "health_check_interval": 10,
    }


def sync_client() -> redis.Redis:
    """This process's client (thread-safe: redis-py pools its connections)."""
    global _sync
    if _sync is None:
        if settings.REDIS_SENTINELS:
            sentinel = redis.sentinel.Sentinel(
                settings.REDIS_SENTINELS, socket_timeout=settings.REDIS_SOCKET_TIMEOUT
            )
            _sync = sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **_options())
        else:
            _sync = redis.Redis.from_url(settings.REDIS_URL, **_options())
    return _sync


def async_client() -> redis.asyncio.Redis:
    """The running event loop's client (asyncio connections belong to one loop)."""
    loop = asyncio.get_running_loop()
    client = _async.get(loop)
    if client is None:
        client = _async[loop] = _new_async_client()
    return client


def subscriber_client() -> redis.asyncio.Redis:
    """A client for one pub/sub subscription that never reconnects by itself: redis-py's
    retries would subscribe again silently, and the frames published meanwhile would be lost
    without a trace. Its owner reconnects, and reads back what it missed."""
    return _new_async_client(retry=Retry(NoBackoff(), 0))


def _new_async_client(**extra: Any) -> redis.asyncio.Redis:
    options = {**_options(), **extra}
    if settings.REDIS_SENTINELS:
        sentinel = redis.asyncio.sentinel.Sentinel(
            settings.REDIS_SENTINELS, socket_timeout=settings.REDIS_SOCKET_TIMEOUT
        )
        return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **options)
    return redis.asyncio.Redis.from_url(settings.REDIS_URL, **options)
