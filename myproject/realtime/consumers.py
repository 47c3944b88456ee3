"""
The base of every WebSocket consumer: a socket listens to one topic through its process's hub
(myproject.realtime.hub), sends JSON text frames within limits, and gets an `error` frame for
anything malformed (the socket stays open).

    class CatalogConsumer(EventConsumer):
        async def authorize(self) -> str:
            return topics.CATALOG          # the topic; raise Refused to refuse (HTTP 403)

        async def receive_frame(self, frame: dict) -> None:
            raise FrameError("read_only", "This stream is read-only.")

The first frame on a socket is `hello`; `?since=<epoch>:<seq>` resumes from a position, and
`?events=off` asks for nothing but what the socket subscribes to (its live queries). Everything
the socket receives goes through its sink (myproject.realtime.sink), which closes it with 4408
when its client stops taking what it is sent. A signed-in socket closes with 4401 when what
opened it ends: a revocation of its user's or its credential's group (identity.credentials;
frames of the control topic, myproject.realtime.revocation), and, within SWEEP seconds, an
expiry no write announced (a sweep checks every socket's credential). When daphne shuts down (a
restart, a deploy) every socket is closed with 4503 (restarting), so clients see a close code
and reconnect with `since` instead of finding a dead TCP connection.

Beside the consumer, each in its own module: what a client sends, refused or read (`inbound`),
a socket's live queries (`subscriptions`), and its side of Channels' channel layer, with signals
and presence (`layer`).
"""

import asyncio
import contextlib
import functools
import json
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.security import websocket as channels_security
from channels.utils import await_many_dispatch
from django.conf import settings
from redis.exceptions import RedisError

from myproject import metrics
from myproject.realtime import daphne, quotas
from myproject.realtime.hub import Hub
from myproject.realtime.hubs import hubs
from myproject.realtime.inbound import FrameError, Refused, parse_frame
from myproject.realtime.layer import LayerMember
from myproject.realtime.listeners import Member
from myproject.realtime.revocation import Credential
from myproject.realtime.sink import Sink
from myproject.realtime.subscriptions import LiveQueries
from myproject.realtime.topics import NOWHERE, Position, user_group

__all__ = ["EventConsumer", "FrameError", "NoSuchRoute", "Refused", "allowed_origins"]

logger = logging.getLogger(__name__)

# The server is restarting, or cannot serve the socket right now: reconnect. (1012 and 1013 say
# so too, but daphne sends only 1000 and 3000-4999.)
CLOSE_RESTART = 4503


