"""
Where frames are numbered and kept: the one source of truth for positions and history.

Publishing a frame to a topic assigns it the next `seq` of the topic's current epoch, stores it
in the topic's history and announces it to the listening daphne processes, in one atomic step:

- `RedisBroker` (production, `REDIS_URL` or Sentinel): one Lua script per publish holds the
  epoch and counter in a hash, appends the frame to a stream whose entry id is its seq (trimmed
  to `DJANGO_WS_HISTORY_SIZE` entries, expiring `DJANGO_WS_HISTORY_TTL` seconds after the
  topic's last frame) and PUBLISHes it. Pub/sub is only the fast path: a listener that missed a
  message (its connection dropped) reads the gap back from the stream. Behind Sentinel, a frame
  is announced only once a replica has it (WAIT), so a failover cannot take back a frame that a
  client has seen.
- `LocalBroker` (the embedded default, no Redis): the same, in an SQLite file beside the code
  (`var/realtime.sqlite3`), which every process on the machine shares, listened to by polling;
  so `manage.py` in a second terminal reaches the sockets of `make run`.

A topic gets a new epoch when its numbering cannot be trusted any more: Redis lost it (a restart
without persistence, the topic's keys expired), or a failover went back in time. Whoever sees a
new epoch must tell its clients that what they had may be incomplete (the hub's `hello` with
`recovered: false`).

    broker().publish([("catalog", payload)])          # -> [Position("Xk2…", 42)]
    await broker().history("catalog", "Xk2…", after=40) # -> (Position, [Entry(41, …), …])

A payload is the JSON text of the frame without its position (the hub appends `topic`, `epoch`,
`seq`), with what the hub needs beside it (myproject.realtime.frames).
"""

import asyncio
import contextlib
import hashlib
import itertools
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import redis
import redis.asyncio
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.exceptions import NoScriptError, RedisError

from myproject import metrics, redis_clients
from myproject.realtime.topics import Position

logger = logging.getLogger(__name__)

# A topic's epoch and counter outlive its history by far: positions stay comparable across
# quiet nights, and a topic idle for a week simply starts a new epoch.
META_TTL = 7 * 24 * 3600


class Entry(NamedTuple):
    seq: int
    payload: str


# (topic, epoch, seq, payload) as a listener hears it.
OnFrame = Callable[[str, str, int, str], None]


class Broker(Protocol):
    def publish(
        self, items: Sequence[tuple[str, str]], gtids: Sequence[str | None] = ()
    ) -> list[Position]:
        """Number, keep and announce each `(topic, payload)`, in order (blocking); `gtids`, one
        per item where known, are the database writes the frames announce (myproject.replicas).
        """

    async def apublish(self, topic: str, payload: str) -> Position: ...

    def position(self, topic: str) -> Position:
        """The topic's current position (an epoch is created for a topic that has none)."""

    async def aposition(self, topic: str) -> Position: ...

    async def history(
        self, topic: str, epoch: str, after: int, until: int | None = None
    ) -> tuple[Position, list[Entry] | None]:
        """The frames of `epoch` after `after` (up to `until`), with the current position; None
        instead of frames when the history no longer holds all of them (or epoch differs)."""

    async def new_epoch(self, topic: str, stale: str) -> Position:
        """Start a new epoch if the topic is still in `stale` (numbering gone back in time)."""

    async def listen(
        self,
        topics: Callable[[], Iterable[str]],
        on_frame: OnFrame,
        on_connected: Callable[[], Awaitable[None]],
        subscribed: "Subscriptions",
    ) -> None:
        """Hear every frame of `topics()` until cancelled; `on_connected` runs after each
        (re)connection, once subscribed, so listeners can read back what they missed."""


def new_epoch_name() -> str:
    return secrets.token_urlsafe(8)  # 11 characters of [A-Za-z0-9_-]


class Subscriptions:
    """Which topics the listening connection has subscribed to, so a hub can wait for its
    subscription before reading the position (nothing published in between is missed)."""

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.changed = asyncio.Event()
        # ("+" or "-", topic): subscriptions to add or drop on the listening connection.
        self.changes: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def want(self, topic: str) -> None:
        if topic not in self.active:
            self.changes.put_nowait(("+", topic))

    def unwant(self, topic: str) -> None:
        self.active.discard(topic)
        self.changes.put_nowait(("-", topic))

    def confirm(self, topics: Iterable[str]) -> None:
        self.active.update(topics)
        self.changed.set()
        self.changed = asyncio.Event()

    def reset(self) -> None:
        self.active.clear()

    async def wait(self, topic: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while topic not in self.active:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):  # not wait_for: see Hub.attach
                    await self.changed.wait()
        return True


