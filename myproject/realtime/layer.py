"""
A socket's side of Channels' channel layer (channels_redis; in memory under `make run`): its
channel, its groups, and what travels there, ephemeral (never numbered, never kept): signals and
presence (myproject.realtime.presence).

    class CheckConsumer(EventConsumer):
        in_group = True    # joins the layer group named after its topic: signals and presence

Every EventConsumer holds a channel (`self.channel_name`, for `group_add` and `send`) as
Channels gives every consumer one, and joins the `groups` its class declares, unless the class
sets `layer_channel = False`: the catalog stream, whose frames all come from its hub, so that
nothing could be sent to its channel, saves the channel's queue, its Redis subscription and the
task waiting on it (about 8 KiB a socket, make bench: sockets). While the layer is unreachable a
socket is served all the same (its numbered frames do not need the layer): it takes its channel,
and joins its groups, once the layer answers again.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from myproject.realtime import presence, quotas, topics
from myproject.realtime.inbound import FrameError

logger = logging.getLogger(__name__)

# The channel layer unreachable: a call gives up after TIMEOUT seconds, and a socket without its
# channel tries again every RETRY seconds.
TIMEOUT = 2.0
RETRY = 5.0


class LayerMember:
    """The channel-layer half of EventConsumer (a mixin: it shares the consumer's state)."""

    channel_layer: Any
    groups: list[str]
    topic: str
    user: Any
    send_json: Callable[[dict[str, Any]], Awaitable[None]]
    connect: Callable[[], Awaitable[None]]
    # Whether the socket takes a channel at all (see the module docstring).
    layer_channel = True
    # Whether the socket joins the layer group named after its topic (signals and presence).
    in_group = False
    channel_name: str | None = None  # None while the channel layer is unreachable
    joined = False  # the socket is in its topic's group and its presence

    def wants_channel(self) -> bool:
        return self.channel_layer is not None and bool(
            self.layer_channel or self.in_group or self.groups
        )

    async def open_channel(self) -> None:
        try:
            async with asyncio.timeout(TIMEOUT):
                self.channel_name = await self.channel_layer.new_channel()
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("channel layer unreachable (%s): the socket's channel comes later", exc)

    async def receive_from_layer(self) -> dict[str, Any]:
        while self.channel_name is None:
            await asyncio.sleep(RETRY)
            await self.open_channel()
            await self.join_layer_groups()
        return await self.channel_layer.receive(self.channel_name)

    def layer_groups(self) -> list[str]:
        return [self.topic, *self.groups] if self.joined else list(self.groups)

    async def join_layer_groups(self) -> None:
        """Join the socket's groups (again: a no-op once joined, and the way back into them
        after Redis was away; presence's heartbeat calls it)."""
        if self.channel_name is None:
            return
        for group in self.layer_groups():
            try:
                async with asyncio.timeout(TIMEOUT):
                    await self.channel_layer.group_add(group, self.channel_name)
            except (RedisError, OSError, TimeoutError) as exc:
                logger.warning("channel layer group %s not joined yet: %s", group, exc)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Channels' own (the declared groups joined, then `connect`), but a layer that is away
        does not end the socket."""
        await self.join_layer_groups()
        await self.connect()

    async def join_topic_group(self) -> None:
        """The topic's group and its presence (`presence.joined` to the others)."""
        self.joined = True
        await self.join_layer_groups()
        await presence.join(self)

    async def leave_layer_groups(self) -> None:
        """Leave every group of the socket, and its presence (on every way out)."""
        groups = self.layer_groups()
        joined, self.joined = self.joined, False
        if self.channel_name is not None:
            for group in groups:
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(TIMEOUT):
                        await self.channel_layer.group_discard(group, self.channel_name)
        if joined:
            await presence.leave(self)

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
        async with asyncio.timeout(TIMEOUT):
            await self.channel_layer.group_send(self.topic, message)

    async def send_presence(self) -> None:
        """Who is in the group now, over every daphne (a client's `presence` frame)."""
        await self.send_json({"type": "presence", "members": await presence.members(self.topic)})

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
