"""The channel layers' Redis connection pools."""

from typing import Any

from channels_redis.core import RedisChannelLayer
from redis.asyncio import BlockingConnectionPool

POOL_SIZE = 100  # redis-py's default cap
POOL_TIMEOUT = 10  # seconds an operation may wait for a free connection, then ConnectionError


class RedisCoreChannelLayer(RedisChannelLayer):
    """channels_redis's core layer, waiting for a free pooled connection rather than failing.

    Every concurrent layer operation takes its own connection from redis-py's pool, which
    raises `MaxConnectionsError` past its cap: a thousand sockets closing at once failed a few
    hundred `group_discard` calls (make bench, fan-out), which left dead channels in the group
    (each then costing every `group_send` until `group_expiry`). A blocking pool of the same
    size queues them instead. A host may set `max_connections`."""

    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        if "address" not in host:  # Sentinel: channels_redis's own pool
            return super().create_pool(index)
        address = host.pop("address")
        host.setdefault("max_connections", POOL_SIZE)
        return BlockingConnectionPool.from_url(address, timeout=POOL_TIMEOUT, **host)
