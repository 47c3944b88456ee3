"""Closing sockets (EventConsumer): a consumer's teardown does not wait for the ORM's thread, leaves
its groups a few sockets at a time, and gives the user's place back even when leaving fails."""

import asyncio
import threading
import weakref
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from redis.exceptions import ConnectionError as RedisConnectionError

from myproject.realtime import consumers
from tests.factories import token_for
from tests.ws import open_socket

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "/catalog/ws/"
CHECK = "/identity/ws/check/leaving/"


async def test_closing_sockets_do_not_wait_for_the_orm_thread():
    """Channels hops to daphne's one sync thread (close_old_connections) twice per disconnect.
    Thousands of sockets closing at once queued that many hops, each holding its consumer and
    ~3 KiB until the thread got to it: daphne's memory rose ~20 MB above what holding 5,000
    sockets took, and stayed there (make bench: sockets)."""
    sockets = [await open_socket(STREAM) for _ in range(3)]
    release = threading.Event()
    busy = asyncio.ensure_future(sync_to_async(release.wait)())  # the thread is taken
    try:
        for socket in sockets:
            await socket.send_input({"type": "websocket.disconnect", "code": 1000})
        # Not the communicator's `disconnect`: past its timeout it cancels the consumer quietly.
        done, _ = await asyncio.wait([socket.future for socket in sockets], timeout=2)
        assert len(done) == len(sockets), "a consumer waited for the ORM's thread"
        for socket in sockets:
            socket.future.result()
    finally:
        release.set()
        await busy
        for socket in sockets:
            await socket.wait(timeout=2)


async def test_sockets_leave_their_groups_a_few_at_a_time(monkeypatch, user):
    monkeypatch.setattr(consumers, "LEAVE_CONCURRENCY", 2)
    monkeypatch.setattr(consumers, "_leave_gates", weakref.WeakKeyDictionary())
    key = await sync_to_async(token_for)(user)
    sockets = [await open_socket(CHECK, key) for _ in range(6)]
    layer = get_channel_layer()
    discard = layer.group_discard
    leaving, most = 0, 0

    async def slow_discard(group: str, channel: str) -> None:
        nonlocal leaving, most
        leaving += 1
        most = max(most, leaving)
        await asyncio.sleep(0.05)
        await discard(group, channel)
        leaving -= 1

    with mock.patch.object(layer, "group_discard", slow_discard):
        await asyncio.gather(*(socket.disconnect(timeout=3) for socket in sockets))
    assert most == 2


async def test_a_socket_gives_its_place_back_when_leaving_its_groups_fails(user, settings):
    settings.WS_MAX_SOCKETS_PER_USER = 1
    key = await sync_to_async(token_for)(user)
    path = "/identity/ws/check/leaving-fails/"  # a group no other test uses
    socket = await open_socket(path, key)
    unreachable = mock.AsyncMock(side_effect=ConnectionError("Redis is unreachable"))
    layer = get_channel_layer()
    with mock.patch.object(layer, "group_discard", unreachable), pytest.raises(ConnectionError):
        await socket.disconnect()
    again = await open_socket(path, key)  # refused if the count still held the first
    await again.disconnect()


async def test_a_connection_broken_while_nobody_listened_is_replaced_at_the_next_handshake(user):
    """After a Redis restart, a daphne with no socket open meanwhile still holds the dead
    pub/sub connection; the first `group_add` on it fails (seen as an HTTP 500 handshake
    through nginx). The consumer tries once more, on a fresh connection."""
    layer = get_channel_layer()
    join = layer.group_add
    failures = [RedisConnectionError("Error UNKNOWN while writing to socket. Connection lost.")]

    async def broken_once(group: str, channel: str) -> None:
        if failures:
            raise failures.pop()
        await join(group, channel)

    key = await sync_to_async(token_for)(user)
    with mock.patch.object(layer, "group_add", broken_once):
        socket = await open_socket(CHECK, key)
    assert failures == []
    await socket.disconnect()
