"""
A socket's live queries (myproject/realtime/subscriptions.py): how many, how often, and the
places a socket's address holds, given back when it closes.
"""

import pytest
from asgiref.sync import sync_to_async

from myproject.realtime import queries
from tests.factories import CategoryFactory
from tests.ws import open_socket, receive, send, subscribe

transactional = pytest.mark.django_db(transaction=True)


@transactional
async def test_subscriptions_are_limited_and_checked(settings):
    settings.WS_MAX_SUBSCRIPTIONS = 2
    socket = await open_socket("/catalog/ws/")
    assert (await subscribe(socket, "one", "item", ""))["type"] == "subscribed"
    duplicate = await subscribe(socket, "one", "category", "")
    assert (duplicate["type"], duplicate["code"], duplicate["id"]) == (
        "error",
        "duplicate_id",
        "one",
    )
    assert (await subscribe(socket, "two", "category", "search=x"))["type"] == "subscribed"
    over = await subscribe(socket, "three", "item", "")
    assert over["code"] == "too_many_subscriptions"
    await send(socket, {"type": "unsubscribe", "id": "two"})
    assert await receive(socket) == {"type": "unsubscribed", "id": "two"}
    invalid = await subscribe(socket, "bad", "item", "price_min=abc")
    assert invalid["code"] == "invalid_filter"
    assert invalid["detail"] == {"price_min": ["Enter a number."]}
    users = await subscribe(socket, "people", "user", "")
    assert (users["code"], users["id"]) == ("forbidden", "people")  # anonymous
    await socket.disconnect()


@transactional
async def test_subscribe_and_unsubscribe_frames_are_rated_per_socket(settings):
    """Each costs a compiled query (and maybe a replay): a socket may not send them at will."""
    settings.WS_SUBSCRIBE_RATE = "3/s"
    socket = await open_socket("/catalog/ws/")
    other = await open_socket("/catalog/ws/")
    for n in range(5):
        await send(socket, {"type": "subscribe", "id": f"s{n}", "resource": "item", "filter": ""})
    answers = [await receive(socket) for _ in range(5)]
    assert [a["type"] for a in answers].count("subscribed") == 3
    limited = [a for a in answers if a["type"] == "error"]
    assert [(a["code"], a["id"]) for a in limited] == [
        ("rate_limited", "s3"),
        ("rate_limited", "s4"),
    ]
    assert (await subscribe(other, "x", "item", ""))["type"] == "subscribed"  # per socket
    for sock in (socket, other):
        await sock.disconnect()


@transactional
async def test_live_queries_without_an_equality_filter_are_capped_per_client_address(monkeypatch):
    """Each is tested against every written row: their number is bounded, per address and per
    process; queries narrowed by an equality filter are not (only their rows reach them)."""
    monkeypatch.setattr(queries, "MAX_UNINDEXED_PER_ADDRESS", 2)
    category = await sync_to_async(CategoryFactory)()
    socket = await open_socket("/catalog/ws/")
    assert (await subscribe(socket, "a", "item", "search=red"))["type"] == "subscribed"
    assert (await subscribe(socket, "b", "item", "price_max=10"))["type"] == "subscribed"
    over = await subscribe(socket, "c", "item", "search=blue")
    assert (over["code"], over["id"]) == ("too_many_subscriptions", "c")
    narrowed = await subscribe(socket, "d", "item", f"category={category.uuid}&search=blue")
    assert narrowed["type"] == "subscribed"
    await send(socket, {"type": "unsubscribe", "id": "a"})
    assert (await receive(socket))["type"] == "unsubscribed"
    assert (await subscribe(socket, "c", "item", "search=blue"))["type"] == "subscribed"
    await socket.disconnect()
    another = await open_socket("/catalog/ws/")  # the closed socket gave its places back
    assert (await subscribe(another, "e", "item", "search=green"))["type"] == "subscribed"
    await another.disconnect()
