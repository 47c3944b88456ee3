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
    url = f"{path}{'&' if '?' in path else '?'}token={token}" if token else path
    communicator = WebsocketCommunicator(
        application, url, headers=[ORIGIN] if headers is None else headers
    )
    accepted, detail = await communicator.connect(timeout=3)
    return communicator, accepted, detail


async def open_socket(path: str, token: str | None = None) -> WebsocketCommunicator:
    """An accepted socket, past its first frame (`hello`, kept as `socket.hello`)."""
    communicator, accepted, detail = await connect(path, token)
    assert accepted, f"handshake refused on {path}: {detail}"
    hello = await receive(communicator)
    assert hello["type"] == "hello", hello
    communicator.hello = hello
    return communicator


async def send(communicator: WebsocketCommunicator, frame: Any) -> None:
    await communicator.send_to(text_data=json.dumps(frame))


# Presence frames come and go as sockets of a group do: tests of anything else skip them.
PRESENCE = ("presence.joined", "presence.left")


async def receive(
    communicator: WebsocketCommunicator, timeout: float = 3, *, presence: bool = False
) -> dict[str, Any]:
    """The next frame (`presence`: presence frames too, else they are skipped)."""
    while True:
        frame = json.loads(await communicator.receive_from(timeout=timeout))
        if presence or frame.get("type") not in PRESENCE:
            return frame


async def quiet(communicator: WebsocketCommunicator, timeout: float = 0.3) -> bool:
    """Whether nothing but presence frames comes within `timeout` (receive_nothing, which a
    user's socket joining the group would break)."""
    while not await communicator.receive_nothing(timeout=timeout):
        output = await communicator.receive_output()
        if output.get("type") != "websocket.send":
            return False
        if json.loads(output.get("text") or "{}").get("type") not in PRESENCE:
            return False
    return True


async def receive_type(
    communicator: WebsocketCommunicator, type_: str, timeout: float = 3
) -> dict[str, Any]:
    """The next frame of `type_`, skipping others (events of earlier writes, say)."""
    while True:
        frame = await receive(communicator, timeout)
        if frame["type"] == type_:
            return frame


POSITION_KEYS = ("topic", "epoch", "seq")


def body(frame: dict[str, Any]) -> dict[str, Any]:
    """A frame without its position (`topic`, `epoch`, `seq`), asserting it had one."""
    assert all(key in frame for key in POSITION_KEYS), frame
    return {key: value for key, value in frame.items() if key not in POSITION_KEYS}


async def greeted(socket: Any) -> dict[str, Any]:
    """A real client's socket (websockets, asyncio) past its `hello`, which is returned."""
    import asyncio

    hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert hello["type"] == "hello", hello
    return hello


def greeted_sync(socket: Any) -> dict[str, Any]:
    """The same for the websockets library's sync client."""
    hello = json.loads(socket.recv(timeout=10))
    assert hello["type"] == "hello", hello
    return hello


async def subscribe(socket, id_: str, resource: str, text: str, **extra) -> dict:
    """The answer to a subscribe frame (`subscribed` or an error), past the topic's frames."""
    await send(socket, {"type": "subscribe", "id": id_, "resource": resource, "filter": text,
                        **extra})  # fmt: skip
    while True:
        frame = await receive(socket)
        if frame.get("id") == id_ and "subscription" not in frame:
            return frame
