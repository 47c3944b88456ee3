"""
A minimal WebSocket client for thousands of sockets in one process: an asyncio Protocol per
socket, no task per socket, frames timestamped in `data_received` and parsed later.

A full client library (websockets) spends tens of microseconds of Python per frame, which on
2 cores is CPU taken from the daphne being measured and adds to every latency it reports.
Here a received frame costs a few microseconds. Client frames use an all-zero masking key:
valid framing (the mask bit is set, RFC 6455 5.3) that spares XOR-ing each payload byte in
Python; a benchmark client needs no protection against cache poisoning by proxies.
"""

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

ZERO_MASK = b"\x00\x00\x00\x00"


def frame(opcode: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, 0x80 | length])
    elif length < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    return header + ZERO_MASK + payload


class Socket(asyncio.Protocol):
    """One client WebSocket. `frames` holds (perf_counter, payload) of every text frame unless
    an `on_text` callback takes them; pings are answered, a close frame is echoed."""

    def __init__(
        self, host: str, path: str, origin: str, on_text: Callable[[Any, bytes], None] | None
    ) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Origin: {origin}\r\n\r\n"
        ).encode()
        self.on_text = on_text
        self.frames: list[tuple[float, bytes]] = []
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.close_code: int | None = None
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            del self.buffer[: end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                if not self.handshake.done():
                    self.handshake.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()
                return
            self.open = True
            self.handshake.set_result(True)
        self._frames(now)

    def _frames(self, now: float) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                return
            payload = bytes(buffer[start : start + length])
            del buffer[: start + length]
            if opcode == 0x1:
                if self.on_text is None:
                    self.frames.append((now, payload))
                else:
                    self.on_text(self, payload)
            elif opcode == 0x9:
                self.transport.write(frame(0xA, payload))
            elif opcode == 0x8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                if not self.transport.is_closing():
                    self.transport.write(frame(0x8, payload[:2]))
                    self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def send_text(self, text: bytes) -> None:
        self.transport.write(frame(0x1, text))

    def close(self) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(frame(0x8, (1000).to_bytes(2, "big")))


async def connect(
    port: int,
    path: str,
    *,
    count: int,
    host: str | None = None,
    on_text: Callable[[Any, bytes], None] | None = None,
    parallel: int = 40,
    timeout: float = 120,
) -> list[Socket]:
    """`count` sockets to 127.0.0.1:`port``path`, at most `parallel` handshakes in flight
    (daphne's listen backlog is Twisted's 50): all of them open, or an exception."""
    loop = asyncio.get_running_loop()
    host = host or f"127.0.0.1:{port}"
    origin = f"http://{host}"
    gate = asyncio.Semaphore(parallel)
    sockets: list[Socket] = []

    async def one() -> None:
        async with gate:
            _, protocol = await loop.create_connection(
                lambda: Socket(host, path, origin, on_text), "127.0.0.1", port
            )
            sockets.append(protocol)
            await protocol.handshake

    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), timeout)
    except BaseException:
        await close_all(sockets)
        raise
    return sockets


async def close_all(sockets: list[Socket], timeout: float = 30) -> int:
    """Close every socket cleanly; the ones that don't finish in time are aborted.
    Returns how many had to be aborted."""
    for socket in sockets:
        socket.close()
    pending = [s.closed for s in sockets if not s.closed.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    aborted = 0
    for socket in sockets:
        if not socket.closed.done() and socket.transport:
            aborted += 1
            socket.transport.abort()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(s.closed for s in sockets)), 10)
    return aborted
