"""
The one place that writes to a socket.

Everything a socket receives goes through its `Sink`: the hub's frames (fan-out and replays),
the consumer's own answers (`error`, `check.result`, ...), signals and presence. A socket that
daphne serves gets bytes framed once for every socket of the process (`frame_once`,
`Frame.prepared`) written straight to its transport, and the sink keeps count of what its client
has not taken yet: what the transport still holds (Twisted's buffer) and, while the transport is
full, its own queue of whole frames behind it. Past `DJANGO_WS_MAX_BUFFER` bytes the socket is
closed with 4408 (`slow`): its client reconnects with `since` and resumes from the history, and
daphne never holds more than that for a client that stopped reading. Clients that keep up are
not slowed by one that does not: nothing waits for a socket but its own queue.

    sink.write(frame.prepared("frame", factory).payloadHybi)   # fan-out: framed once
    await sink.send(json.dumps({...}))                         # one socket's own frame
    await sink.room()                                          # a replay waits for the drain

The sink stands in for the transport's producer (Twisted calls `pauseProducing` when the
transport holds more than its buffer size, `resumeProducing` once it has drained), so a replay
is written as the socket drains, never far ahead. Sockets that daphne does not serve (tests'
communicators, another ASGI server) go through the consumer's own `send`, unbounded.
"""

import asyncio
import collections
import contextlib
import logging
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from django.conf import settings

from myproject import metrics
from myproject.realtime import daphne

logger = logging.getLogger(__name__)

CLOSE_SLOW = 4408  # the client does not take what it is sent: reconnect with `since`
# How long a socket closed for being slow may take to read what was sent before its close frame
# (autobahn's default, one second, then drops the connection: a client that is reading, only
# slowly, would never see the close code). daphne holds at most its transport's buffer meanwhile.
SLOW_CLOSE_TIMEOUT = 30.0
OPEN = WebSocketProtocol.STATE_OPEN


def frame_once(text: str, factory: Any) -> bytes:
    """`text` as a WebSocket text frame on the wire (autobahn's framing)."""
    return factory.prepareMessage(text.encode()).payloadHybi


class Sink:
    """One socket's writer (see the module docstring). `staff` and `user_id` tell which text
    of a frame its reader may see (`variant`)."""

    __slots__ = (
        "__weakref__", "_room", "closed", "consumer", "paused", "protocol", "queue", "queued",
        "staff", "transport", "user_id",
    )  # fmt: skip

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.protocol = consumer.scope.get(daphne.PROTOCOL)
        self.transport = self.protocol.transport if self.protocol is not None else None
        user = consumer.scope.get("user")
        authenticated = user is not None and user.is_authenticated
        self.user_id = str(user.pk) if authenticated else None
        self.staff = bool(authenticated and user.is_staff)
        self.queue: collections.deque[bytes] = collections.deque()
        self.queued = 0  # bytes in `queue`
        self.paused = False  # the transport holds more than it wants: queue
        self.closed = False  # closed, or being closed: nothing more is written
        self._room: asyncio.Event | None = None
        if self.transport is not None:
            self._become_producer()

    def _become_producer(self) -> None:
        """Take the transport's producer seat, which daphne's HTTP channel keeps after the
        upgrade (it would pause reading from the client when writes back up)."""
        transport = self.transport
        with contextlib.suppress(AttributeError, RuntimeError):  # then: never paused
            if transport.producer is not None:
                transport.unregisterProducer()
            transport.registerProducer(self, True)

    def variant(self, frame: Any) -> str:
        """Which text of a frame this socket may read: `public` for anyone but staff and the
        frame's subject (a user's own record), when the frame has one."""
        if frame.has_public and not self.staff and frame.subject != self.user_id:
            return "public"
        return "frame"

    # --- writing -------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write an already framed message (sockets that daphne serves)."""
        if self.closed:
            return
        if self.paused or self.queue:
            self.queue.append(data)
            self.queued += len(data)
            if self.backlog() > settings.WS_MAX_BUFFER:
                self._overflow()
            return
        self._put(data)

    def _put(self, data: bytes) -> None:
        protocol = self.protocol
        if protocol.state != OPEN:
            return
        if protocol.send_queue:  # autobahn's own queue, used only for chopped writes
            protocol.sendData(data)
        else:
            self.transport.write(data)

    async def send(self, text: str) -> None:
        """One text frame to this socket alone."""
        metrics.WS_FRAMES_SENT.inc()
        if self.protocol is not None:
            self.write(frame_once(text, self.protocol.factory))
        elif not self.closed:
            with contextlib.suppress(Exception):  # closed meanwhile
                await self.consumer.send(text_data=text)

    def backlog(self) -> int:
        """Bytes written and not yet taken by the client: the transport's and the queue's."""
        transport = self.transport
        if transport is None:
            return 0
        held = getattr(transport, "dataBuffer", b"")
        return (
            self.queued + len(held) - getattr(transport, "offset", 0)
            + getattr(transport, "_tempDataLen", 0)
        )  # fmt: skip

    async def room(self) -> None:
        """Wait until the socket takes more: what was written so far has mostly drained."""
        if self.protocol is None or self.closed or (not self.paused and not self.queue):
            return
        if self._room is None:
            self._room = asyncio.Event()
        self._room.clear()
        await self._room.wait()

    def _overflow(self) -> None:
        """Close the socket with 4408: the client took too little of what it was sent."""
        held = self.backlog()
        self._stop()
        metrics.WS_SLOW_CLOSED.inc()
        logger.info("websocket closed (4408): its client left %d bytes unread", held)
        if self.protocol.state == OPEN:
            self.protocol.closeHandshakeTimeout = SLOW_CLOSE_TIMEOUT
            self.protocol.serverClose(code=CLOSE_SLOW)

    def _stop(self) -> None:
        self.closed = True
        self.queue.clear()
        self.queued = 0
        if self._room is not None:
            self._room.set()  # a replay waiting for room ends

    # --- Twisted's producer interface (its names) ------------------------------------------

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        while self.queue and not self.paused and not self.closed:
            data = self.queue.popleft()
            self.queued -= len(data)
            self._put(data)  # may pause again, at once
        if not self.paused and self._room is not None:
            self._room.set()

    def stopProducing(self) -> None:
        self._stop()
