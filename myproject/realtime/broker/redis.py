"""
The broker on Redis (production: `REDIS_URL`, or Sentinel).

Per topic, a meta hash (epoch, last seq, GTID of its writes), a stream whose entry ids are the
seqs (the history: the last `DJANGO_WS_HISTORY_SIZE` frames, expiring `DJANGO_WS_HISTORY_TTL`
seconds after the topic's last frame) and a sorted set of idempotency keys. Each operation is one
Lua script (lua/*.lua, which a reader can open on its own), so numbering, keeping and announcing
a frame are one atomic step. Pub/sub is only the fast path: a listener that missed a message (its
connection dropped) reads the gap back from the stream. Behind Sentinel a frame is announced only
once a replica has it (WAIT), so a failover cannot take back a frame that a client has seen.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
from django.conf import settings
from redis.exceptions import NoScriptError, RedisError

from myproject import metrics, redis_clients
from myproject.realtime.broker.base import (
    KEY_WINDOW,
    META_TTL,
    Broker,
    Entry,
    Listening,
    OnFrame,
    Outgoing,
    complete,
    new_epoch_name,
)
from myproject.realtime.topics import Position
from myproject.redis_clients import Script

logger = logging.getLogger(__name__)

PREFIX = "myproject:rt:"
UNACKNOWLEDGED_LOG = 10.0  # seconds between two reports of frames no replica acknowledged
LUA = Path(__file__).with_name("lua")


PUBLISH = Script(LUA / "epoch.lua", LUA / "publish.lua")
POSITION = Script(LUA / "epoch.lua", LUA / "position.lua")
HISTORY = Script(LUA / "history.lua")
NEW_EPOCH = Script(LUA / "new_epoch.lua")


def keys(topic: str) -> list[str]:
    # One hash tag per topic: every key of a topic on one slot, should the keys ever be sharded.
    return [f"{PREFIX}{{{topic}}}:meta", f"{PREFIX}{{{topic}}}:stream", f"{PREFIX}{{{topic}}}:keys"]


def channel(topic: str) -> str:
    """A topic's pub/sub channel. Redis's channels belong to the server, not to a database:
    without the database's number, deployments (or test runs) on other databases of the same
    server would hear each other's frames."""
    return f"{PREFIX}{settings.REDIS_DB}:{topic}"


def _topic_of(channel_name: str) -> str:
    return channel_name.removeprefix(channel(""))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _position(reply: Sequence[object]) -> Position:
    return Position(_text(reply[0]), int(reply[1]))


