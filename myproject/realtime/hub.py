"""
One topic in one daphne process: a `Hub` keeps the topic's position as this process has
delivered it (`epoch`, `seq`) and a ring of its latest frames, and delivers each frame to its
listeners (myproject.realtime.listeners) in order, exactly once, or tells them it cannot.

    await hub.attach(member, since=Position.parse("Xk2…:40"))
        # -> hello (recovered: true), frames 41… as the socket takes them, then every later one
    hub.detach(member)

Frames arrive from the broker (myproject.realtime.hubs) and are handled by the hub's own task,
one at a time, in order. Continuity, frame by frame:
- `seq` is the next one: delivered (myproject.realtime.fanout).
- `seq` is not new: a duplicate (pub/sub and a read-back crossed), dropped.
- `seq` jumps: the frames in between were lost on the way (this process's Redis connection
  dropped): read back from the history and delivered first. If the history no longer has
  them, every listener gets its greeting again with `recovered: false` before the next frame.
- another epoch: the numbering was reset (Redis restarted empty, a failover went back in
  time): `recovered: false`, then the new epoch's frames, from its first one if the history
  still has it. (A hub that had delivered nothing of the old epoch just moves on.)
After the broker's connection comes back, the hub reads the topic's position and catches up the
same way, so a frame published while the connection was down arrives late, not never.

A listener joins in two steps. `attach` greets it with the position it starts from (`since`,
if the history still holds what came after it, else now) and registers it as catching up; a
catch-up task of its own then sends what it missed, from the ring or the history, as its socket
drains (`Sink.room`), and makes it live once it has everything: from then on the fan-out sends
it each frame. Both steps check the listener's cursor against the hub's in one step of the event
loop, so a frame delivered meanwhile is neither missed nor sent twice, and a listener detached
meanwhile (its socket closed, an attach timed out) is never added afterwards. A live query's
catch-up tests at most REPLAY_ROWS rows (beyond that it is told `recovered: false`), one live
query's at a time, yielding to the event loop as it goes (myproject.realtime.pacing): replays
never hold the process up.
"""

import asyncio
import collections
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from redis.exceptions import RedisError

from myproject import metrics
from myproject.realtime import fanout
from myproject.realtime.broker import broker
from myproject.realtime.frames import Frame
from myproject.realtime.listeners import Follower, Listener, Member
from myproject.realtime.pacing import Pacer, one_at_a_time
from myproject.realtime.queries import QueryIndex
from myproject.realtime.sink import frame_once
from myproject.realtime.topics import CONTROL, Position

if TYPE_CHECKING:
    from myproject.realtime.hubs import Hubs

logger = logging.getLogger(__name__)

ATTACH_TIMEOUT = 5.0  # seconds a socket waits for its hub (the broker unreachable: 4503)
RING_BYTES = 8 * 1024 * 1024  # the most a hub's ring of recent frames holds, per topic
IDLE_HUB_TTL = 60.0  # seconds a hub without listeners is kept (a reconnecting crowd reuses it)
RETRY_DELAY = 0.5
REPLAY_CHUNK = 100  # frames a catch-up reads from the history at a time
REPLAY_ROWS = 100_000  # rows a live query's catch-up may test before it gives up
FETCHED_BYTES = 8 * 1024 * 1024  # frames read back from the history, shared by catch-ups


