"""
What every broker does, and what its callers hand it.

    broker().publish([Outgoing("catalog", payload, key="outbox:42")])   # -> [Position("Xk2…", 42)]
    await broker().history("catalog", "Xk2…", after=40)   # -> (Position, [Entry(41, …), …])

Publishing a frame to a topic gives it the next `seq` of the topic's current epoch, stores it in
the topic's history and announces it to the listening daphne processes, in one atomic step. A
frame published with an idempotency `key` that the topic has numbered before keeps its first
seq: a publish retried after a lost reply, or by a second relay of the same outbox row, is never
numbered twice (the key is remembered for the topic's latest `KEY_WINDOW` frames).

A topic gets a new epoch when its numbering cannot be trusted any more: the store lost it (a
Redis restart without persistence, keys expired), or a failover went back in time. Whoever sees
a new epoch must tell its clients that what they had may be incomplete (the hub's `hello` with
`recovered: false`).

A payload is the JSON text of the frame without its position (the hub appends `topic`, `epoch`,
`seq`), with what the hub needs beside it (myproject.realtime.frames).
"""

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import NamedTuple

from myproject.realtime.topics import Position

# A topic's epoch and counter outlive its history by far: positions stay comparable across
# quiet nights, and a topic idle for a week simply starts a new epoch.
META_TTL = 7 * 24 * 3600
# How many of a topic's latest frames remember their idempotency key. A retry comes within
# seconds (a relay's next pass) or once the database is back after an outage, during which no
# write commits to repeat it: far fewer frames than this in between.
KEY_WINDOW = 10_000


class Entry(NamedTuple):
    """A frame of the history: its seq and payload."""

    seq: int
    payload: str


class Outgoing(NamedTuple):
    """A frame to publish: `key` makes the publish idempotent; `gtid` is the database position
    that covers the write the frame announces (with replicas, myproject.replicas)."""

    topic: str
    payload: str
    key: str | None = None
    gtid: str | None = None


# (topic, epoch, seq, payload) as a listener hears it.
OnFrame = Callable[[str, str, int, str], None]


class Broker:
    """The interface (see the module docstring); `redis.RedisBroker` and `local.LocalBroker`
    implement it."""

    def publish(self, frames: Sequence[Outgoing]) -> list[Position]:
        """Number, keep and announce each frame, in order (blocking)."""
        raise NotImplementedError

    async def apublish(self, topic: str, payload: str) -> Position:
        raise NotImplementedError

    def position(self, topic: str) -> Position:
        """The topic's current position (an epoch is created for a topic that has none)."""
        raise NotImplementedError

    async def aposition(self, topic: str) -> Position:
        raise NotImplementedError

    async def history(
        self, topic: str, epoch: str, after: int, until: int | None = None
    ) -> tuple[Position, list[Entry] | None]:
        """The frames of `epoch` after `after` (up to `until`), with the current position; None
        instead of frames when the history no longer holds all of them (or epoch differs)."""
        raise NotImplementedError

    async def new_epoch(self, topic: str, stale: str) -> Position:
        """Start a new epoch if the topic is still in `stale` (numbering gone back in time)."""
        raise NotImplementedError

    async def listen(
        self,
        topics: Callable[[], Iterable[str]],
        on_frame: OnFrame,
        on_connected: Callable[[], Awaitable[None]],
        listening: "Listening",
    ) -> None:
        """Hear every frame of `topics()` until cancelled; `on_connected` runs after each
        (re)connection, once subscribed, so listeners can read back what they missed."""
        raise NotImplementedError


def new_epoch_name() -> str:
    return secrets.token_urlsafe(8)  # 11 characters of [A-Za-z0-9_-]


def complete(entries: list[Entry], after: int, last: int) -> list[Entry] | None:
    """`entries` if they are exactly the frames after `after` up to `last`, else None (the
    history lost some)."""
    if len(entries) == max(0, last - after) and (not entries or entries[0].seq == after + 1):
        return entries
    return None


class Listening:
    """The topics a process's listening connection holds, so that a hub can wait for its topic
    to be held before it reads the position (nothing published in between is missed)."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.changed = asyncio.Event()
        # ("+" or "-", topic): topics to take up or drop on the listening connection.
        self.changes: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    def want(self, topic: str) -> None:
        if topic not in self.held:
            self.changes.put_nowait(("+", topic))

    def drop(self, topic: str) -> None:
        self.held.discard(topic)
        self.changes.put_nowait(("-", topic))

    def confirm(self, topics: Iterable[str]) -> None:
        self.held.update(topics)
        self.changed.set()
        self.changed = asyncio.Event()

    def reset(self) -> None:
        self.held.clear()

    async def wait(self, topic: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while topic not in self.held:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives
                # as the wait completes.
                async with asyncio.timeout(left):
                    await self.changed.wait()
        return True
