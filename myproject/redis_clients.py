"""
The Redis clients of everything that talks to Redis directly (WebSocket limits, readiness, and
the realtime history), built in one place from the settings, so that each follows the primary
the same way: one address (`REDIS_URL`), or Sentinel (`REDIS_SENTINELS`), whose clients find
the current primary again after a failover.

    sync_client().ping()                  # uWSGI, management commands, threads
    await async_client().ping()           # daphne: one client per event loop

The cache (django-redis) and the channel layer (channels_redis) build their own connection pools
from the same settings (myproject/settings.py). Lua scripts live in `.lua` files beside the code
that runs them (`Script`).
"""

import asyncio
import hashlib
import weakref
from pathlib import Path
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
from redis.exceptions import NoScriptError

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


class Script:
    """A Lua script from `.lua` files (several, joined: shared functions first), run by its SHA:
    EVALSHA straight, loading the script again after a Redis restart (NOSCRIPT). redis-py's
    registered scripts send SCRIPT EXISTS before every pipelined run, a round trip each time."""

    def __init__(self, *paths: Path) -> None:
        self.source = "\n".join(path.read_text() for path in paths)
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()  # noqa: S324 (Redis's naming)

    def __call__(self, client: redis.Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    async def run(self, client: redis.asyncio.Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)
