"""
Sockets for the realtime modules' own tests, without a server: a consumer that daphne does not
serve (`FakeConsumer`: its `send` is all a sink uses) and one that daphne serves
(`ServedConsumer`: autobahn's framing, and Twisted's own buffering over a client that reads only
what the test lets it, `Transport.drain`); a frame with a public variant (`user_frame`); and a
resource whose rows others see reduced (`PEOPLE`), with its frames (`people_frame`) and a live
query of it (`named`).
"""

import collections
import json
import uuid
from types import SimpleNamespace

from autobahn.twisted.websocket import WebSocketServerFactory
from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet.abstract import FileDescriptor

from myproject.realtime import daphne, publish
from myproject.realtime.frames import Frame
from myproject.realtime.queries import LiveQuery, Resource, Term

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


def user_frame(subject: SimpleNamespace) -> Frame:
    """A change of `subject`'s record: in full for staff and itself, its uuid for others."""
    data = {"uuid": str(subject.pk), "name": "alice", "email": "alice@example.com"}
    payload = publish.event(
        "user.updated", data, public={"uuid": str(subject.pk)}, subject=subject.pk
    )
    return Frame("users", "E1", 4, payload)


def _public(row: dict) -> dict:
    return {name: row[name] for name in ("uuid", "name") if name in row}


PEOPLE = Resource("person", viewset=object, topic="people", public=_public)


def person(name: str, **fields) -> dict:
    return {"uuid": str(uuid.uuid4()), "name": name, "email": f"{name}@example.com", **fields}


def people_frame(rows: list[tuple], seq: int = 1, resource: str = "person") -> Frame:
    """A write of `rows` ((before, after) pairs) to the people topic."""
    payload = publish.event(f"{resource}.bulk_written", {}, changes=(resource, rows))
    return Frame(PEOPLE.topic, "E1", seq, payload)


def named(text: str) -> LiveQuery:
    """A live query of the people whose name holds `text`."""
    return LiveQuery(PEOPLE, [], [Term(("name",), text)], key=("person", text))
