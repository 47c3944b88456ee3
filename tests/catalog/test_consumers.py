"""The catalog stream: open to anyone (origin checked), read-only, hears every catalog write."""

import pytest
from asgiref.sync import sync_to_async

from tests.factories import ItemFactory
from tests.ws import body, connect, open_socket, quiet, receive, receive_type

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = "/catalog/ws/"


async def test_anyone_may_listen():
    socket = await open_socket(STREAM)
    await socket.disconnect()


async def test_a_foreign_origin_is_refused():
    _, accepted, _ = await connect(STREAM, headers=[(b"origin", b"https://evil.example")])
    assert not accepted


async def test_the_stream_is_read_only_and_stays_open():
    socket = await open_socket(STREAM)
    for text in ['{"type": "message", "message": 1}', "nonsense", "[]"]:
        await socket.send_to(text_data=text)
        frame = await receive(socket)
        assert frame["type"] == "error"
    await socket.send_to(text_data='{"type": "check"}')
    assert (await receive(socket))["code"] == "read_only"
    await socket.disconnect()


async def test_catalog_writes_arrive_on_the_stream():
    socket = await open_socket(STREAM)
    item = await sync_to_async(ItemFactory)()  # not through the service: no event
    assert await quiet(socket, 0.3)
    from catalog.services import items

    await sync_to_async(items.update)(item, {"stock": 3})
    event = await receive_type(socket, "item.updated")
    assert event["data"]["uuid"] == str(item.uuid)
    assert event["data"]["stock"] == 3
    await socket.disconnect()


async def test_a_broadcast_reaches_the_catalog_stream_too():
    import io

    from django.core.management import call_command

    socket = await open_socket(STREAM)
    await sync_to_async(call_command)(
        "broadcast", "catalog", '{"text": "sale"}', stdout=io.StringIO()
    )
    assert body(await receive(socket)) == {"type": "message", "message": {"text": "sale"},
                                           "sender": None}  # fmt: skip
    await socket.disconnect()
