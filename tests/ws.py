"""WebSocket test helpers: in-process communicators on the real ASGI stack."""

import json
from typing import Any

from channels.testing import WebsocketCommunicator

from myproject.asgi import application

ORIGIN = (b"origin", b"http://localhost")


async def connect(
    path: str, token: str | None = None, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[WebsocketCommunicator, bool, Any]:
    """Open a socket; returns (communicator, accepted, close code or subprotocol)."""
    url = f"{path}?token={token}" if token else path
    communicator = WebsocketCommunicator(
        application, url, headers=[ORIGIN] if headers is None else headers
    )
    accepted, detail = await communicator.connect(timeout=3)
    return communicator, accepted, detail


async def open_socket(path: str, token: str | None = None) -> WebsocketCommunicator:
    communicator, accepted, detail = await connect(path, token)
    assert accepted, f"handshake refused on {path}: {detail}"
    return communicator


async def send(communicator: WebsocketCommunicator, frame: Any) -> None:
    await communicator.send_to(text_data=json.dumps(frame))


async def receive(communicator: WebsocketCommunicator, timeout: float = 3) -> dict[str, Any]:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def receive_type(
    communicator: WebsocketCommunicator, type_: str, timeout: float = 3
) -> dict[str, Any]:
    """The next frame of `type_`, skipping others (events of earlier writes, say)."""
    while True:
        frame = await receive(communicator, timeout)
        if frame["type"] == type_:
            return frame
