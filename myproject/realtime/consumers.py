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
from myproject.realtime import daphne, presence, queries, quotas, topics
from myproject.realtime.hub import Hub
from myproject.realtime.hubs import hubs
from myproject.realtime.listeners import Follower, Member
from myproject.realtime.revocation import Credential
from myproject.realtime.sink import Sink
from myproject.realtime.topics import NOWHERE, Position, user_group

logger = logging.getLogger(__name__)

# Deeper JSON than this is refused: it only costs (recursion in json and msgpack).
MAX_DEPTH = 32
# The server is restarting, or cannot serve the socket right now: reconnect. (1012 and 1013 say
# so too, but daphne sends only 1000 and 3000-4999.)
CLOSE_RESTART = 4503

# The longest query string a subscription may carry (a REST URL's query fits well within it).
MAX_FILTER = 4096
# The channel layer (signals, presence) unreachable: a call gives up after LAYER_TIMEOUT
# seconds, and a socket without its channel tries again every LAYER_RETRY seconds.
LAYER_TIMEOUT = 2.0
LAYER_RETRY = 5.0


class FrameError(Exception):
    """A frame the server will not act on; answered with an `error` frame (`detail` is text,
    or the field errors of an invalid filter)."""

    def __init__(self, code: str, detail: Any, **extra: Any) -> None:
        super().__init__(str(detail))
        self.code = code
        self.detail = detail
        self.extra = extra