# --- Redis -------------------------------------------------------------------------------------

# KEYS: meta hash, stream. ARGV: payload, epoch candidate, size, ttl ms, meta ttl ms, channel,
# announce (1: PUBLISH now; 0: the caller publishes once a replica has the frame), the GTID of
# the frame's database write ('' if none).
# Every script that may find a topic without an epoch starts it here: a new epoch at 0, with no
# history (a stream left over from a lost epoch would be another numbering).
START_EPOCH = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[{candidate}]
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
  redis.call('DEL', KEYS[2])
end
"""

PUBLISH = (
    START_EPOCH.format(candidate=2)
    + """
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', 'p', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
-- With database replicas, field g covers the writes of every frame so far: the highest GTID
-- of each replication domain ("domain-server-seq", comma-separated), as myproject.replicas.merge
-- computes it. A REST read waits for the replica to apply g before it reads (X-Stream-Position).
if ARGV[8] ~= '' then
  local best, order = {}, {}
  for gtid in string.gmatch((redis.call('HGET', KEYS[1], 'g') or '') .. ',' .. ARGV[8], '[^,]+') do
    local domain, number = string.match(gtid, '^(%d+)-%d+-(%d+)$')
    if domain then
      if not best[domain] then
        table.insert(order, domain)
        best[domain] = gtid
      elseif tonumber(number) > tonumber(string.match(best[domain], '(%d+)$')) then
        best[domain] = gtid
      end
    end
  end
  local merged = {}
  for _, domain in ipairs(order) do table.insert(merged, best[domain]) end
  redis.call('HSET', KEYS[1], 'g', table.concat(merged, ','))
end
local message = epoch .. ' ' .. seq .. ' ' .. ARGV[1]
if ARGV[7] == '1' then
  redis.call('PUBLISH', ARGV[6], message)
end
return {epoch, seq}
"""
)

# KEYS: meta hash, stream. ARGV: epoch candidate, meta ttl ms.
POSITION = (
    START_EPOCH.format(candidate=1)
    + """
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {epoch, tonumber(redis.call('HGET', KEYS[1], 's')), redis.call('HGET', KEYS[1], 'g') or ''}
"""
)

# KEYS: meta hash, stream. ARGV: epoch, after, until (-1: the end).
HISTORY = """
local epoch = redis.call('HGET', KEYS[1], 'e')
local top = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
if epoch ~= ARGV[1] then
  return {epoch or '', top, false}
end
local after, last = tonumber(ARGV[2]), tonumber(ARGV[3])
if last < 0 or last > top then last = top end
if after >= last then
  return {epoch, top, {}}
end
return {epoch, top, redis.call('XRANGE', KEYS[2], (after + 1) .. '-0', last .. '-0')}
"""

# KEYS: meta hash, stream. ARGV: stale epoch, new epoch, meta ttl ms.
NEW_EPOCH = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if epoch == false or epoch == ARGV[1] then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0)
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return {epoch, tonumber(redis.call('HGET', KEYS[1], 's'))}
"""

PREFIX = "myproject:rt:"
UNACKNOWLEDGED_LOG = 10.0  # seconds between two reports of frames no replica acknowledged


def _keys(topic: str) -> list[str]:
    # One hash tag per topic: both keys on one slot, should the keys ever be sharded.
    return [f"{PREFIX}{{{topic}}}:meta", f"{PREFIX}{{{topic}}}:stream"]


def channel(topic: str) -> str:
    """A topic's pub/sub channel. Redis's channels belong to the server, not to a database:
    without the database's number, deployments (or test runs) on other databases of the same
    server would hear each other's frames."""
    return f"{PREFIX}{settings.REDIS_DB}:{topic}"


def _topic_of(channel_name: str) -> str:
    return channel_name.removeprefix(channel(""))


