"""
What the realtime path needs from daphne, and what the daphne process changes in the libraries
it runs (`tune`, applied by myproject/asgi.py only under the `daphne` command). Each change was
found by `make bench` or a test, and each is checked in a real daphne
(tests/myproject/realtime/test_daphne.py).

`ProtocolInScope` hands each socket's autobahn protocol to the hub (myproject.realtime.hub), so
that a frame every socket of a topic receives is framed once (`prepareMessage`) and written to
each transport, instead of passing each socket's consumer, daphne's reply queue and autobahn's
framing once per socket (make bench: fan-out, CPU per delivered frame).
"""

import asyncio
import functools
import gc
from typing import Any

from daphne.server import Server

# Where the protocol is kept in the scope; absent when not served by daphne (tests' in-process
# communicators, another ASGI server), and the hub then sends through the consumer.
PROTOCOL = "myproject.protocol"


class ProtocolInScope:
    """ASGI middleware, outermost: puts daphne's WebSocket protocol into the scope."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        # daphne gives each application `functools.partial(server.handle_reply, protocol)`.
        if (
            isinstance(send, functools.partial)
            and isinstance(getattr(send.func, "__self__", None), Server)
            and send.args
        ):
            scope = {**scope, PROTOCOL: send.args[0]}
        return await self.inner(scope, receive, send)


# A full collection runs every 100 younger ones instead of Python's 10...
FULL_COLLECTION_EVERY = 100
# ...and two seconds after this many sockets have closed (daphne lets go of a finished
# application within a second).
COLLECT_AFTER_CLOSES = 500
COLLECT_DELAY = 2.0


def tune() -> None:
    """Call once the application is loaded (the collector's part freezes what is loaded)."""
    global _closes
    _close_protocol_violations_with_a_code()
    _shut_down_every_socket()
    _write_at_once()
    _keep_full_collections_rare_and_short()
    _closes = 0


# Sockets closed since the last collection this module asked for; None: not tuned.
_closes: int | None = None
_collection: asyncio.TimerHandle | None = None


def socket_closed() -> None:
    """Count a closed socket whose consumer has finished (EventConsumer). A closed socket's
    ~36 KiB are freed only by a full collection: daphne and autobahn leave each connection in
    reference cycles (HTTPChannel <-> WebRequest, a Deferred holding its protocol). With
    full collections spaced out, a process that just lost many sockets collects shortly
    after instead of holding their memory until allocations trigger one (make bench:
    sockets, connect/disconnect cycles)."""
    global _closes, _collection
    if _closes is None:
        return
    _closes += 1
    if _closes >= COLLECT_AFTER_CLOSES and _collection is None:
        _collection = asyncio.get_running_loop().call_later(COLLECT_DELAY, _collect)


def _collect() -> None:
    global _closes, _collection
    _closes, _collection = 0, None
    gc.collect()


def _close_protocol_violations_with_a_code() -> None:
    """daphne's WebSocket library (autobahn) answers a protocol violation (a frame over
    daphne's 1 MiB limit, invalid UTF-8 in a text frame) by dropping the TCP connection, so
    the client sees no close code. Have it send the close frame (1009, 1007, 1002) instead."""
    from daphne.ws_protocol import WebSocketFactory

    init = WebSocketFactory.__init__

    def __init__(self: WebSocketFactory, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.setProtocolOptions(failByDrop=False)

    WebSocketFactory.__init__ = __init__


def _shut_down_every_socket() -> None:
    """On SIGTERM daphne cancels every application (each socket then closes with 4503) in
    `Server.kill_all_applications`, which reads `details["application_instance"]` of every
    connection it knows. A connection holds none for a while: the HTTP request that a
    WebSocket upgrade replaced, until daphne's once-a-second checker drops it. A shutdown in
    that second raised KeyError there, so nothing was cancelled and every socket of the
    process was dropped without a close frame. Skip those connections instead."""
    from daphne.server import Server
    from daphne.server import logger as daphne_logger
    from twisted.internet import defer

    def kill_all_applications(self: Server) -> defer.Deferred:
        # daphne 4.2's own, but for `.get`.
        wait_for = []
        for details in self.connections.values():
            instance = details.get("application_instance")
            if instance is not None and not instance.done():
                instance.cancel()
                wait_for.append(instance)
        daphne_logger.info("Killed %i pending application instances", len(wait_for))
        wait_deferred = defer.Deferred.fromFuture(asyncio.gather(*wait_for))
        wait_deferred.addErrback(lambda _: None)
        return wait_deferred

    Server.kill_all_applications = kill_all_applications


def _write_at_once() -> None:
    """Twisted queues every write until the event loop next polls the socket: a register and
    an unregister with epoll and a logged callback per frame, and an event fanned out to N
    sockets leaves daphne only once all N frames are built. Send at once when nothing is
    queued, as asyncio's own transports do; what the socket does not take right away (a slow
    reader, a lost peer) goes through Twisted's queue as before, behind nothing, so order and
    error handling are Twisted's. make bench, fan-out to 1,000 sockets: ~15% less CPU per
    frame, and the median socket hears an event about twice as soon. It reads Twisted's
    private buffer attributes: Twisted is pinned (constraints.txt), and the tests of this
    module and every WebSocket test through a real daphne fail on an upgrade that moves them."""
    from twisted.internet.abstract import FileDescriptor

    queued_write = FileDescriptor.write

    def write(self: FileDescriptor, data: bytes) -> None:
        if (
            data
            and self.connected
            and not self._writeDisconnected
            and not self.dataBuffer
            and not self._tempDataLen
        ):
            sent = self.writeSomeData(data)  # bytes sent, or CONNECTION_LOST (an exception)
            if isinstance(sent, int):
                if sent == len(data):
                    return
                data = data[sent:]
        queued_write(self, data)

    FileDescriptor.write = write


def _keep_full_collections_rare_and_short() -> None:
    """A full garbage collection walks every tracked object and holds up every socket of the
    process meanwhile: with 1,000 sockets, ~110k objects loaded at startup plus ~150 per
    socket, 120 ms, and fan-out ran one every ~10 events, which made its p99 (make bench:
    fanout). What startup loaded lives as long as the process: freeze it out of the walk.
    Each event leaves a few objects per socket in the oldest generation (the next pending
    receive), so full collections come often: make them a tenth as frequent. Cyclic garbage
    (closed sockets leave some) is still collected, just later."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
