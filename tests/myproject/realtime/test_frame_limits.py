"""
Frame limits in a real daphne process: the application's limit (64 KiB) sits well below
daphne's own (1 MiB), so an oversized frame gets an `error` frame and the socket stays open.
Protocol violations daphne itself catches (over 1 MiB, invalid UTF-8) close the socket with a
close code, not a dropped connection (myproject/realtime/daphne.py), and the process serves on.
"""

import asyncio
import json

import pytest
import websockets
from asgiref.sync import async_to_sync

from tests.factories import UserFactory, token_for
from tests.live import daphne, server_env

pytestmark = pytest.mark.django_db(transaction=True)


async def _frames(url: str) -> tuple[dict, dict, int]:
    async with websockets.connect(url, origin="http://localhost", max_size=None) as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"
        await socket.send(json.dumps({"message": "x" * 100_000}))  # over 64 KiB, under 1 MiB
        too_large = json.loads(await asyncio.wait_for(socket.recv(), 5))
        await socket.send(json.dumps({"message": "still open"}))
        echo = json.loads(await asyncio.wait_for(socket.recv(), 5))
        await socket.send("y" * (2 * 1024 * 1024))  # over daphne's 1 MiB
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
        return too_large, echo, closed.value.rcvd.code


async def _invalid_utf8(url: str) -> int:
    async with websockets.connect(url, origin="http://localhost") as socket:
        assert json.loads(await asyncio.wait_for(socket.recv(), 5))["type"] == "hello"
        await socket.send(b'{"message": "\xff\xfe"}', text=True)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
        return closed.value.rcvd.code


def test_frame_limits_and_protocol_violations():
    key = token_for(UserFactory())
    with daphne(server_env()) as base:
        url = base.replace("http", "ws") + f"/identity/ws/check/room/?token={key}"
        too_large, echo, code = async_to_sync(_frames)(url)
        utf8_code = async_to_sync(_invalid_utf8)(url)
        again, _, _ = async_to_sync(_frames)(url)  # the process serves the next socket
    assert too_large["type"] == "error"
    assert too_large["code"] == "too_large"
    assert echo["message"] == "still open"
    assert code == 1009  # message too big
    assert utf8_code == 1007  # invalid frame payload data
    assert again["code"] == "too_large"
