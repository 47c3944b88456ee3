"""
A socket's side of the channel layer (myproject/realtime/layer.py): the channel Channels gives
every consumer (not the catalog stream's, whose frames all come from its hub), the groups a
consumer declares, and signals, ephemeral, to the other sockets of a group.
"""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from catalog.consumers import CatalogConsumer
from myproject.realtime import topics
from myproject.realtime.consumers import EventConsumer
from tests.factories import token_for
from tests.ws import ORIGIN, open_socket, quiet, receive, send

pytestmark = pytest.mark.django_db(transaction=True)


class Lobby(EventConsumer):
    """A consumer of one's own, the Channels way: a declared group and a handler for it."""

    groups = ["app.lobby"]
    opened: list["Lobby"] = []

    async def authorize(self) -> str:
        type(self).opened.append(self)
        return topics.CATALOG

    async def app_notice(self, message: dict) -> None:
        await self.send_json({"type": "notice", "text": message["text"]})


class Direct(Lobby):
    """Joins a group of its own in `connect`, with `self.channel_name`, as Channels' docs do."""

    groups = []

    async def connect(self) -> None:
        await self.channel_layer.group_add("app.direct", self.channel_name)
        await super().connect()


async def lobby_socket(consumer: type[EventConsumer]) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(consumer.as_asgi(), "/lobby/", headers=[ORIGIN])
    assert (await socket.connect(timeout=3))[0]
    assert (await receive(socket))["type"] == "hello"
    return socket


@pytest.mark.parametrize(("consumer", "group"), [(Lobby, "app.lobby"), (Direct, "app.direct")])
async def test_a_consumer_of_ones_own_hears_its_groups_from_anywhere(consumer, group):
    socket = await lobby_socket(consumer)
    await get_channel_layer().group_send(group, {"type": "app.notice", "text": "hi"})
    assert await receive(socket) == {"type": "notice", "text": "hi"}
    assert consumer.opened[-1].channel_name is not None
    await socket.disconnect()


async def test_the_catalog_stream_takes_no_channel_unless_it_declares_groups():
    """The catalog stream hears its hub only: no channel and no task waiting on one (make
    bench: sockets). Declaring groups gives it its channel back, the Channels way."""

    class Catalog(CatalogConsumer):
        opened: list[CatalogConsumer] = []

        async def authorize(self) -> str:
            type(self).opened.append(self)
            return await super().authorize()

    class Grouped(Catalog):
        groups = ["app.catalog-watchers"]

        async def app_notice(self, message: dict) -> None:
            await self.send_json({"type": "notice", "text": message["text"]})

    plain, grouped = await lobby_socket(Catalog), await lobby_socket(Grouped)
    assert Catalog.opened[0].channel_name is None
    await get_channel_layer().group_send(
        "app.catalog-watchers", {"type": "app.notice", "text": "x"}
    )
    assert await receive(grouped) == {"type": "notice", "text": "x"}
    assert await quiet(plain)
    for socket in (plain, grouped):
        await socket.disconnect()


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
