"""
Frame limits in a real daphne process: the application's limit (64 KiB) sits well below
daphne's own (1 MiB), so an oversized frame gets an `error` frame and the socket stays open.
Past 1 MiB daphne (autobahn, which fails by dropping) cuts the connection; the process lives on.
"""

import asyncio
import json

import pytest
import websockets
from asgiref.sync import async_to_sync

from tests.factories import UserFactory, token_for
from tests.live import daphne, server_env

pytestmark = pytest.mark.django_db(transaction=True)


async def _frames(url: str) -> tuple[dict, dict]:
    async with websockets.connect(url, origin="http://localhost", max_size=None) as socket:
        await socket.send(json.dumps({"message": "x" * 100_000}))  # over 64 KiB, under 1 MiB
        too_large = json.loads(await asyncio.wait_for(socket.recv(), 5))
        await socket.send(json.dumps({"message": "still open"}))
        echo = json.loads(await asyncio.wait_for(socket.recv(), 5))
        await socket.send("y" * (2 * 1024 * 1024))  # over daphne's 1 MiB: daphne cuts it
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(socket.recv(), 5)
        return too_large, echo


def test_oversized_frames_get_an_error_frame_and_huge_ones_are_cut():
    key = token_for(UserFactory())
    with daphne(server_env()) as base:
        url = base.replace("http", "ws") + f"/identity/ws/check/room/?token={key}"
        too_large, echo = async_to_sync(_frames)(url)
        again, _ = async_to_sync(_frames)(url)  # the process serves the next socket
    assert too_large["type"] == "error"
    assert too_large["code"] == "too_large"
    assert echo["message"] == "still open"
    assert again["code"] == "too_large"
