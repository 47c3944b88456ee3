"""
The base of every WebSocket consumer: JSON text frames within limits, an `error` frame for
anything malformed (the socket stays open), and the relay of what the channel layer brings.

    class CatalogConsumer(EventConsumer):
        async def authorize(self) -> list[str] | None:
            return [events.CATALOG_GROUP]      # None refuses the handshake (HTTP 403)

        async def receive_frame(self, frame: dict) -> None:
            raise FrameError("read_only", "This stream is read-only.")

Change events (`forward.event`) are sent on as they are; `revoke.session`, sent to a user's
private group when its password changes or it is disabled, closes the socket with 4401. When
daphne shuts down (a restart, a deploy) every socket is closed with 4503 (restarting), so
clients see a close code and reconnect instead of finding a dead TCP connection.
"""

import asyncio
import contextlib
import json
import time
import weakref
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import ConnectionError as RedisConnectionError

from myproject import daphne_process, events

# Deeper JSON than this is refused: it only costs (recursion in json and msgpack).
MAX_DEPTH = 32
CLOSE_REVOKED = 4401
# The server is restarting: reconnect. (1012 says so too, but daphne sends only 1000 and
# 3000-4999.)
CLOSE_RESTART = 4503


class FrameError(Exception):
    """A frame the server will not act on; answered with an `error` frame."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class EventConsumer(AsyncWebsocketConsumer):
    groups: list[str]

    async def authorize(self) -> list[str] | None:
        """The groups this socket joins, or None to refuse the handshake."""
        raise NotImplementedError

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        """Act on one well-formed frame; raise FrameError to answer with an error frame."""
        raise NotImplementedError

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # The server is shutting down (daphne cancels every application on SIGTERM):
            # say so with a close frame rather than letting the TCP connection just drop.
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": CLOSE_RESTART})
            raise
        finally:
            # Channels has left the channel layer too (its unsubscribe is awaited above).
            daphne_process.socket_closed()

    # These handlers touch no database, so they skip the hop Channels makes to the ORM's one
    # sync thread (close_old_connections) before every handler: an event fanned out to N
    # sockets would otherwise queue N hops behind that thread (make bench: fan-out), and so
    # would N sockets closing at once (a network drop, a proxy restart). Each queued hop keeps
    # ~3 KiB and its consumer alive until the thread reaches it: closing 5,000 sockets at once
    # took daphne's memory ~20 MB above what holding them did, and Python keeps such memory
    # for reuse, so the next cycle's peak started there (make bench: sockets).
    RELAYS = {
        events.FORWARD: "forward_event",
        events.MESSAGE: "chat_message",
        "websocket.disconnect": "websocket_disconnect",
    }

    async def dispatch(self, message: dict[str, Any]) -> None:
        relay = self.RELAYS.get(message.get("type"))
        if relay is None:
            await super().dispatch(message)
        else:
            await getattr(self, relay)(message)

    @property
    def user(self) -> Any:
        return self.scope.get("user")

    async def connect(self) -> None:
        groups = await self.authorize()
        if groups is None or not await self.count_socket():
            await self.close()  # before accept: the handshake gets HTTP 403
            return
        if self.user is not None and self.user.is_authenticated:
            groups.append(events.user_group(self.user.pk))
        self.groups = groups  # Channels discards these on disconnect
        for group in groups:
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except RedisConnectionError:
                # The pub/sub layer finds a connection broken by a Redis restart only when it
                # next uses it, if no socket of this process was listening meanwhile; the failed
                # call dropped it, so the second one connects afresh (and subscribes again).
                await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' own handler, but without its second hop to the sync thread (see RELAYS),
        with at most LEAVE_CONCURRENCY sockets leaving their groups at once, and running
        `disconnect` even when leaving a group fails (Redis unreachable, say), so the socket
        still gives its place in the user's count back."""
        try:
            async with _leave_gate():
                for group in self.groups:
                    await self.channel_layer.group_discard(group, self.channel_name)
        finally:
            await self.disconnect(message["code"])
        raise StopConsumer

    async def disconnect(self, code: int) -> None:
        if self.counted:
            await _sockets_change(self.user.pk, -1)

    counted = False

    async def count_socket(self) -> bool:
        """Hold one of the user's `WS_MAX_SOCKETS_PER_USER` sockets, counted in the shared
        cache so the cap holds across daphne processes; False when none is left."""
        if self.user is None or not self.user.is_authenticated:
            return True
        count = await _sockets_change(self.user.pk, +1)
        if count is None:
            return True  # the cache is unreachable: fail open, like the REST throttles
        if count > settings.WS_MAX_SOCKETS_PER_USER:
            await _sockets_change(self.user.pk, -1)
            return False
        self.counted = True
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            await self.receive_frame(parse_frame(text_data, bytes_data))
        except FrameError as exc:
            await self.send_json({"type": "error", "code": exc.code, "detail": exc.detail})

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))

    async def chat_message(self, message: dict[str, Any]) -> None:
        """A group message: from a member of a check channel, or from `manage.py broadcast`."""
        await self.send_json(
            {"type": "message", "message": message["message"], "sender": message["sender"]}
        )

    async def forward_event(self, message: dict[str, Any]) -> None:
        await self.send(text_data=message["text"])

    async def revoke_session(self, message: dict[str, Any]) -> None:
        await self.close(code=CLOSE_REVOKED)