def _position(reply: Sequence[object]) -> Position:
    epoch = reply[0]
    return Position(epoch.decode() if isinstance(epoch, bytes) else str(epoch), int(reply[1]))


def _position_with_gtid(reply: Sequence[object]) -> Position:
    """POSITION's reply: the position, with the GTID that covers its frames' writes."""
    position = _position(reply)
    gtid = reply[2].decode() if isinstance(reply[2], bytes) else str(reply[2])
    return Position(position.epoch, position.seq, gtid=gtid or None)


class RedisBroker:
    def __init__(self) -> None:
        self.size = settings.WS_HISTORY_SIZE
        self.ttl_ms = settings.WS_HISTORY_TTL * 1000
        # Behind Sentinel, announce a frame only once a replica holds it (see the docstring).
        self.replicas = settings.REDIS_WAIT_REPLICAS
        self._scripts: dict[str, object] = {}
        self._unacknowledged = 0
        self._next_unacknowledged_log = 0.0

    def _script(self, client: redis.Redis | redis.asyncio.Redis, source: str) -> object:
        # register_script caches the SHA and falls back to EVAL after a Redis restart.
        key = f"{id(client)}:{hash(source)}"
        script = self._scripts.get(key)
        if script is None:
            script = self._scripts[key] = client.register_script(source)
        return script

    def _publish_args(
        self, payload: str, topic: str, announce: bool, gtid: str | None = None
    ) -> list[object]:
        return [
            payload, new_epoch_name(), self.size, self.ttl_ms, META_TTL * 1000,
            channel(topic), "1" if announce else "0", gtid or "",
        ]  # fmt: skip

    def publish(
        self, items: Sequence[tuple[str, str]], gtids: Sequence[str | None] = ()
    ) -> list[Position]:
        """One round trip per batch: EVALSHA straight in the pipeline. (A registered script run
        in a pipeline costs a SCRIPT EXISTS round trip first, every time: a third of the
        publisher's CPU per frame, which it spends in the same process as the request that
        wrote; make bench: writes.) After a Redis restart the script is loaded again."""
        client = redis_clients.sync_client()
        announce = not self.replicas
        try:
            replies = self._evalsha_all(client, items, gtids, announce)
        except NoScriptError:
            self._sha = client.script_load(PUBLISH)  # the same SHA: EVALSHA fails as a whole
            replies = self._evalsha_all(client, items, gtids, announce)
        positions = [_position(reply) for reply in replies]
        if not announce:
            self._wait_for_replicas(client)
            pipe = client.pipeline(transaction=False)
            for (topic, payload), position in zip(items, positions, strict=True):
                pipe.publish(channel(topic), f"{position.epoch} {position.seq} {payload}")
            pipe.execute()
        return positions

    _sha = hashlib.sha1(PUBLISH.encode()).hexdigest()  # noqa: S324 (Redis names scripts so)

    def _evalsha_all(
        self,
        client: redis.Redis,
        items: Sequence[tuple[str, str]],
        gtids: Sequence[str | None],
        announce: bool,
    ) -> list[object]:
        pipe = client.pipeline(transaction=False)
        for (topic, payload), gtid in itertools.zip_longest(items, gtids[: len(items)]):
            args = self._publish_args(payload, topic, announce, gtid)
            pipe.evalsha(self._sha, 2, *_keys(topic), *args)
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
        script = self._script(client, PUBLISH)
        announce = not self.replicas
        position = _position(
            await script(keys=_keys(topic), args=self._publish_args(payload, topic, announce))
        )
        if not announce:
            await client.execute_command("WAIT", self.replicas, settings.REDIS_WAIT_TIMEOUT_MS)
            await client.publish(channel(topic), f"{position.epoch} {position.seq} {payload}")
        return position

    def position(self, topic: str) -> Position:
        client = redis_clients.sync_client()
        script = self._script(client, POSITION)
        reply = script(keys=_keys(topic), args=[new_epoch_name(), META_TTL * 1000])
        return _position_with_gtid(reply)

    async def aposition(self, topic: str) -> Position:
        client = redis_clients.async_client()
        script = self._script(client, POSITION)
        reply = await script(keys=_keys(topic), args=[new_epoch_name(), META_TTL * 1000])
        return _position_with_gtid(reply)

    async def history(
        self, topic: str, epoch: str, after: int, until: int | None = None
    ) -> tuple[Position, list[Entry] | None]:
        client = redis_clients.async_client()
        script = self._script(client, HISTORY)
        reply = await script(keys=_keys(topic), args=[epoch, after, -1 if until is None else until])
        current = _position(reply)
        if current.epoch != epoch or reply[2] is None:
            return current, None
        last = min(until, current.seq) if until is not None else current.seq
        # EVAL returns XRANGE's raw reply: [[b"<seq>-0", [b"p", payload]], ...]
        entries = [
            Entry(int(entry_id.split(b"-")[0]), fields[fields.index(b"p") + 1].decode())
            for entry_id, fields in reply[2]
        ]
        complete = len(entries) == max(0, last - after) and (
            not entries or entries[0].seq == after + 1
        )
        return current, entries if complete else None

    async def new_epoch(self, topic: str, stale: str) -> Position:
        client = redis_clients.async_client()
        script = self._script(client, NEW_EPOCH)
        reply = await script(keys=_keys(topic), args=[stale, new_epoch_name(), META_TTL * 1000])
        return _position(reply)

    async def listen(
        self,
        topics: Callable[[], Iterable[str]],
        on_frame: OnFrame,
        on_connected: Callable[[], Awaitable[None]],
        subscribed: Subscriptions,
    ) -> None:
        delay = 0.1
        while True:
            client = redis_clients.subscriber_client()
            pubsub = client.pubsub()
            try:
                await self._listen_once(pubsub, topics, on_frame, on_connected, subscribed)
            except (RedisError, OSError) as exc:
                metrics.REDIS_RECONNECTS.inc()
                logger.warning("realtime: Redis subscription lost (%s); reconnecting", exc)
            else:
                delay = 0.1
            finally:
                subscribed.reset()
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
        subscribed: Subscriptions,
    ) -> None:
        """One connection's life: subscribe to every topic, say so once all are confirmed
        (listeners then read back what they missed), relay frames until the connection fails."""
        pending = {channel(topic) for topic in topics()}
        # A subscription to nothing has no connection to read from: one channel of our own
        # keeps it open (and its health checks running) until a topic comes.
        await pubsub.subscribe(channel(""), *pending)
        connected = False
        while True:
            while not subscribed.changes.empty():
                change, topic = subscribed.changes.get_nowait()
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
                subscribed.confirm([_topic_of(name)])
                if not connected and not pending:
                    connected = True
                    await on_connected()