class Hub:
    def __init__(self, topic: str, registry: "Hubs") -> None:
        self.topic = topic
        self.registry = registry
        self.epoch = ""
        self.seq = 0
        self.ring: collections.deque[Frame] = collections.deque()
        self.ring_bytes = 0
        self.members: dict[Member, None] = {}  # live members (an insertion-ordered set)
        self.queries = QueryIndex()  # live followers, by query
        self.catching_up: dict[Listener, asyncio.Task | None] = {}
        self.fetched = _Fetched()
        self.inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self.ready = asyncio.Event()
        self.idle_since: float | None = None
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"hub {topic}")

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.seq)

    def listeners(self) -> list[Listener]:
        return [*self.members, *self.queries.all_subscribers(), *self.catching_up]

    @property
    def idle(self) -> bool:
        return self.idle_since is not None and time.monotonic() - self.idle_since > IDLE_HUB_TTL

    # --- the sockets' side --------------------------------------------------------------

    async def attach(self, listener: Listener, since: Position | None) -> None:
        """Greet the listener and deliver the topic to it from `since` (or from now) on; see
        the module docstring. TimeoutError if the broker cannot be reached in time."""
        self.idle_since = None
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as the
        # wait completes (a socket cancelled by daphne's shutdown must close with 4503).
        async with asyncio.timeout(ATTACH_TIMEOUT):
            await self.ready.wait()
            recovered, start = await self._resume_point(since)
        # From here until the greeting is written, in one step: no frame comes in between.
        listener.seq = start
        self.catching_up[listener] = None
        greeting = listener.greeting(self.topic, Position(self.epoch, start), recovered)
        await listener.sink.send(greeting)
        if recovered is not None:
            metrics.WS_RESUMES.labels(recovered="true" if recovered else "false").inc()
        self._catch_up_or_go_live(listener)

    def detach(self, listener: Listener) -> None:
        task = self.catching_up.pop(listener, None)
        if task is not None:
            task.cancel()
        if isinstance(listener, Follower):
            self.queries.remove(listener.query, listener)
        else:
            self.members.pop(listener, None)
        if not self.members and not self.queries and not self.catching_up:
            self.idle_since = time.monotonic()

    async def _resume_point(self, since: Position | None) -> tuple[bool | None, int]:
        """Whether a listener resuming from `since` recovers, and the seq it starts after."""
        if since is None:
            return None, self.seq
        if since.epoch == self.epoch and since.seq <= self.seq:
            if since.seq == self.seq or (self.ring and self.ring[0].seq <= since.seq + 1):
                return True, since.seq
            # The first missed frame still in the history means every later one is.
            _, entries = await broker().history(self.topic, since.epoch, since.seq, since.seq + 1)
            if entries and since.epoch == self.epoch:
                return True, since.seq
        elif since.epoch == self.epoch:
            # Ahead of this process (seen through another daphne): fine if the broker agrees,
            # and the frames up to `since` are not sent again.
            truth = await broker().aposition(self.topic)
            if truth.epoch == since.epoch == self.epoch and truth.seq >= since.seq:
                return True, since.seq
        return False, self.seq

    def _catch_up_or_go_live(self, listener: Listener) -> None:
        if listener not in self.catching_up:
            return  # detached meanwhile
        if isinstance(listener, Member) and listener.muted:
            del self.catching_up[listener]  # greeted: it hears nothing more of the topic
            return
        if listener.seq < self.seq:
            task = asyncio.get_running_loop().create_task(self._catch_up_listener(listener))
            self.catching_up[listener] = task
            return
        del self.catching_up[listener]
        if isinstance(listener, Follower):
            listener.query = self.queries.add(listener.query, listener)
        else:
            self.members[listener] = None

    async def _catch_up_listener(self, listener: Listener) -> None:
        """Send the listener what it missed as its socket drains, then make it live."""
        sink, budget = listener.sink, REPLAY_ROWS
        while True:
            await sink.room()
            if sink.closed or listener not in self.catching_up:
                return
            if listener.seq >= self.seq:
                self.catching_up[listener] = None
                self._catch_up_or_go_live(listener)
                return
            after, epoch = listener.seq, self.epoch
            try:
                frames = await self._frames_after(after)
            except (RedisError, OSError) as exc:
                logger.warning("realtime hub %s: catch-up paused: %s", self.topic, exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            if listener.seq != after or self.epoch != epoch:
                continue  # announced meanwhile: the listener was told, and moved on
            if frames:
                budget -= sum(listener.cost(frame) for frame in frames)
            if frames is None or budget < 0:
                # Gone from the history (a busy topic, a slow socket), or too much to replay.
                listener.seq = self.seq
                await sink.send(listener.greeting(self.topic, self.position, False))
                continue
            if isinstance(listener, Follower):  # a query tested on every row: one at a time
                async with one_at_a_time():
                    await self._replay(listener, frames)
            else:
                await self._replay(listener, frames)

    async def _replay(self, listener: Listener, frames: list[Frame]) -> None:
        sink = listener.sink
        if isinstance(listener, Member) and sink.protocol is not None:
            # One write for the chunk, each frame framed once for every socket.
            sink.write(b"".join(listener.wire(frame) for frame in frames))
            metrics.WS_FRAMES_SENT.inc(len(frames))
            listener.seq = frames[-1].seq
            return
        pacer = Pacer()
        for frame in frames:
            seq = listener.seq
            for text in listener.texts(frame):
                if text is None:
                    pass
                elif sink.protocol is not None:
                    sink.write(frame_once(text, sink.protocol.factory))
                    metrics.WS_FRAMES_SENT.inc()
                else:
                    await sink.send(text)
                await pacer.pace()
                if listener.seq != seq or listener not in self.catching_up:
                    return  # announced or detached meanwhile
            listener.seq = frame.seq
            if sink.paused or sink.closed:
                return

    async def _frames_after(self, after: int) -> list[Frame] | None:
        """Frames after `after` (a chunk): from the ring, else from the history (shared by the
        catch-ups that need the same ones); None if the history no longer has them."""
        if self.ring and self.ring[0].seq <= after + 1:
            return [frame for frame in self.ring if frame.seq > after][:REPLAY_CHUNK]
        until = min(self.seq, after + REPLAY_CHUNK)
        if self.ring:
            until = min(until, self.ring[0].seq - 1)
        return await self.fetched.get(self.topic, self.epoch, after, until)

    # --- the broker's side ------------------------------------------------------------

    def frame_arrived(self, epoch: str, seq: int, payload: str) -> None:
        self.inbox.put_nowait(("frame", epoch, seq, payload))

    def resync(self) -> None:
        self.inbox.put_nowait(("resync",))

    async def _run(self) -> None:
        await self._start()
        while True:
            item = await self.inbox.get()
            try:
                if item[0] == "frame":
                    await self._arrived(*item[1:])
                else:
                    await self._resync()
            except (RedisError, OSError) as exc:
                # The broker is unreachable mid-way: try again shortly. A resync catches up
                # whatever this frame (or the one before) would have delivered.
                logger.warning("realtime hub %s: broker unreachable: %s", self.topic, exc)
                await asyncio.sleep(RETRY_DELAY)
                self.resync()
            except Exception:
                logger.exception("realtime hub %s failed on %s", self.topic, item[0])

    async def _start(self) -> None:
        """Subscribe first, then read the position: a frame published in between is both in
        the position and on the subscription, and the duplicate is dropped."""
        listening = self.registry.listening
        while True:
            listening.want(self.topic)
            if await listening.wait(self.topic, timeout=ATTACH_TIMEOUT):
                try:
                    position = await broker().aposition(self.topic)
                except (RedisError, OSError) as exc:
                    logger.warning("realtime hub %s: no position yet: %s", self.topic, exc)
                else:
                    self.epoch, self.seq = position.epoch, position.seq
                    self.ready.set()
                    return
            await asyncio.sleep(RETRY_DELAY)

    async def _arrived(self, epoch: str, seq: int, payload: str) -> None:
        if epoch != self.epoch:
            current = await broker().aposition(self.topic)
            if current.epoch != epoch:
                return  # a straggler of a past epoch
            await self._change_epoch(epoch)
        if seq <= self.seq:
            return  # a duplicate
        if seq > self.seq + 1:
            await self._catch_up(until=seq - 1)
            if seq <= self.seq or epoch != self.epoch:
                return  # the catch-up announced a position past it
        await self._deliver(Frame(self.topic, epoch, seq, payload))

    async def _change_epoch(self, epoch: str) -> None:
        """Move to `epoch`, from its first frame: silently if this hub had delivered nothing
        of its own epoch (nothing of it can be missing), else announced."""
        if self.seq == 0:
            self.epoch = epoch
            self._forget_ring()
            self.fetched.clear()
        else:
            await self._announce(Position(epoch, 0))

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
            if current.epoch != self.epoch:
                # A new epoch: from its first frame, if the history still holds it.
                _, first = await broker().history(self.topic, current.epoch, 0, 1)
                if first or current.seq == 0:
                    await self._change_epoch(current.epoch)
                    await self._catch_up(until)
                    return
                await self._announce(current)
                return
            await self._announce(Position(self.epoch, until if until is not None else current.seq))
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
        """Tell every listener its view may have a gap, and continue from `position`."""
        logger.warning(
            "realtime hub %s: %s -> %s not recoverable; announcing", self.topic,
            self.position, position,
        )  # fmt: skip
        metrics.ANNOUNCED_GAPS.inc()
        self.epoch, self.seq = position.epoch, position.seq
        self._forget_ring()
        self.fetched.clear()
        if self.topic == CONTROL:
            self.registry.revocations.lost()
        for listener in self.listeners():
            listener.seq = position.seq
            await listener.sink.send(listener.greeting(self.topic, position, False))

    async def _deliver(self, frame: Frame) -> None:
        self.seq = frame.seq
        self._remember(frame)
        if self.topic == CONTROL:
            await self.registry.revocations.revoke(frame)
            return
        await fanout.deliver(self, frame)

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


class _Fetched:
    """Frames read back from the history for catch-ups, kept a while (up to FETCHED_BYTES) and
    read once for all: a crowd resuming together (after a restart, the ring is empty) reads
    each chunk once, and each frame is framed once for all of it."""

    def __init__(self) -> None:
        self.frames: collections.OrderedDict[int, Frame] = collections.OrderedDict()
        self.bytes = 0
        self.reading: dict[tuple[str, int, int], asyncio.Future] = {}

    async def get(self, topic: str, epoch: str, after: int, until: int) -> list[Frame] | None:
        found = []
        for seq in range(after + 1, until + 1):
            frame = self.frames.get(seq)
            if frame is None or frame.epoch != epoch:
                break
            found.append(frame)
        if len(found) == until - after:
            return found
        key = (epoch, after + len(found), until)
        reading = self.reading.get(key)
        if reading is None:
            reading = self.reading[key] = asyncio.get_running_loop().create_future()
            try:
                _, entries = await broker().history(topic, epoch, key[1], until)
            except BaseException as exc:
                reading.set_exception(exc)
                with contextlib.suppress(BaseException):
                    reading.exception()  # retrieved: no "never retrieved" warning
                raise
            finally:
                self.reading.pop(key, None)
            frames = [Frame(topic, epoch, e.seq, e.payload) for e in entries or ()]
            reading.set_result(frames if entries is not None else None)
            self._keep(frames)
        more = await asyncio.shield(reading)
        return None if more is None else found + more

    def _keep(self, frames: list[Frame]) -> None:
        for frame in frames:
            if frame.seq not in self.frames:
                self.frames[frame.seq] = frame
                self.bytes += frame.size
        while self.frames and self.bytes > FETCHED_BYTES:
            self.bytes -= self.frames.popitem(last=False)[1].size

    def clear(self) -> None:
        self.frames.clear()
        self.bytes = 0