class RedisBroker(Broker):
    def __init__(self) -> None:
        self.size = settings.WS_HISTORY_SIZE
        self.ttl_ms = settings.WS_HISTORY_TTL * 1000
        # Behind Sentinel, announce a frame only once a replica holds it (see the docstring).
        self.replicas = settings.REDIS_WAIT_REPLICAS
        self._unacknowledged = 0
        self._next_unacknowledged_log = 0.0

    def _publish_args(self, frame: Outgoing, announce: bool) -> list[object]:
        return [
            frame.payload, new_epoch_name(), self.size, self.ttl_ms, META_TTL * 1000,
            channel(frame.topic), "1" if announce else "0", frame.gtid or "", frame.key or "",
            KEY_WINDOW,
        ]  # fmt: skip

    def publish(self, frames: Sequence[Outgoing]) -> list[Position]:
        """One round trip per batch, whatever its size (make bench: writes)."""
        client = redis_clients.sync_client()
        announce = not self.replicas
        try:
            replies = self._run_all(client, frames, announce)
        except NoScriptError:
            # The script is gone (Redis restarted): every EVALSHA of the batch failed alike.
            client.script_load(PUBLISH.source)
            replies = self._run_all(client, frames, announce)
        positions = [_position(reply) for reply in replies]
        if not announce:
            self._wait_for_replicas(client)
            pipe = client.pipeline(transaction=False)
            for frame, position, reply in zip(frames, positions, replies, strict=True):
                if not int(reply[2]):  # a frame seen before was announced then
                    pipe.publish(channel(frame.topic), _message(position, frame.payload))
            pipe.execute()
        return positions

    def _run_all(
        self, client: redis.Redis, frames: Sequence[Outgoing], announce: bool
    ) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for frame in frames:
            pipe.evalsha(PUBLISH.sha, 3, *keys(frame.topic), *self._publish_args(frame, announce))
        return pipe.execute()

    def _wait_for_replicas(self, client: redis.Redis) -> None:
        acknowledged = client.execute_command("WAIT", self.replicas, settings.REDIS_WAIT_TIMEOUT_MS)
        if acknowledged < self.replicas:
            # After a failover the new primary has no replica until the old one is back: every
            # batch is announced unacknowledged, so say so every UNACKNOWLEDGED_LOG seconds only.
            self._unacknowledged += 1
            if time.monotonic() >= self._next_unacknowledged_log:
                logger.warning(
                    "frames announced before %d replica(s) acknowledged them (%d did; %d such "
                    "batch(es) since the last report)",
                    self.replicas, acknowledged, self._unacknowledged,
                )  # fmt: skip
                self._unacknowledged = 0
                self._next_unacknowledged_log = time.monotonic() + UNACKNOWLEDGED_LOG

    async def apublish(self, topic: str, payload: str) -> Position:
        client = redis_clients.async_client()
        announce = not self.replicas
        frame = Outgoing(topic, payload)
        position = _position(
            await PUBLISH.run(client, keys(topic), self._publish_args(frame, announce))
        )
        if not announce:
            await client.execute_command("WAIT", self.replicas, settings.REDIS_WAIT_TIMEOUT_MS)
            await client.publish(channel(topic), _message(position, payload))
        return position

    def _position_args(self) -> list[object]:
        return [new_epoch_name(), self.ttl_ms, META_TTL * 1000]

    def position(self, topic: str) -> Position:
        reply = POSITION(redis_clients.sync_client(), keys(topic), self._position_args())
        return _position_with_gtid(reply)

    async def aposition(self, topic: str) -> Position:
        client = redis_clients.async_client()
        return _position_with_gtid(await POSITION.run(client, keys(topic), self._position_args()))

    async def history(
        self, topic: str, epoch: str, after: int, until: int | None = None
    ) -> tuple[Position, list[Entry] | None]:
        client = redis_clients.async_client()
        args = [epoch, after, -1 if until is None else until]
        reply = await HISTORY.run(client, keys(topic)[:2], args)
        current = _position(reply)
        if current.epoch != epoch or reply[2] is None:
            return current, None
        last = min(until, current.seq) if until is not None else current.seq
        # EVALSHA returns XRANGE's raw reply: [[b"<seq>-0", [b"p", payload]], ...]
        entries = [
            Entry(int(entry_id.split(b"-")[0]), fields[fields.index(b"p") + 1].decode())
            for entry_id, fields in reply[2]
        ]
        return current, complete(entries, after, last)

    async def new_epoch(self, topic: str, stale: str) -> Position:
        client = redis_clients.async_client()
        args = [stale, new_epoch_name(), META_TTL * 1000]
        return _position(await NEW_EPOCH.run(client, keys(topic), args))

    async def listen(
        self,
        topics: Callable[[], Iterable[str]],
        on_frame: OnFrame,
        on_connected: Callable[[], Awaitable[None]],
        listening: Listening,
    ) -> None:
        delay = 0.1
        while True:
            client = redis_clients.subscriber_client()
            pubsub = client.pubsub()
            try:
                await self._listen_once(pubsub, topics, on_frame, on_connected, listening)
            except (RedisError, OSError) as exc:
                metrics.REDIS_RECONNECTS.inc()
                logger.warning("realtime: Redis subscription lost (%s); reconnecting", exc)
            else:
                delay = 0.1
            finally:
                listening.reset()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _listen_once(
        self,
        pubsub: redis.asyncio.client.PubSub,
        topics: Callable[[], Iterable[str]],
        on_frame: OnFrame,
        on_connected: Callable[[], Awaitable[None]],
        listening: Listening,
    ) -> None:
        """One connection's life: subscribe to every topic, say so once all are confirmed
        (listeners then read back what they missed), relay frames until the connection fails."""
        pending = {channel(topic) for topic in topics()}
        # A subscription to nothing has no connection to read from: one channel of our own
        # keeps it open (and its health checks running) until a topic comes.
        await pubsub.subscribe(channel(""), *pending)
        connected = False
        while True:
            while not listening.changes.empty():
                change, topic = listening.changes.get_nowait()
                if change == "+":
                    await pubsub.subscribe(channel(topic))
                else:
                    await pubsub.unsubscribe(channel(topic))
            message = await pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            kind = message["type"]
            name = message["channel"].decode()
            if kind in (b"message", "message"):
                epoch, seq, payload = message["data"].decode().split(" ", 2)
                on_frame(_topic_of(name), epoch, int(seq), payload)
            elif kind in (b"subscribe", "subscribe"):
                pending.discard(name)
                listening.confirm([_topic_of(name)])
                if not connected and not pending:
                    connected = True
                    await on_connected()


def _message(position: Position, payload: str) -> str:
    """What a frame's announcement carries on pub/sub."""
    return f"{position.epoch} {position.seq} {payload}"


def _position_with_gtid(reply: Sequence[object]) -> Position:
    """POSITION's reply: the position, with the GTID that covers its frames' writes."""
    position = _position(reply)
    return Position(position.epoch, position.seq, gtid=_text(reply[2]) or None)
