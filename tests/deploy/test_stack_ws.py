"""
WebSockets through the split stack: nginx :8088 -> daphne, and the cross-process path
uWSGI -> Redis -> daphne for change events. Real clients only (httpx, websockets).
"""

import asyncio
import json
import time

import httpx
import pytest
import websockets
from asgiref.sync import async_to_sync

from tests.stack import NGINX
from tests.ws import greeted

pytestmark = pytest.mark.stack

WS = NGINX.replace("http", "ws")
ORIGIN = "http://localhost"


async def _recv_type(socket: websockets.ClientConnection, type_: str) -> dict:
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if frame["type"] == type_:
            return frame


def test_a_write_through_uwsgi_reaches_a_socket_held_by_daphne(stack):
    """At once: the worker's own relay publishes it as uWSGI closes the request (its
    after_req_hook); left to the other relays, it would wait outbox.GRACE (2 s)."""

    async def scenario() -> tuple[dict, dict, float]:
        async with websockets.connect(f"{WS}/catalog/ws/", origin=ORIGIN) as socket:
            started = time.monotonic()
            category = await asyncio.to_thread(
                httpx.post, f"{NGINX}/catalog/categories/", headers=stack.auth, timeout=30,
                json={"name": "Cross process", "slug": "cross-process"},
            )  # fmt: skip
            assert category.status_code == 201, category.text
            event = await _recv_type(socket, "category.created")
            return category.json(), event, time.monotonic() - started

    created, event, took = async_to_sync(scenario)()
    assert event["data"] == created
    assert took < 1.5


def test_the_check_channel_through_nginx(stack):
    async def scenario() -> dict:
        url = f"{WS}/identity/ws/check/room/?token={stack.token}"
        async with websockets.connect(url, origin=ORIGIN) as socket:
            await socket.send(json.dumps({"type": "check", "id": 1, "resource": "category",
                                          "field": "slug", "value": "Not a slug"}))  # fmt: skip
            return await _recv_type(socket, "check.result")

    result = async_to_sync(scenario)()
    assert result["ok"] is False
    assert result["errors"]


@pytest.mark.parametrize(
    ("path", "origin"),
    [
        ("/identity/ws/check/room/?token=wrong", ORIGIN),
        ("/identity/ws/check/room/", ORIGIN),
        ("/catalog/ws/", "https://evil.example"),
    ],
)
def test_refused_handshakes_get_403_through_nginx(stack, path, origin):
    async def scenario() -> int:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"{WS}{path}", origin=origin):
                pass
        return refused.value.response.status_code

    assert async_to_sync(scenario)() == 403


def test_clients_see_a_close_code_when_daphne_restarts_and_can_reconnect(stack):
    async def hold_socket() -> int | None:
        async with websockets.connect(f"{WS}/catalog/ws/", origin=ORIGIN) as socket:
            await greeted(socket)
            await socket.send("{}")  # the consumer is up and answering
            assert json.loads(await asyncio.wait_for(socket.recv(), 10))["code"] == "read_only"
            # At once: daphne 4.2 dropped sockets accepted within the last second without a
            # close frame (myproject.realtime.daphne._shut_down_every_socket).
            await asyncio.to_thread(stack.script, "restart-daphne")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 30)
            return closed.value.rcvd.code if closed.value.rcvd else None

    async def reconnect() -> str:
        async with websockets.connect(f"{WS}/catalog/ws/", origin=ORIGIN) as socket:
            await greeted(socket)
            await socket.send("{}")
            return json.loads(await asyncio.wait_for(socket.recv(), 10))["code"]

    code = async_to_sync(hold_socket)()
    assert code == 4503, "sockets are closed with 4503 (restarting) when daphne stops"
    assert async_to_sync(reconnect)() == "read_only"
