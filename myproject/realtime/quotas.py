"""
Per-user WebSocket quotas that hold across every daphne process: open sockets
(`DJANGO_WS_MAX_SOCKETS_PER_USER`), `message` frames (`DJANGO_WS_MESSAGE_RATE`) and `signal`
frames (`DJANGO_WS_SIGNAL_RATE`), each decided by one Lua script in Redis (lua/), so that two
handshakes racing on two processes cannot both take the last place. Without Redis (the
embedded default: one process) the same rules run in the process. Per-socket rates (checks,
subscriptions) are plain `RateLimit`s.

    if not await sockets.acquire(user.pk, socket_id):   # at the handshake
        refuse()
    ...
    await sockets.release(user.pk, socket_id)           # on every way out
    if not await user_rate_allowed("signals", user.pk, settings.WS_SIGNAL_RATE): ...

A place is held as a member of a sorted set scored with its expiry: each process renews its
sockets' places every HEARTBEAT seconds, so the places of a process that crashed or was killed
expire within PLACE_TTL (a minute) instead of being held for ever. While Redis is unreachable
the limits fail open, as the REST throttles do.
"""

import asyncio
import contextlib
import logging
import time
import weakref
from collections import defaultdict
from pathlib import Path

from django.conf import settings
from redis.exceptions import RedisError

from myproject import redis_clients
from myproject.redis_clients import Script

logger = logging.getLogger(__name__)

PLACE_TTL = 60  # seconds a place outlives its last renewal
HEARTBEAT = 20  # seconds between renewals

LUA = Path(__file__).with_name("lua")
ACQUIRE = Script(LUA / "place_acquire.lua")
RENEW = Script(LUA / "place_renew.lua")
TAKE = Script(LUA / "token_take.lua")


class RateLimit:
    """A token bucket in this process: `rate` like "50/s" or "600/min"; None never limits, and
    a count of 0 allows nothing (as DRF's throttles read "0/min")."""

    PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def __init__(self, rate: str | None) -> None:
        self.unlimited = not rate
        self.capacity = self.per_second = 0.0
        if rate:
            count, period = rate.split("/")
            self.capacity = float(count)
            self.per_second = self.capacity / self.PERIODS[period.strip()[0]]
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        if self.unlimited:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class SocketPlaces:
    """The places of this process's sockets in their users' caps (see the module docstring)."""

    def __init__(self) -> None:
        self.held: dict[str, set[str]] = defaultdict(set)  # user -> members, this process
        self._renewal: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = (
            weakref.WeakKeyDictionary()
        )

    @staticmethod
    def _key(user: str) -> str:
        return f"myproject:ws-sockets:{user}"

    async def acquire(self, user_id: object, member: str) -> bool:
        """Take one of the user's places for `member` (a socket id); False if none is left."""
        user, cap = str(user_id), settings.WS_MAX_SOCKETS_PER_USER
        if redis_clients.enabled():
            try:
                taken = await ACQUIRE.run(
                    redis_clients.async_client(), [self._key(user)], [member, cap, PLACE_TTL * 1000]
                )
            except (RedisError, OSError) as exc:
                logger.warning("socket cap unchecked, Redis unreachable: %s", exc)
                taken = 1  # fail open
            if not taken:
                return False
        elif len(self.held[user]) >= cap:
            return False
        self.held[user].add(member)
        self._start_renewal()
        return True

    async def release(self, user_id: object, member: str) -> None:
        """Give the place back (safe to call twice, or for a place never taken)."""
        user = str(user_id)
        members = self.held.get(user)
        if members is None or member not in members:
            return
        members.discard(member)
        if not members:
            del self.held[user]
        if redis_clients.enabled():
            try:
                await redis_clients.async_client().zrem(self._key(user), member)
            except (RedisError, OSError) as exc:  # the place expires within PLACE_TTL
                logger.warning("socket place not given back, Redis unreachable: %s", exc)

    async def renew(self) -> None:
        """Push the expiry of every place this process holds PLACE_TTL ahead (one round trip);
        places a Redis restart or failover lost are taken again."""
        if not redis_clients.enabled() or not self.held:
            return
        keys, members = [], []
        for user, held in self.held.items():
            for member in held:
                keys.append(self._key(user))
                members.append(member)
        await RENEW.run(redis_clients.async_client(), keys, [PLACE_TTL * 1000, *members])

    def _start_renewal(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._renewal.get(loop)
        if task is None or task.done():
            self._renewal[loop] = loop.create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while self.held:
            await asyncio.sleep(HEARTBEAT)
            with contextlib.suppress(RedisError, OSError):
                await self.renew()


sockets = SocketPlaces()

_buckets: dict[tuple[str, str], RateLimit] = {}


async def user_rate_allowed(kind: str, user_id: object, rate: str | None) -> bool:
    """Whether the user may send one more frame of `kind` ("messages", "signals") now, over
    all of its sockets, at `rate` (None: any number)."""
    if not rate:
        return True
    user = str(user_id)
    if not redis_clients.enabled():
        bucket = _buckets.setdefault((kind, user), RateLimit(rate))
        return bucket.allow()
    limit = RateLimit(rate)
    if not limit.capacity:
        return False
    try:
        taken = await TAKE.run(
            redis_clients.async_client(), [f"myproject:ws-{kind}:{user}"],
            [limit.capacity, limit.per_second],
        )  # fmt: skip
    except (RedisError, OSError) as exc:
        logger.warning("%s rate unchecked, Redis unreachable: %s", kind, exc)
        return True
    return bool(taken)
