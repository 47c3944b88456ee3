"""
Sockets for the realtime modules' own tests, without a server: a consumer that daphne does not
serve (`FakeConsumer`: its `send` is all a sink uses) and one that daphne serves
(`ServedConsumer`: autobahn's framing, and Twisted's own buffering over a client that reads only
what the test lets it, `Transport.drain`).
"""

import collections
import json
import uuid
from types import SimpleNamespace

from autobahn.twisted.websocket import WebSocketServerFactory
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.abstract import FileDescriptor

from myproject.realtime import daphne

FACTORY = WebSocketServerFactory()


def reader(*, staff: bool = False) -> SimpleNamespace:
    """A signed-in user as a consumer's scope holds it."""
    return SimpleNamespace(pk=uuid.uuid4(), is_authenticated=True, is_staff=staff)


class FakeConsumer:
    """What a sink needs of a consumer that daphne does not serve: `send`."""

    def __init__(self, user=None) -> None:
        self.scope = {} if user is None else {"user": user}
        self.texts: list[dict] = []

    async def send(self, text_data: str) -> None:
        self.texts.append(json.loads(text_data))


class _Reactor:
    def addWriter(self, _) -> None:
        pass

    def removeWriter(self, _) -> None:
        pass


class Transport(FileDescriptor):
    """Twisted's write buffer (the real one: it pauses its producer past `bufferSize`) in front
    of a client that takes only what `drain` lets it."""

    connected = 1

    def __init__(self) -> None:
        super().__init__(reactor=_Reactor())
        self.received = bytearray()
        self._allowance = 0

    def writeSomeData(self, data) -> int:
        taken = min(len(data), self._allowance)
        self._allowance -= taken
        self.received += bytes(data[:taken])
        return taken

    def held(self) -> int:
        return len(self.dataBuffer) - self.offset + self._tempDataLen

    def drain(self, count: int | None = None) -> None:
        """The client reads `count` bytes (everything held: None), as the kernel lets Twisted
        write them."""
        self._allowance = 1 << 40 if count is None else count
        while self._allowance and self.held():
            self.doWrite()
        self._allowance = 0

    def texts(self) -> list[dict]:
        """The text frames the client has read (server frames: unmasked)."""
        out, data, at = [], bytes(self.received), 0
        while at < len(data):
            length, at = data[at + 1] & 0x7F, at + 2
            if length == 126:
                length, at = int.from_bytes(data[at : at + 2], "big"), at + 2
            elif length == 127:
                length, at = int.from_bytes(data[at : at + 8], "big"), at + 8
            out.append(json.loads(data[at : at + length]))
            at += length
        return out


class Protocol:
    """What a sink uses of daphne's autobahn protocol; `closed_with`: the code it was closed
    with."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.factory = FACTORY
        self.state = WebSocketProtocol.STATE_OPEN
        self.send_queue: collections.deque = collections.deque()
        self.closeHandshakeTimeout = 1.0
        self.closed_with: int | None = None

    def serverClose(self, code: int) -> None:
        self.closed_with = code
        self.state = WebSocketProtocol.STATE_CLOSING

    def sendData(self, data: bytes) -> None:
        self.transport.write(data)


class ServedConsumer:
    """A consumer of a socket that daphne serves (daphne.PROTOCOL in its scope)."""

    def __init__(self, user=None) -> None:
        self.transport = Transport()
        self.protocol = Protocol(self.transport)
        self.scope = {daphne.PROTOCOL: self.protocol}
        if user is not None:
            self.scope["user"] = user

    async def send(self, text_data: str) -> None:
        raise AssertionError("a served socket is written through its sink, not `send`")
