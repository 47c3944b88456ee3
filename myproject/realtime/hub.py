"""
The fan-out of one daphne process: one `Hub` per topic that has sockets here, fed by one
subscription to the broker (myproject.realtime.broker), delivering each frame to every socket
of the topic in order, exactly once, or telling the socket that it cannot.

    member = Member(Sink.of(consumer))
    await hubs().get("catalog").attach(member, since=Position.parse("Xk2…:40"))
        # -> the socket gets hello (recovered true), frames 41…, then every later frame
    hubs().get("catalog").detach(member)

A hub keeps the topic's position as this process has delivered it (`epoch`, `seq`) and a ring
of the latest frames. Everything a hub does happens in its own task, one thing at a time, in
the order it was asked: frames, attachments, re-synchronisations. So a socket that attaches
while frames are flowing gets its replay and then the live frames, with no gap and no duplicate.

Continuity, frame by frame:
- `seq` is the next one: delivered.
- `seq` is not new: a duplicate (the broker re-sent a batch, or pub/sub and a replay crossed),
  dropped.
- `seq` jumps: the frames in between were lost on the way (this process's Redis connection
  dropped, or a publisher announced out of order): read back from the history and delivered
  first. If the history no longer has them, every socket gets `hello` with `recovered: false`
  before the next frame, and refetches.
- another epoch: the numbering was reset (Redis restarted empty, a failover went back in time):
  `hello` with `recovered: false`, then the new epoch's frames.
After the broker's connection comes back, each hub reads the topic's position and catches up the
same way, so a frame published while the connection was down arrives late, not never.

Each socket also keeps its own `seq` (its cursor), so that a socket resuming from a position this
process has not reached yet (it saw it through another daphne) skips what it already has.
"""

import asyncio
import collections
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from autobahn.websocket.protocol import WebSocketProtocol
from django.conf import settings
from redis.exceptions import RedisError

from myproject import metrics
from myproject.realtime import daphne
from myproject.realtime.broker import Subscriptions, broker
from myproject.realtime.frames import Frame, with_position
from myproject.realtime.queries import LiveQuery, QueryIndex
from myproject.realtime.topics import CONTROL, Position

logger = logging.getLogger(__name__)

ATTACH_TIMEOUT = 5.0  # seconds a socket waits for its hub (the broker unreachable: 4503)
RING_BYTES = 8 * 1024 * 1024  # the most a hub's ring of recent frames holds, per topic
IDLE_HUB_TTL = 60.0  # seconds a hub without sockets is kept (a reconnecting crowd reuses it)
RETRY_DELAY = 0.5
CLOSE_REVOKED = 4401  # the socket's credential ended: reconnecting would not help
OPEN = WebSocketProtocol.STATE_OPEN


class Sink:
    """How a hub writes to one socket: straight to daphne's WebSocket protocol when it can
    (myproject.realtime.daphne), framing each frame once for all sockets; otherwise (a test's
    communicator, another ASGI server) through the consumer's own `send`."""

    __slots__ = ("__weakref__", "consumer", "protocol", "staff", "user_id")

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.protocol = consumer.scope.get(daphne.PROTOCOL)
        user = consumer.scope.get("user")
        authenticated = user is not None and user.is_authenticated
        self.user_id = str(user.pk) if authenticated else None
        self.staff = bool(authenticated and user.is_staff)

    def variant(self, frame: Frame) -> str:
        """Which text of a frame this socket may read: `public` for anyone but staff and the
        frame's subject (a user's own record), when the frame has one."""
        if frame.has_public and not self.staff and frame.subject != self.user_id:
            return "public"
        return "frame"

    def open(self) -> bool:
        protocol = self.protocol
        return protocol is None or protocol.state == protocol.STATE_OPEN

    async def send(self, text: str) -> None:
        metrics.WS_FRAMES_SENT.inc()
        if self.protocol is not None:
            self.write(frame_once(text, self.protocol.factory))
        else:
            with contextlib.suppress(Exception):  # closed meanwhile
                await self.consumer.send(text_data=text)

    def write(self, framed: bytes) -> None:
        """Write an already framed message to daphne's transport (see `Hubs.deliver`)."""
        protocol = self.protocol
        if protocol.state != OPEN:
            return
        if protocol.send_queue:
            protocol.sendData(framed)
        else:
            protocol.transport.write(framed)


def frame_once(text: str, factory: Any) -> bytes:
    """`text` as a WebSocket text frame on the wire (autobahn's framing, done once)."""
    return factory.prepareMessage(text.encode()).payloadHybi


