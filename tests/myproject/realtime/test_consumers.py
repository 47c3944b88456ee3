"""Closing sockets (EventConsumer): a consumer's teardown does not wait for the ORM's thread and
gives the user's place back on every way out; revocations close exactly their sockets."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async

from identity.consumers import CheckConsumer
from myproject.realtime import publish
from tests.factories import token_for
from tests.ws import open_socket, quiet, send

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "/catalog/ws/"
CHECK = "/identity/ws/check/closing/"


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


async def test_a_consumer_that_fails_gives_its_place_back(user, settings, monkeypatch):
    """Every way out returns the socket's place in its user's cap: here a handler that
    raises (the consumer dies after counting)."""
    settings.WS_MAX_SOCKETS_PER_USER = 1
    key = await sync_to_async(token_for)(user)

    async def broken(self, frame):
        raise RuntimeError("a bug in a handler")

    socket = await open_socket(CHECK, key)
    monkeypatch.setattr(CheckConsumer, "receive_frame", broken)
    await send(socket, {"type": "anything"})
    with pytest.raises(RuntimeError):
        await socket.wait(timeout=3)
    monkeypatch.undo()
    again = await open_socket(CHECK, key)  # refused if the first still held the place
    await again.disconnect()


async def test_a_revocation_closes_exactly_the_sockets_of_its_group(user, staff):
    """Revocations are frames of the control topic; each process closes the sockets it holds
    in the revoked groups."""
    from identity.credentials import of_token
    from identity.models import Token

    first = await sync_to_async(token_for)(user)
    ending = await open_socket(CHECK, first)
    staying = await open_socket(CHECK, await sync_to_async(token_for)(user))
    other = await open_socket(CHECK, await sync_to_async(token_for)(staff))
    token = await Token.objects.by_key(first).afirst()
    await sync_to_async(publish.revoke_on_commit)([of_token(token).group])
    assert await ending.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
    assert await quiet(staying, 0.3)
    assert await quiet(other, 0.1)
    for socket in (staying, other):
        await socket.disconnect()


async def test_a_revocation_lost_in_a_redis_restart_still_closes_its_socket(private_redis, user):
    """The control topic's frames are read back after a reconnection; when Redis lost them
    (it restarted empty), every socket's credential is checked at once instead."""
    from identity.models import Token

    key = await sync_to_async(token_for)(user)
    socket = await open_socket(CHECK, key)
    private_redis.stop()  # the revocation's frame waits in this process's publisher...
    await Token.objects.filter(digest=(await Token.objects.by_key(key).afirst()).digest).adelete()
    private_redis.start()  # ...and lands in a new epoch, which the hub cannot tie to the old one
    assert await socket.receive_output(timeout=10) == {"type": "websocket.close", "code": 4401}


@pytest.mark.parametrize("path", [STREAM, CHECK])
async def test_a_socket_cancelled_right_after_its_greeting_closes_with_4503(user, path):
    """daphne cancels every application when it shuts down. A socket whose greeting has just
    gone out is still in its connect handler: the cancellation must not be lost there (Python
    3.11's asyncio.wait_for swallows one that arrives as what it waits for completes), or the
    socket gets no 4503 and its consumer lives on."""
    for _ in range(5):
        socket = await open_socket(path, await sync_to_async(token_for)(user))
        socket.future.cancel()  # what daphne does on SIGTERM
        assert await socket.receive_output(timeout=3) == {"type": "websocket.close", "code": 4503}
        await asyncio.wait_for(asyncio.shield(socket.future), 3)  # and the consumer has ended
