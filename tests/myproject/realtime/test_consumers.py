"""Closing sockets (EventConsumer): a consumer's teardown does not wait for the ORM's thread and
gives the user's place back on every way out; revocations close exactly their sockets."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async

from identity.consumers import CheckConsumer
from myproject.realtime import publish
from tests.factories import token_for
from tests.ws import open_socket, quiet, receive, send

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


# --- signals: the channel layer, ephemeral --------------------------------------------------


async def test_a_signal_reaches_every_other_socket_of_the_group_unnumbered(user, staff):
    room = "/identity/ws/check/editing/"
    sender = await open_socket(room, await sync_to_async(token_for)(user))
    same_user = await open_socket(room, await sync_to_async(token_for)(user))
    other = await open_socket(room, await sync_to_async(token_for)(staff))
    elsewhere = await open_socket(
        "/identity/ws/check/another/", await sync_to_async(token_for)(staff)
    )
    await send(sender, {"type": "signal", "event": "editing", "payload": {"item": "X-1"}})
    expected = {"type": "signal", "event": "editing", "payload": {"item": "X-1"},
                "sender": str(user.pk)}  # fmt: skip
    for socket in (same_user, other):
        assert await receive(socket) == expected  # no topic, epoch, seq: not numbered, not kept
    assert await quiet(sender)  # not to the socket that sent it
    assert await quiet(elsewhere)
    for socket in (sender, same_user, other, elsewhere):
        await socket.disconnect()


async def test_a_group_send_from_outside_a_consumer_reaches_every_socket_of_the_group(user):
    """As a view or a management command sends it: the Channels way."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    socket = await open_socket("/identity/ws/check/ops/", await sync_to_async(token_for)(user))

    def from_a_view() -> None:
        async_to_sync(get_channel_layer().group_send)(
            "ops", {"type": "signal", "event": "notice", "payload": {"text": "hi"}}
        )

    await sync_to_async(from_a_view, thread_sensitive=False)()
    frame = await receive(socket)
    assert frame == {"type": "signal", "event": "notice", "payload": {"text": "hi"}, "sender": None}
    await socket.disconnect()


async def test_signals_are_checked_refused_on_event_topics_and_rated_per_user(user, settings):
    settings.WS_SIGNAL_RATE = "3/s"
    token = await sync_to_async(token_for)(user)
    events = await open_socket("/identity/ws/check/users/", token)
    await send(events, {"type": "signal", "event": "typing"})
    assert (await receive(events))["code"] == "read_only"
    room = await open_socket("/identity/ws/check/chatty/", token)
    await send(room, {"type": "signal", "event": ""})
    assert (await receive(room))["code"] == "invalid_signal"
    await send(room, {"type": "signal", "event": "x" * 65})
    assert (await receive(room))["code"] == "invalid_signal"
    other = await open_socket("/identity/ws/check/chatty2/", token)  # the rate is per user
    for n in range(4):
        await send(room if n % 2 else other, {"type": "signal", "event": "typing"})
    # A signal comes back to no socket of its own group here (no other member): only the
    # refused one, whichever socket's came last, is answered.
    answers = [frame for socket in (room, other) for frame in await drained(socket)]
    assert [a["code"] for a in answers] == ["rate_limited"]
    for socket in (events, room, other):
        await socket.disconnect()


async def drained(socket) -> list[dict]:
    """The frames that come until the socket is quiet for half a second."""
    frames = []
    while not await socket.receive_nothing(timeout=0.5):
        frames.append(await receive(socket))
    return frames