class Listener:
    """A socket's attachment to a hub, with its own cursor (`seq`)."""

    __slots__ = ("__weakref__", "seq", "sink")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.seq = 0

    def greeting(self, topic: str, position: Position, recovered: bool | None) -> str:
        raise NotImplementedError

    def texts(self, frame: Frame) -> list[str]:
        """What this listener receives of `frame` (a replay: one listener at a time)."""
        raise NotImplementedError

    async def replay(self, frames: list[Frame]) -> None:
        """Send what this listener receives of `frames` (missed since its `since`), in order."""
        for frame in frames:
            for text in self.texts(frame):
                await self.sink.send(text)


class Member(Listener):
    """A socket of the topic itself: it receives every frame (`hello` greets it)."""

    __slots__ = ()

    def greeting(self, topic: str, position: Position, recovered: bool | None) -> str:
        return json.dumps({"type": "hello", "topic": topic, "epoch": position.epoch,
                           "seq": position.seq, "recovered": recovered})  # fmt: skip

    def texts(self, frame: Frame) -> list[str]:
        return [frame.text(self.sink.variant(frame))]

    async def replay(self, frames: list[Frame]) -> None:
        """A socket daphne serves directly gets its missed frames in one write, each framed once
        for every socket (`Frame.prepared`; the ring's frames are shared, and fan-out has
        framed them already): a crowd resuming after a restart costs a write per socket, not
        one per frame and socket (make bench: resume, 200 sockets x 1,000 frames)."""
        protocol = self.sink.protocol
        if protocol is None:
            await super().replay(frames)
            return
        sink = self.sink
        data = b"".join(
            frame.prepared(sink.variant(frame), protocol.factory).payloadHybi for frame in frames
        )
        metrics.WS_FRAMES_SENT.inc(len(frames))
        sink.write(data)


class Subscription(Listener):
    """A live query of the socket (myproject.realtime.queries): it receives, for each written
    row that its query sees, one frame saying what the row did (`subscribed` greets it)."""

    __slots__ = ("id", "query")

    def __init__(self, sink: Sink, id_: str, query: LiveQuery) -> None:
        super().__init__(sink)
        self.id = id_
        self.query = query

    def greeting(self, topic: str, position: Position, recovered: bool | None) -> str:
        return json.dumps({"type": "subscribed", "id": self.id, "topic": topic,
                           "epoch": position.epoch, "seq": position.seq,
                           "recovered": recovered})  # fmt: skip

    def texts(self, frame: Frame) -> list[str]:
        changes = frame.changes
        if not changes or changes["resource"] != self.query.resource.name:
            return []
        texts = []
        for before, after in changes["rows"]:
            action = self.query.action(before, after)
            if action is not None:
                texts.append(row_frame(frame, self, action, before, after))
        return texts


def row_frame(
    frame: Frame, subscription: Subscription, action: str, before: Any, after: Any
) -> str:
    """One row's frame for one subscription, as its reader may see the row."""
    resource = subscription.query.resource
    data = {"uuid": before["uuid"]} if action == "deleted" else after
    sink = subscription.sink
    if resource.public is not None and not sink.staff and data["uuid"] != sink.user_id:
        data = resource.public(data)
    body = {"type": f"{resource.name}.{action}", "subscription": subscription.id, "data": data}
    return with_position(body, frame)


