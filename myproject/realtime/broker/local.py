"""
The broker of the embedded default (no Redis): the same numbering, history and idempotency in an
SQLite file beside the code (`DJANGO_WS_LOCAL_HISTORY`, `var/realtime.db`), which every process
of the machine shares and listens to by polling; so `manage.py` in a second terminal reaches the
sockets of `make run`. As in Redis, a topic's history is kept for `DJANGO_WS_HISTORY_TTL`
seconds after its last frame, its last `DJANGO_WS_HISTORY_SIZE` frames at most.
"""

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path

from django.conf import settings

from myproject.realtime.broker.base import (
    KEY_WINDOW,
    Broker,
    Entry,
    Listening,
    OnFrame,
    Outgoing,
    complete,
    new_epoch_name,
)
from myproject.realtime.topics import Position

# The file holds nothing that must outlive a change of its layout (a new layout starts new
# epochs, which sockets are told about): an older layout is dropped and made anew.
SCHEMA_VERSION = 2
SCHEMA = [
    "DROP TABLE IF EXISTS topic",
    "DROP TABLE IF EXISTS frame",
    "DROP TABLE IF EXISTS published",
    "CREATE TABLE topic (name TEXT PRIMARY KEY, epoch TEXT NOT NULL, seq INTEGER NOT NULL,"
    " last REAL NOT NULL DEFAULT 0)",
    "CREATE TABLE frame (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
    " epoch TEXT NOT NULL, seq INTEGER NOT NULL, payload TEXT NOT NULL)",
    "CREATE INDEX frame_topic_seq ON frame (topic, seq)",
    "CREATE TABLE published (topic TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY (topic, key))",
    "CREATE INDEX published_topic_seq ON published (topic, seq)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
]

POLL_INTERVAL = 0.1  # seconds: well within the second a second terminal's write may take


class LocalBroker(Broker):
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
            self._local.db = db
            with self._writing() as locked:
                (version,) = locked.execute("PRAGMA user_version").fetchone()
                if version != SCHEMA_VERSION:
                    for statement in SCHEMA:
                        locked.execute(statement)
        return db

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A transaction that holds the file's write lock from its start: one writer at a time,
        across processes, so that two never give out the same seq."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _position_in(self, db: sqlite3.Connection, topic: str) -> Position:
        row = db.execute("SELECT epoch, seq FROM topic WHERE name = ?", (topic,)).fetchone()
        if row is None:
            row = (new_epoch_name(), 0)
            db.execute("INSERT INTO topic (name, epoch, seq) VALUES (?, ?, ?)", (topic, *row))
        return Position(*row)

    def publish(self, frames: Sequence[Outgoing]) -> list[Position]:
        # No database replicas without Redis: a frame's `gtid` has nothing to cover.
        positions = []
        now = time.time()
        with self._writing() as db:
            for frame in frames:
                current = self._position_in(db, frame.topic)
                if frame.key is not None:
                    seen = db.execute(
                        "SELECT seq FROM published WHERE topic = ? AND key = ?",
                        (frame.topic, frame.key),
                    ).fetchone()
                    if seen is not None:
                        positions.append(Position(current.epoch, seen[0]))
                        continue
                position = Position(current.epoch, current.seq + 1)
                db.execute(
                    "UPDATE topic SET seq = ?, last = ? WHERE name = ?",
                    (position.seq, now, frame.topic),
                )
                db.execute(
                    "INSERT INTO frame (topic, epoch, seq, payload) VALUES (?, ?, ?, ?)",
                    (frame.topic, position.epoch, position.seq, frame.payload),
                )
                db.execute(
                    "DELETE FROM frame WHERE topic = ? AND seq <= ?",
                    (frame.topic, position.seq - self.size),
                )
                if frame.key is not None:
                    db.execute(
                        "INSERT INTO published (topic, key, seq) VALUES (?, ?, ?)",
                        (frame.topic, frame.key, position.seq),
                    )
                    db.execute(
                        "DELETE FROM published WHERE topic = ? AND seq <= ?",
                        (frame.topic, position.seq - KEY_WINDOW),
                    )
                positions.append(position)
        return positions

    async def apublish(self, topic: str, payload: str) -> Position:
        (position,) = await asyncio.to_thread(self.publish, [Outgoing(topic, payload)])
        return position

    def position(self, topic: str) -> Position:
        with self._writing() as db:
            return self._position_in(db, topic)

    async def aposition(self, topic: str) -> Position:
        return await asyncio.to_thread(self.position, topic)

    def _history(
        self, topic: str, epoch: str, after: int, until: int | None
    ) -> tuple[Position, list[Entry] | None]:
        with self._writing() as db:
            current = self._position_in(db, topic)
            if current.epoch != epoch:
                return current, None
            (last_frame,) = db.execute("SELECT last FROM topic WHERE name = ?", (topic,)).fetchone()
            if last_frame and last_frame < time.time() - self.ttl:
                # Expired as a whole, TTL seconds after the topic's last frame (as in Redis).
                db.execute("DELETE FROM frame WHERE topic = ?", (topic,))
            last = current.seq if until is None else min(until, current.seq)
            rows = db.execute(
                "SELECT seq, payload FROM frame WHERE topic = ? AND epoch = ? AND seq > ?"
                " AND seq <= ? ORDER BY seq",
                (topic, epoch, after, last),
            )
            return current, complete([Entry(seq, payload) for seq, payload in rows], after, last)

    async def history(
        self, topic: str, epoch: str, after: int, until: int | None = None
    ) -> tuple[Position, list[Entry] | None]:
        return await asyncio.to_thread(self._history, topic, epoch, after, until)

    def _new_epoch(self, topic: str, stale: str) -> Position:
        with self._writing() as db:
            current = self._position_in(db, topic)
            if current.epoch == stale:
                current = Position(new_epoch_name(), 0)
                db.execute(
                    "UPDATE topic SET epoch = ?, seq = 0 WHERE name = ?", (current.epoch, topic)
                )
                db.execute("DELETE FROM frame WHERE topic = ?", (topic,))
                db.execute("DELETE FROM published WHERE topic = ?", (topic,))
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
        listening: Listening,
    ) -> None:
        last_id, _ = await asyncio.to_thread(self._frames_since, None)
        listening.confirm(topics())
        await on_connected()
        while True:
            while not listening.changes.empty():
                change, topic = listening.changes.get_nowait()
                if change == "+":
                    listening.confirm([topic])
            last_id, rows = await asyncio.to_thread(self._frames_since, last_id)
            held = set(topics())
            for topic, epoch, seq, payload in rows:
                if topic in held:
                    on_frame(topic, epoch, seq, payload)
            await asyncio.sleep(POLL_INTERVAL)