# --- SQLite (the embedded default) ------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS topic (
  name TEXT PRIMARY KEY, epoch TEXT NOT NULL, seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS frame (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, payload TEXT NOT NULL,
  created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS frame_topic_seq ON frame (topic, seq);
"""

POLL_INTERVAL = 0.1  # seconds: well within the second a second terminal's write may take


class LocalBroker:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = settings.WS_HISTORY_SIZE
        self.ttl = settings.WS_HISTORY_TTL
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            self._local.db = db
        return db

    def _position_in(self, db: sqlite3.Connection, topic: str) -> Position:
        row = db.execute("SELECT epoch, seq FROM topic WHERE name = ?", (topic,)).fetchone()
        if row is None:
            row = (new_epoch_name(), 0)
            db.execute("INSERT INTO topic (name, epoch, seq) VALUES (?, ?, ?)", (topic, *row))
        return Position(*row)

    def publish(
        self, items: Sequence[tuple[str, str]], gtids: Sequence[str | None] = ()
    ) -> list[Position]:
        # No database replicas without Redis: `gtids` has nothing to cover.
        db = self._db()
        positions = []
        now = time.time()
        db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
        try:
            for topic, payload in items:
                current = self._position_in(db, topic)
                position = Position(current.epoch, current.seq + 1)
                db.execute("UPDATE topic SET seq = ? WHERE name = ?", (position.seq, topic))
                db.execute(
                    "INSERT INTO frame (topic, epoch, seq, payload, created)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (topic, position.epoch, position.seq, payload, now),
                )
                db.execute(
                    "DELETE FROM frame WHERE topic = ? AND (seq <= ? OR created < ?)",
                    (topic, position.seq - self.size, now - self.ttl),
                )
                positions.append(position)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return positions

    async def apublish(self, topic: str, payload: str) -> Position:
        (position,) = await asyncio.to_thread(self.publish, [(topic, payload)])
        return position

    def position(self, topic: str) -> Position:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            position = self._position_in(db, topic)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return position

    async def aposition(self, topic: str) -> Position:
        return await asyncio.to_thread(self.position, topic)

    def _history(
        self, topic: str, epoch: str, after: int, until: int | None
    ) -> tuple[Position, list[Entry] | None]:
        current = self.position(topic)
        if current.epoch != epoch:
            return current, None
        last = current.seq if until is None else min(until, current.seq)
        rows = self._db().execute(
            "SELECT seq, payload FROM frame WHERE topic = ? AND epoch = ? AND seq > ? AND seq <= ?"
            " ORDER BY seq",
            (topic, epoch, after, last),
        )
        entries = [Entry(seq, payload) for seq, payload in rows]
        complete = len(entries) == max(0, last - after)
        return current, entries if complete else None

    async def history(
        self, topic: str, epoch: str, after: int, until: int | None = None
    ) -> tuple[Position, list[Entry] | None]:
        return await asyncio.to_thread(self._history, topic, epoch, after, until)

    def _new_epoch(self, topic: str, stale: str) -> Position:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            current = self._position_in(db, topic)
            if current.epoch == stale:
                current = Position(new_epoch_name(), 0)
                db.execute(
                    "UPDATE topic SET epoch = ?, seq = 0 WHERE name = ?", (current.epoch, topic)
                )
                db.execute("DELETE FROM frame WHERE topic = ?", (topic,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return current

    async def new_epoch(self, topic: str, stale: str) -> Position:
        return await asyncio.to_thread(self._new_epoch, topic, stale)

    def _frames_since(self, last_id: int | None) -> tuple[int, list[tuple[str, str, int, str]]]:
        db = self._db()
        if last_id is None:
            (top,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM frame").fetchone()
            return top, []
        rows = db.execute(
            "SELECT id, topic, epoch, seq, payload FROM frame WHERE id > ? ORDER BY id", (last_id,)
        ).fetchall()
        return (rows[-1][0] if rows else last_id), [row[1:] for row in rows]

    async def listen(
        self,
        topics: Callable[[], Iterable[str]],
        on_frame: OnFrame,
        on_connected: Callable[[], Awaitable[None]],
        subscribed: Subscriptions,
    ) -> None:
        last_id, _ = await asyncio.to_thread(self._frames_since, None)
        subscribed.confirm(topics())
        await on_connected()
        while True:
            while not subscribed.changes.empty():
                change, topic = subscribed.changes.get_nowait()
                if change == "+":
                    subscribed.confirm([topic])
            last_id, rows = await asyncio.to_thread(self._frames_since, last_id)
            listening = set(topics())
            for topic, epoch, seq, payload in rows:
                if topic in listening:
                    on_frame(topic, epoch, seq, payload)
            await asyncio.sleep(POLL_INTERVAL)


_broker: Broker | None = None


@receiver(setting_changed)
def _forget_broker(setting: str, **kwargs: Any) -> None:
    """Tests change where and how long history is kept: build a new broker then."""
    global _broker
    if setting.startswith(("REDIS_", "WS_HISTORY", "WS_LOCAL")):
        _broker = None


def broker() -> Broker:
    """This process's broker: Redis when configured, else the shared SQLite file."""
    global _broker
    if _broker is None:
        if redis_clients.enabled():
            _broker = RedisBroker()
        else:
            _broker = LocalBroker(Path(settings.WS_LOCAL_HISTORY))
    return _broker


# A REST read asks for its topic's position before its query; while Redis is unreachable that
# would cost every read the connect timeout, so after a failure reads go without the header for
# a moment (their clients resume with `recovered: false` at worst).
_unreachable_until = 0.0
UNREACHABLE_BACKOFF = 2.0


def current_position(topic: str) -> Position | None:
    """The topic's position for a REST response, or None while the broker is unreachable."""
    global _unreachable_until
    if time.monotonic() < _unreachable_until:
        return None
    try:
        return broker().position(topic)
    except (RedisError, OSError, sqlite3.Error) as exc:
        logger.warning("no stream position for %s: %s", topic, exc)
        _unreachable_until = time.monotonic() + UNREACHABLE_BACKOFF
        return None