class EventConsumer(LiveQueries, LayerMember, AsyncWebsocketConsumer):
    # The route, as metrics label sockets (a pattern, never a path with a group name in it).
    route: str = ""
    topic: str
    hub: Hub | None = None
    member: Member | None = None
    sink: Sink | None = None
    counted = False

    async def authorize(self) -> str:
        """The topic this socket listens to; raise Refused to refuse the handshake."""
        raise NotImplementedError

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        """Act on one well-formed frame; raise FrameError to answer with an error frame."""
        raise NotImplementedError

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await self._serve(scope, receive, send)
        except asyncio.CancelledError:
            # The server is shutting down (daphne cancels every application on SIGTERM):
            # say so with a close frame rather than letting the TCP connection just drop.
            # The cancellation ends here, on purpose: daphne waits for its applications with
            # `gather`, which returns (and lets the process exit) as soon as the first one
            # re-raises it, cutting every other socket's close frame and clean-up short.
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": CLOSE_RESTART})
        finally:
            # Every way out leaves the hub and gives the socket's place back: a clean close, a
            # crash in a handler, a cancellation by daphne (shutdown, application-close-timeout).
            if self.accepted:
                metrics.WS_CONNECTIONS.labels(route=self.route).dec()
            self.leave()
            if self.revocable:
                hubs().revocations.unwatch(self, self.revocable)
            if self.counted:
                await quotas.sockets.release(self.user.pk, self.socket_id)
            await self.leave_layer_groups()
            daphne.socket_closed()

    async def _serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' `AsyncConsumer.__call__`, but for the channel layer: a socket whose class
        takes no channel waits on its socket alone (no second task), and one whose layer is
        unreachable is served all the same (myproject.realtime.layer)."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        with contextlib.suppress(StopConsumer):
            if not self.wants_channel():
                while True:
                    await self.dispatch(await receive())
            await self.open_channel()
            await await_many_dispatch([receive, self.receive_from_layer], self.dispatch)

    # Handlers that touch no database skip the hop Channels makes to the ORM's one sync thread
    # (close_old_connections) before every handler: N sockets closing at once (a network drop, a
    # proxy restart) would otherwise queue N hops behind that thread, each keeping ~3 KiB and
    # its consumer alive until the thread reaches it (make bench: sockets); and a signal to a
    # group would wait for that thread once per socket.
    RELAYS = {
        "websocket.disconnect": "websocket_disconnect",
        "signal": "signal",
        "presence.joined": "presence_joined",
        "presence.left": "presence_left",
    }
    # The groups whose revocation closes this socket (its user's, its credential's).
    revocable: tuple[str, ...] = ()

    @functools.cached_property
    def socket_id(self) -> str:
        """This socket, among every process's (its place in its user's cap)."""
        return secrets.token_hex(12)

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        relay = self.RELAYS.get(kind)
        if relay is not None:
            await getattr(self, relay)(message)
        elif not isinstance(kind, str) or not hasattr(self, kind.replace(".", "_")):
            # A channel-layer message this consumer has no handler for (a group_send of
            # someone's own to a group that sockets of this route are in): dropped, where
            # Channels would raise and end the socket.
            logger.warning("websocket: no handler for a message of type %r; dropped", kind)
        else:
            await super().dispatch(message)
        # redis-py sends a command through asyncio.wait_for when the client has a socket
        # timeout, and on Python 3.11 wait_for swallows a cancellation that arrives as the send
        # completes: daphne's shutdown, cancelling a socket whose handler was talking to Redis,
        # would leave it running, with no 4503. A handler that ends with a cancellation pending
        # raises it here.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    @property
    def user(self) -> Any:
        return self.scope.get("user")

    @property
    def credential(self) -> Credential | None:
        """What the socket was opened with (the auth middleware puts it in the scope): the
        socket closes when that ends (myproject.realtime.revocation)."""
        return self.scope.get("credential")

    accepted = False

    async def connect(self) -> None:
        try:
            topic = await self.authorize()
        except Refused as refused:
            await self.refuse(refused.reason, refused.detail)
            return
        if not await self.take_place():
            await self.refuse("too_many_sockets", f"{settings.WS_MAX_SOCKETS_PER_USER} open")
            return
        self.topic = topic
        if self.credential is not None:
            self.revocable = (user_group(self.user.pk), self.credential.group)
            hubs().watch(self, self.revocable)
        await self.accept()
        self.accepted = True
        metrics.WS_CONNECTIONS.labels(route=self.route).inc()
        await self.listen(self.since())

    async def refuse(self, reason: str, detail: str) -> None:
        """Refuse the handshake (HTTP 403), saying why in the log: the client only sees 403."""
        metrics.WS_REFUSED.labels(reason=reason).inc()
        logger.info(
            "websocket handshake refused on %s: %s (%s)", self.scope["path"], reason, detail
        )
        await self.close()

    @functools.cached_property
    def query(self) -> dict[str, list[str]]:
        """The handshake's query string."""
        return parse_qs(self.scope.get("query_string", b"").decode("latin-1"))

    def since(self) -> Position | None:
        """The position a reconnecting client resumes from (`?since=`); an unreadable one is
        answered as a position that cannot be recovered."""
        if "since" not in self.query:
            return None
        return Position.parse(self.query["since"][-1]) or NOWHERE

    @property
    def address(self) -> str:
        """The client's address (daphne takes it from nginx's X-Real-IP)."""
        client = self.scope.get("client")
        return str(client[0]) if client else ""

    async def listen(self, since: Position | None) -> None:
        """Join the topic's hub: `hello` (and the frames missed since `since`) first."""
        self.sink = Sink(self)
        self.start_live_queries()
        muted = self.query.get("events", [""])[-1] == "off"
        self.member = Member(self.sink, muted=muted)
        self.hub = hubs().get(self.topic)
        try:
            await self.hub.attach(self.member, since)
        except TimeoutError:
            logger.warning("no position for topic %s: closing a new socket (4503)", self.topic)
            await self.close(code=CLOSE_RESTART)
            return
        if self.in_group:
            await self.join_topic_group()

    def leave(self) -> None:
        if self.hub is not None and self.member is not None:
            self.hub.detach(self.member)
        self.end_live_queries()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' own handler (its groups are left on the way out, `__call__`), without its
        hop to the sync thread (see RELAYS)."""
        self.leave()
        await self.disconnect(message["code"])
        raise StopConsumer

    async def take_place(self) -> bool:
        """Hold one of the user's `WS_MAX_SOCKETS_PER_USER` places (myproject.realtime.quotas);
        False when none is left. Anonymous sockets are capped by nginx, per address."""
        if self.credential is None:
            return True
        if not await quotas.sockets.acquire(self.user.pk, self.socket_id):
            return False
        self.counted = True
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        metrics.WS_FRAMES_RECEIVED.inc()
        try:
            frame = parse_frame(text_data, bytes_data)
            kind = frame.get("type")
            if kind in ("subscribe", "unsubscribe"):
                await self.receive_subscription(frame)
            elif kind == "signal" and self.joined:
                await self.send_signal(frame)
            elif kind == "presence" and self.joined:
                await self.send_presence()
            else:
                await self.receive_frame(frame)
        except FrameError as exc:
            await self.send_error(exc.code, exc.detail, **exc.extra)
        except RedisError as exc:
            logger.warning("a frame needed Redis, which is unreachable: %s", exc)
            await self.send_error("unavailable", "Try again shortly.")

    async def send_error(self, code: str, detail: Any, **extra: Any) -> None:
        metrics.WS_ERRORS.labels(code=code).inc()
        await self.send_json({"type": "error", "code": code, "detail": detail, **extra})

    async def send_json(self, content: dict[str, Any]) -> None:
        """Every frame of the consumer's own goes through the socket's sink."""
        await self.sink.send(json.dumps(content))


class OriginValidator(channels_security.OriginValidator):
    """Channels' check of the Origin header against ALLOWED_HOSTS, saying why it refuses."""

    def valid_origin(self, parsed_origin: Any) -> bool:
        if super().valid_origin(parsed_origin):
            return True
        metrics.WS_REFUSED.labels(reason="origin").inc()
        origin = parsed_origin.netloc if parsed_origin is not None else None
        logger.info("websocket handshake refused: origin %r not allowed", origin)
        return False


def allowed_origins(application: Any) -> OriginValidator:
    """Channels' `AllowedHostsOriginValidator`, logging refusals."""
    return OriginValidator(application, settings.ALLOWED_HOSTS)


class NoSuchRoute(channels_security.WebsocketDenier):
    """Refuses a handshake on a path no consumer serves (HTTP 403), and says so."""

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        metrics.WS_REFUSED.labels(reason="route").inc()
        logger.info("websocket handshake refused: no route %s", self.scope["path"])
        await super().websocket_connect(message)
