"""The core layer's pool (myproject/layers.py) against the suite's real Redis."""

import asyncio
import uuid

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from redis.exceptions import MaxConnectionsError

from myproject.layers import RedisCoreChannelLayer


async def join_and_leave(layer: RedisChannelLayer, sockets: int) -> None:
    """What `sockets` consumers connecting and closing at the same moment ask of the layer."""
    group = "burst"
    channels = [await layer.new_channel() for _ in range(sockets)]
    await asyncio.gather(*(layer.group_add(group, channel) for channel in channels))
    await asyncio.gather(*(layer.group_discard(group, channel) for channel in channels))
    async with layer.connection(layer.consistent_hash(group)) as redis:
        assert await redis.zcard(layer._group_key(group)) == 0  # nobody left behind
    await layer.flush()


def small_pool(cls: type[RedisChannelLayer]) -> RedisChannelLayer:
    hosts = [{"address": settings.REDIS_URL, "max_connections": 4}]
    return cls(hosts=hosts, prefix=f"test-layers-{uuid.uuid4().hex}")


async def test_more_operations_than_pooled_connections_wait_for_one():
    await join_and_leave(small_pool(RedisCoreChannelLayer), 200)


async def test_channels_redis_own_pool_fails_them():
    """The control: the stock core layer raises past the pool's size."""
    layer = small_pool(RedisChannelLayer)
    with pytest.raises(MaxConnectionsError):
        await join_and_leave(layer, 200)
    await asyncio.sleep(1)  # the operations that did get a connection finish
    await layer.flush()


async def test_the_default_size_is_redis_pys():
    layer = RedisCoreChannelLayer(hosts=[{"address": settings.REDIS_URL}])
    pool = layer.create_pool(0)
    assert pool.max_connections == 100
    await pool.disconnect()