class Hub:
    def __init__(self, topic: str, registry: "Hubs") -> None:
        self.topic = topic
        self.registry = registry
        self.epoch = ""
        self.seq = 0
        self.ring: collections.deque[Frame] = collections.deque()
        self.ring_bytes = 0
        self.members: dict[Listener, None] = {}  # insertion-ordered set
        self.queries = QueryIndex()  # the live queries of this topic's subscriptions
        self.inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.ready = asyncio.Event()
        self.idle_since: float | None = None
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"hub {topic}")

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.seq)

    # --- the sockets' side --------------------------------------------------------------

    async def attach(self, listener: Listener, since: Position | None) -> None:
        """Greet the listener (with the frames since `since`, if any) and add it; returns once
        that is done. TimeoutError if the hub cannot reach the broker in time."""
        done = asyncio.get_running_loop().create_future()
        self.idle_since = None
        self.inbox.put_nowait(("attach", listener, since, done))
        try:
            # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as
            # `done` completes, and the socket's consumer, cancelled by daphne's shutdown just
            # after its greeting, would live on instead of closing with 4503.
            async with asyncio.timeout(ATTACH_TIMEOUT):
                await asyncio.shield(done)
        except BaseException:  # timed out, or the socket's task was cancelled meanwhile
            done.cancel()  # the hub skips it when it gets there
            self.detach(listener)
            raise

    def detach(self, listener: Listener) -> None:
        if isinstance(listener, Subscription):
            self.queries.remove(listener.query, listener)
        else:
            self.members.pop(listener, None)
        if not self.members and not self.queries:
            self.idle_since = time.monotonic()

    def listeners(self) -> list[Listener]:
        return [*self.members, *self.queries.all_subscribers()]

    @property
    def idle(self) -> bool:
        return self.idle_since is not None and time.monotonic() - self.idle_since > IDLE_HUB_TTL

    # --- the broker's side ------------------------------------------------------------

    def frame_arrived(self, epoch: str, seq: int, payload: str) -> None:
        self.inbox.put_nowait(("frame", epoch, seq, payload))

    def resync(self) -> None:
        self.inbox.put_nowait(("resync",))

    # --- the hub's task ---------------------------------------------------------------

    async def _run(self) -> None:
        await self._start()
        while True:
            item = await self.inbox.get()
            try:
                await self._handle(item)
            except (RedisError, OSError) as exc:
                # The broker is unreachable mid-way: try again shortly. A resync catches up
                # whatever this frame (or the one before) would have delivered.
                logger.warning("realtime hub %s: broker unreachable: %s", self.topic, exc)
                await asyncio.sleep(RETRY_DELAY)
                self.inbox.put_nowait(item if item[0] == "attach" else ("resync",))
            except Exception:
                logger.exception("realtime hub %s failed on %s", self.topic, item[0])
                if item[0] == "attach" and not item[3].done():
                    item[3].set_exception(RuntimeError("attach failed"))

    async def _start(self) -> None:
        """Subscribe first, then read the position: a frame published in between is both in
        the position and on the subscription, and the duplicate is dropped."""
        while True:
            self.registry.subscriptions.want(self.topic)
            if await self.registry.subscriptions.wait(self.topic, timeout=ATTACH_TIMEOUT):
                try:
                    position = await broker().aposition(self.topic)
                except (RedisError, OSError) as exc:
                    logger.warning("realtime hub %s: no position yet: %s", self.topic, exc)
                else:
                    self.epoch, self.seq = position.epoch, position.seq
                    self.ready.set()
                    return
            await asyncio.sleep(RETRY_DELAY)

    async def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "frame":
            await self._arrived(item[1], item[2], item[3])
        elif kind == "attach":
            _, listener, since, done = item
            if not done.done():
                await self._attach(listener, since)
                done.set_result(None)
        elif kind == "resync":
            await self._resync()

    async def _arrived(self, epoch: str, seq: int, payload: str) -> None:
        if epoch != self.epoch:
            current = await broker().aposition(self.topic)
            if current.epoch != epoch:
                return  # a straggler of a past epoch
            await self._announce(Position(epoch, seq - 1))
        if seq <= self.seq:
            return  # a duplicate
        if seq > self.seq + 1:
            await self._catch_up(until=seq - 1)
        await self._deliver(Frame(self.topic, epoch, seq, payload))

    async def _catch_up(self, until: int | None = None) -> None:
        """Deliver the frames after `seq` (up to `until`) from the history, or announce that
        they are lost."""
        current, entries = await broker().history(self.topic, self.epoch, self.seq, until)
        if entries is None:
            if not current.epoch:
                # Redis lost the topic (it restarted empty): the topic starts its new epoch now.
                current = await broker().aposition(self.topic)
            if current.epoch == self.epoch and current.seq < self.seq:
                # The numbering went back (a failover to a replica that had not received the
                # last frames): the positions clients hold are ambiguous now, so start afresh.
                current = await broker().new_epoch(self.topic, stale=self.epoch)
            target = (
                current
                if until is None or current.epoch != self.epoch
                else Position(self.epoch, until)
            )
            await self._announce(target)
            return
        for entry in entries:
            await self._deliver(Frame(self.topic, self.epoch, entry.seq, entry.payload))

    async def _resync(self) -> None:
        if not self.ready.is_set():
            return
        if await self._diverged():
            await self._announce(await broker().new_epoch(self.topic, stale=self.epoch))
            return
        await self._catch_up()

    async def _diverged(self) -> bool:
        """After a reconnection: whether the broker now holds another frame at this hub's
        position than the one the hub delivered there. A Redis failover to a replica that had
        not received the last frames numbers the next ones from where the replica was, reusing
        seqs the hub has delivered: without this check their frames would pass for duplicates
        and be skipped silently. (A failover that went back without new frames yet is the
        `current.seq < self.seq` case of `_catch_up`.)"""
        if not self.ring or self.ring[-1].seq != self.seq:
            return False  # nothing delivered since the hub started or announced
        current, entries = await broker().history(self.topic, self.epoch, self.seq - 1, self.seq)
        if current.epoch != self.epoch or current.seq < self.seq or not entries:
            return False  # another epoch, numbering gone back, or expired: `_catch_up` says so
        return entries[0].payload != self.ring[-1].payload

    async def _announce(self, position: Position) -> None:
        """Tell every socket its view may have a gap, and continue from `position`."""
        logger.warning(
            "realtime hub %s: %s -> %s not recoverable; announcing", self.topic,
            self.position, position,
        )  # fmt: skip
        metrics.ANNOUNCED_GAPS.inc()
        self.epoch, self.seq = position.epoch, position.seq
        self._forget_ring()
        if self.topic == CONTROL:
            self.registry.revocations_lost()
        for listener in self.listeners():
            listener.seq = position.seq
            await listener.sink.send(listener.greeting(self.topic, position, False))

    async def _deliver(self, frame: Frame) -> None:
        self.seq = frame.seq
        self._remember(frame)
        await self.registry.deliver(self, frame)

    async def _attach(self, listener: Listener, since: Position | None) -> None:
        current = self.position
        replay: list[Frame] = []
        recovered: bool | None = None
        listener.seq = current.seq
        if since is not None:
            recovered = False
            if since.epoch == current.epoch and since.seq <= current.seq:
                found = await self._frames_after(since.seq)
                if found is not None:
                    recovered, replay, listener.seq = True, found, since.seq
            elif since.epoch == current.epoch:
                # Ahead of this process (seen through another daphne): fine if the broker
                # agrees, and the frames up to `since` are not sent again.
                truth = await broker().aposition(self.topic)
                if truth.epoch == since.epoch and truth.seq >= since.seq:
                    recovered, listener.seq = True, since.seq
        greeted = Position(current.epoch, listener.seq if recovered else current.seq)
        await listener.sink.send(listener.greeting(self.topic, greeted, recovered))
        if replay:
            await listener.replay(replay)
        listener.seq = max(listener.seq, current.seq)
        if isinstance(listener, Subscription):
            listener.query = self.queries.add(listener.query, listener)
        else:
            self.members[listener] = None
        self.registry.count_resume(recovered)

    async def _frames_after(self, after: int) -> list[Frame] | None:
        """The frames after `after` up to the hub's position: from the ring, else the broker."""
        if after == self.seq:
            return []
        if self.ring and self.ring[0].seq <= after + 1:
            return [frame for frame in self.ring if frame.seq > after]
        _, entries = await broker().history(self.topic, self.epoch, after, self.seq)
        if entries is None:
            return None
        return [Frame(self.topic, self.epoch, entry.seq, entry.payload) for entry in entries]

    def _remember(self, frame: Frame) -> None:
        if self.ring and self.ring[-1].seq != frame.seq - 1:
            self._forget_ring()
        self.ring.append(frame)
        self.ring_bytes += frame.size
        while self.ring and (
            len(self.ring) > settings.WS_HISTORY_SIZE or self.ring_bytes > RING_BYTES
        ):
            self.ring_bytes -= self.ring.popleft().size

    def _forget_ring(self) -> None:
        self.ring.clear()
        self.ring_bytes = 0