class Refused(Exception):
    """The handshake is refused (HTTP 403); the log says why (`reason`, `detail`)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class EventConsumer(AsyncWebsocketConsumer):
    # The route, as metrics label sockets (a pattern, never a path with a group name in it).
    route: str = ""
    topic: str
    hub: Hub | None = None
    member: Member | None = None
    sink: Sink | None = None
    counted = False
    # id -> (hub, follower): the socket's live queries
    live_queries: dict[str, tuple[Hub, Follower]]

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
            if self.in_group:
                await self.leave_layer_group()
            daphne.socket_closed()

    async def _serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' `AsyncConsumer.__call__`, but for the channel layer being unreachable: the
        socket is served all the same (its numbered frames do not need the layer), and takes its
        channel once the layer answers again (`_receive_from_layer`)."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        callables = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self._new_channel()
            callables.append(self._receive_from_layer)
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch(callables, self.dispatch)

    async def _new_channel(self) -> str | None:
        try:
            async with asyncio.timeout(LAYER_TIMEOUT):
                return await self.channel_layer.new_channel()
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("channel layer unreachable (%s): the socket's channel comes later", exc)
            return None

    async def _receive_from_layer(self) -> dict[str, Any]:
        while self.channel_name is None:
            await asyncio.sleep(LAYER_RETRY)
            self.channel_name = await self._new_channel()
            if self.channel_name is not None and self.in_group:
                await self.join_layer_group()
        return await self.channel_layer.receive(self.channel_name)

    async def join_layer_group(self) -> None:
        """Join the channel-layer group named after the topic (again: a no-op once joined, and
        the way back into it after Redis was away, myproject.realtime.presence)."""
        if self.channel_name is None:
            return
        try:
            async with asyncio.timeout(LAYER_TIMEOUT):
                await self.channel_layer.group_add(self.topic, self.channel_name)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("channel layer group %s not joined yet: %s", self.topic, exc)

    async def leave_layer_group(self) -> None:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            if self.channel_name is not None:
                async with asyncio.timeout(LAYER_TIMEOUT):
                    await self.channel_layer.group_discard(self.topic, self.channel_name)
        await presence.leave(self)

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
    # Whether the socket is a member of the channel-layer group named after its topic, with
    # presence and signals (the check channel).
    in_group = False
    channel_name: str | None = None  # None while the channel layer is unreachable
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
        self.live_queries = {}
        self.subscribe_rate = quotas.RateLimit(settings.WS_SUBSCRIBE_RATE)
        muted = self.query.get("events", [""])[-1] == "off"
        self.member = Member(self.sink, muted=muted)
        self.hub = hubs().get(self.topic)
        try:
            await self.hub.attach(self.member, since)
        except TimeoutError:
            logger.warning("no position for topic %s: closing a new socket (4503)", self.topic)
            await self.close(code=CLOSE_RESTART)
            return
        if type(self).in_group:
            self.in_group = True
            await self.join_layer_group()
            await presence.join(self)

    def leave(self) -> None:
        if self.hub is not None and self.member is not None:
            self.hub.detach(self.member)
        for hub, follower in getattr(self, "live_queries", {}).values():
            hub.detach(follower)
            queries.quota.give_back(follower.query, self.address)
        self.live_queries = {}

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' own handler (the groups a subclass declares are left), without its hop to
        the sync thread (see RELAYS)."""
        self.leave()
        if self.channel_name is not None:
            for group in self.groups:
                with contextlib.suppress(RedisError, OSError):
                    await self.channel_layer.group_discard(group, self.channel_name)
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
                if not self.subscribe_rate.allow():
                    raise FrameError(
                        "rate_limited",
                        f"At most {settings.WS_SUBSCRIBE_RATE} subscribe and unsubscribe frames.",
                        **({"id": frame["id"]} if isinstance(frame.get("id"), str) else {}),
                    )
                await (self.subscribe if kind == "subscribe" else self.unsubscribe)(frame)
            elif kind == "signal" and self.in_group:
                await self.send_signal(frame)
            elif kind == "presence" and self.in_group:
                members = await presence.members(self.topic)
                await self.send_json({"type": "presence", "members": members})
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

    async def subscribe(self, frame: dict[str, Any]) -> None:
        """Follow the rows of a REST list that match a query string (a live query)."""
        id_ = frame.get("id")
        if not isinstance(id_, str) or not 0 < len(id_) <= 64:
            raise FrameError("invalid_id", "A subscription's id is a string of 1-64 characters.")
        if id_ in self.live_queries:
            raise FrameError("duplicate_id", f"Subscription {id_!r} exists already.", id=id_)
        if len(self.live_queries) >= settings.WS_MAX_SUBSCRIPTIONS:
            raise FrameError(
                "too_many_subscriptions",
                f"At most {settings.WS_MAX_SUBSCRIPTIONS} subscriptions per socket.",
                id=id_,
            )
        resource = queries.RESOURCES.get(frame.get("resource"))
        if resource is None:
            names = ", ".join(sorted(queries.RESOURCES))
            raise FrameError("unknown_resource", f"resource is one of {names}.", id=id_)
        if not resource.anonymous and self.credential is None:
            raise FrameError("forbidden", f"Sign in to follow {resource.name} rows.", id=id_)
        text = frame.get("filter", "")
        if not isinstance(text, str) or len(text) > MAX_FILTER:
            raise FrameError(
                "invalid_filter", f"filter is a query string of at most {MAX_FILTER} characters.",
                id=id_,
            )  # fmt: skip
        since = frame.get("since")
        since = None if since is None else Position.parse(since) or NOWHERE
        try:
            query = queries.compile_query(resource.name, text, self.user)
        except queries.InvalidFilter as exc:
            raise FrameError("invalid_filter", exc.detail, id=id_) from exc
        refused = queries.quota.take(query, self.address)
        if refused is not None:
            raise FrameError("too_many_subscriptions", refused, id=id_)
        follower = Follower(self.sink, id_, query)
        hub = hubs().get(resource.topic)
        self.live_queries[id_] = (hub, follower)
        try:
            await hub.attach(follower, since)
        except BaseException as exc:  # timed out, or the socket's task cancelled meanwhile
            self._end_live_query(id_)
            if isinstance(exc, TimeoutError):
                raise FrameError("unavailable", "Try again shortly.", id=id_) from exc
            raise

    async def unsubscribe(self, frame: dict[str, Any]) -> None:
        id_ = frame.get("id")
        if not isinstance(id_, str) or id_ not in self.live_queries:
            raise FrameError("unknown_subscription", f"No subscription {id_!r}.", id=id_)
        self._end_live_query(id_)
        await self.send_json({"type": "unsubscribed", "id": id_})

    def _end_live_query(self, id_: str) -> None:
        found = self.live_queries.pop(id_, None)
        if found is not None:
            hub, follower = found
            hub.detach(follower)
            queries.quota.give_back(follower.query, self.address)

    async def send_json(self, content: dict[str, Any]) -> None:
        """Every frame of the consumer's own goes through the socket's sink."""
        await self.sink.send(json.dumps(content))

    # --- signals and presence: the channel layer, ephemeral -------------------------------

    async def send_signal(self, frame: dict[str, Any]) -> None:
        """A client's signal, to every other socket of the group, over every daphne."""
        event = frame.get("event")
        if not isinstance(event, str) or not 0 < len(event) <= 64:
            raise FrameError("invalid_signal", '"event" is a string of 1-64 characters.')
        if self.topic in topics.EVENT_TOPICS:
            raise FrameError("read_only", f"{self.topic} carries server events only.")
        if not await quotas.user_rate_allowed("signals", self.user.pk, settings.WS_SIGNAL_RATE):
            raise FrameError("rate_limited", f"At most {settings.WS_SIGNAL_RATE} signals per user.")
        message = {"type": "signal", "event": event, "payload": frame.get("payload"),
                   "sender": str(self.user.pk), "origin": self.channel_name or ""}  # fmt: skip
        async with asyncio.timeout(LAYER_TIMEOUT):
            await self.channel_layer.group_send(self.topic, message)

    async def signal(self, message: dict[str, Any]) -> None:
        """A signal of the group: from a socket (not this one), or `group_send` of any process."""
        event = message.get("event")
        if message.get("origin") == self.channel_name or not isinstance(event, str):
            return
        await self.send_json({"type": "signal", "event": event, "payload": message.get("payload"),
                              "sender": message.get("sender")})  # fmt: skip

    async def presence_joined(self, message: dict[str, Any]) -> None:
        if message.get("origin") != self.channel_name:
            await self.send_json({"type": "presence.joined", "member": message.get("member")})

    async def presence_left(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "presence.left", "member": message.get("member")})


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