# At most this many sockets of a process leave their groups at once. When thousands close
# together, every `group_discard` in flight at once means, with the core layer, thousands of
# Redis commands queued on its pool (~2.4 KiB each, with their consumers held meanwhile) and up
# to 100 connections opened at once, some timing out on a busy host; a socket waiting here
# costs a future.
LEAVE_CONCURRENCY = 20
_leave_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _leave_gate() -> asyncio.Semaphore:
    """The LEAVE_CONCURRENCY gate of the running event loop (tests run one loop per test)."""
    loop = asyncio.get_running_loop()
    gate = _leave_gates.get(loop)
    if gate is None:
        gate = _leave_gates[loop] = asyncio.Semaphore(LEAVE_CONCURRENCY)
    return gate


# A crashed process cannot give its sockets back; the count forgets them after a day.
SOCKET_COUNT_TTL = 24 * 3600


async def _sockets_change(user_id: object, delta: int) -> int | None:
    key = f"ws-sockets:{user_id}"
    try:
        await cache.aadd(key, 0, timeout=SOCKET_COUNT_TTL)
        count = await cache.aincr(key, delta)
        await cache.atouch(key, SOCKET_COUNT_TTL)
    except ValueError:  # the key vanished (expired, or the cache lost it)
        return None
    return count


def parse_frame(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    """A client frame as a JSON object, or FrameError saying what is wrong with it."""
    if text_data is None:
        raise FrameError("binary", "Frames must be JSON text, not binary.")
    if len(text_data.encode("utf-8", "surrogatepass")) > settings.WS_MAX_FRAME:
        raise FrameError("too_large", f"Frames are limited to {settings.WS_MAX_FRAME} bytes.")
    try:
        frame = json.loads(text_data)
    except (ValueError, RecursionError) as exc:
        raise FrameError("invalid_json", "The frame is not valid JSON.") from exc
    if not isinstance(frame, dict):
        raise FrameError("not_an_object", "The frame must be a JSON object.")
    if _depth(frame) > MAX_DEPTH:
        raise FrameError("too_deep", f"JSON nested deeper than {MAX_DEPTH} levels.")
    return frame


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return depth
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    return depth


class RateLimit:
    """A token bucket: `rate` like "50/s" or "600/min"; None never limits."""

    PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def __init__(self, rate: str | None) -> None:
        self.capacity = self.per_second = 0.0
        if rate:
            count, period = rate.split("/")
            self.capacity = float(count)
            self.per_second = self.capacity / self.PERIODS[period.strip()[0]]
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        if not self.capacity:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.per_second)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