class Hubs:
    """The hubs of one event loop (a daphne process), and their one broker subscription.

    They also close sockets when what opened them ends: the control topic's frames name groups
    of sockets (a user's, a credential's) that must close with 4401. A socket joins its groups
    with `watch`. If control frames may have been lost (a gap the history could not fill),
    `on_revocations_lost` checks every socket's credential at once."""

    def __init__(self) -> None:
        self.hubs: dict[str, Hub] = {}
        self.subscriptions = Subscriptions()
        self.listener: asyncio.Task | None = None
        self.groups: dict[str, weakref.WeakSet[Any]] = {}  # revocation group -> consumers
        self.on_revocations_lost: Callable[[], Awaitable[None]] | None = None

    def watch(self, consumer: Any, groups: Iterable[str]) -> None:
        """Close `consumer` (4401) when any of `groups` is revoked."""
        self.get(CONTROL)
        for group in groups:
            self.groups.setdefault(group, weakref.WeakSet()).add(consumer)

    def unwatch(self, consumer: Any, groups: Iterable[str]) -> None:
        for group in groups:
            members = self.groups.get(group)
            if members is not None:
                members.discard(consumer)
                if not members:
                    del self.groups[group]

    async def revoke(self, frame: Frame) -> None:
        for group in frame.entry["frame"].get("groups", ()):
            for consumer in list(self.groups.pop(group, ())):
                with contextlib.suppress(Exception):
                    await consumer.close(code=CLOSE_REVOKED)

    def revocations_lost(self) -> None:
        if self.on_revocations_lost is not None:
            asyncio.get_running_loop().create_task(self.on_revocations_lost())

    def get(self, topic: str) -> Hub:
        hub = self.hubs.get(topic)
        if hub is None:
            self._drop_idle()
            hub = self.hubs[topic] = Hub(topic, self)
        if self.listener is None or self.listener.done():
            self.listener = asyncio.get_running_loop().create_task(
                broker().listen(self.topics, self._frame, self._connected, self.subscriptions),
                name="realtime listener",
            )
        return hub

    def topics(self) -> Iterable[str]:
        return list(self.hubs)

    def _frame(self, topic: str, epoch: str, seq: int, payload: str) -> None:
        hub = self.hubs.get(topic)
        if hub is not None:
            hub.frame_arrived(epoch, seq, payload)

    async def _connected(self) -> None:
        for hub in self.hubs.values():
            hub.resync()

    def _drop_idle(self) -> None:
        for topic, hub in list(self.hubs.items()):
            if hub.idle and topic != CONTROL:
                hub.task.cancel()
                del self.hubs[topic]
                self.subscriptions.unwant(topic)

    def count_resume(self, recovered: bool | None) -> None:
        if recovered is not None:
            metrics.WS_RESUMES.labels(recovered="true" if recovered else "false").inc()

    async def deliver(self, hub: Hub, frame: Frame) -> None:
        if hub.topic == CONTROL:
            await self.revoke(frame)
            return
        await self.fan_out(hub, frame)

    async def fan_out(self, hub: Hub, frame: Frame) -> None:
        """Send `frame` to the hub's members. A socket daphne serves directly gets the frame's
        bytes, framed once for all (`prepareMessage`), written straight to its transport:
        autobahn's `sendData` would build a debug log line per call, whatever the log level,
        and that was most of the cost per socket (make bench: fan-out). Its own queue, used only
        for chopped writes, is respected. Other sockets go through the consumer's `send`."""
        seq = frame.seq
        public = frame.has_public
        wire: dict[str, bytes] = {}
        slow: list[Listener] = []
        sent = 0
        for member in list(hub.members):
            if member.seq >= seq:
                continue
            member.seq = seq
            sink = member.sink
            protocol = sink.protocol
            if protocol is None:
                slow.append(member)
                continue
            if protocol.state != OPEN:
                continue
            variant = sink.variant(frame) if public else "frame"
            data = wire.get(variant)
            if data is None:
                data = wire[variant] = frame.prepared(variant, protocol.factory).payloadHybi
            if protocol.send_queue:
                protocol.sendData(data)
            else:
                protocol.transport.write(data)
            sent += 1
        metrics.WS_FRAMES_SENT.inc(sent)
        for member in slow:
            await member.sink.send(frame.text(member.sink.variant(frame)))
        changes = frame.changes
        if changes and hub.queries:
            await self._deliver_rows(hub, frame, changes)

    async def _deliver_rows(self, hub: Hub, frame: Frame, changes: dict[str, Any]) -> None:
        """Per-row frames for the subscriptions whose query sees the written rows: each query
        is tested once per row whatever the number of its subscribers, and each text is built
        and framed once per subscription id and kind of reader."""
        resource = changes["resource"]
        for key, seen in hub.queries.matches(resource, changes["rows"]).items():
            texts: dict[tuple, str] = {}
            wire: dict[tuple, bytes] = {}
            for subscription in list(hub.queries.subscribers.get(key, ())):
                if subscription.seq >= frame.seq:
                    continue
                subscription.seq = frame.seq
                sink = subscription.sink
                for number, (action, before, after) in enumerate(seen):
                    uuid = (after or before)["uuid"]
                    reader = sink.staff or uuid == sink.user_id
                    cache = (number, subscription.id, reader)
                    text = texts.get(cache)
                    if text is None:
                        text = texts[cache] = row_frame(frame, subscription, action, before, after)
                    if sink.protocol is None:
                        await sink.send(text)
                        continue
                    framed = wire.get(cache)
                    if framed is None:
                        framed = wire[cache] = frame_once(text, sink.protocol.factory)
                    sink.write(framed)
                    metrics.WS_FRAMES_SENT.inc()


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hubs] = (
    weakref.WeakKeyDictionary()
)


def hubs() -> Hubs:
    """The running event loop's hubs (daphne runs one loop; tests run one per test)."""
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = Hubs()
    return registry
