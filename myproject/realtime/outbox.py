"""
Committed means announced: a write's frames are stored in the write's own transaction (the
`Outbox` table) and published from there by a relay, so a write that committed is announced
even if its process dies right after the commit (SIGKILL, OOM, harakiri, a deploy during a Redis
outage), and a write that rolled back is announced never.

    with transaction.atomic():
        item.save()
        outbox.add("catalog", payload)      # same transaction; the relay wakes on commit

Every serving process (each uWSGI worker, each daphne) runs one relay thread, and so does any
process that writes (a management command, a shell: `manage.py` publishes what is left before it
exits). A relay publishes every frame in the outbox, oldest first, in batches (one Redis round
trip each), then deletes them: two statements and a round trip after each write, as the frames
its own process committed are handed to it with their payloads, which it need not read back. It
wakes when its own process commits a frame (in a WSGI request, once the response is over: under
uWSGI once the connection is closed, its after_req_hook, so that the relay's work does not delay
the response's end; elsewhere at Django's request_finished); and
every POLL seconds it looks for frames older than GRACE, which their own process should have
published by then: frames left by a process that died go out within seconds. Publishing never
makes a write wait for Redis: while Redis is away, frames wait in the outbox (its size and the
age of its oldest frame are metrics), and go out in order once it is back.

Several relays may publish the same frames at once (two processes woken together, a poll and a
kick); each frame's outbox id is its idempotency key, so it is numbered once whoever publishes it
first, and since every relay publishes from the oldest frame on, a frame is always numbered after
every frame committed before it. In particular the frames of one row keep its commits' order (a
second write of a row waits for the first's commit, so its frame gets the higher id).
"""

import contextlib
import datetime
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django import db
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.dispatch import receiver
from django.utils import timezone

from myproject import metrics
from myproject.db import close_old_connections
from myproject.realtime.broker import Outgoing, broker
from myproject.realtime.models import Outbox
from myproject.replicas import gtid

logger = logging.getLogger(__name__)

POLL = 1.0  # seconds between two looks for frames nobody published
GRACE = 2.0  # seconds a frame is left to its own process's relay
BATCH = 200  # frames per publish (one Redis round trip)
# This process's own committed frames are kept in memory, up to about KNOWN_BYTES, for its relay
# to publish without reading them back.
KNOWN_BYTES = 16 * 1024 * 1024
BATCH_BYTES = 8 * 1024 * 1024  # and at most about this much payload (one frame more, at worst)
# Rows per INSERT: large frames (bulk writes) go in several statements, each well below
# MySQL's max_allowed_packet (16 MiB by default on MariaDB).
INSERT_BYTES = 4 * 1024 * 1024
RETRY_MAX_DELAY = 2.0
FAILURE_LOG_EVERY = 10.0  # seconds between two reports of a failing relay
GRACE_DELTA = datetime.timedelta(seconds=GRACE)


def add(topic: str, payload: str) -> None:
    """Store a frame in the current transaction (autocommit: at once); the relay wakes once it
    commits."""
    add_many([(topic, payload)])


def add_many(frames: Sequence[tuple[str, str]]) -> None:
    """`add` for several frames, in order, in as few statements as their size allows."""
    if len(frames) == 1:
        committed = {_insert_one(*frames[0]): frames[0][1]}
    else:
        now = timezone.now()
        rows = [Outbox(topic=t, payload=p, size=len(p), created=now) for t, p in frames]
        start = 0
        while start < len(rows):
            end, size = start + 1, rows[start].size
            while end < len(rows) and size + rows[end].size <= INSERT_BYTES:
                size += rows[end].size
                end += 1
            Outbox.objects.using(DEFAULT_DB_ALIAS).bulk_create(rows[start:end])
            start = end
        committed = {row.pk: row.payload for row in rows if row.pk is not None}
    # The relay is handed the payloads it will publish (their ids are known where the database
    # returns them: MariaDB, SQLite), so that it need not read them back.
    transaction.on_commit(functools.partial(relay().kick, committed), using=DEFAULT_DB_ALIAS)


def _insert_one(topic: str, payload: str) -> int:
    """One frame, as the ORM's bulk_create would store it at a tenth of its cost: every single
    write of the platform makes one (make bench: writes)."""
    connection = connections[DEFAULT_DB_ALIAS]
    table = connection.ops.quote_name(Outbox._meta.db_table)
    created = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (topic, payload, size, created) VALUES (%s, %s, %s, %s)",  # noqa: S608
            [topic, payload, len(payload), created],
        )
        return cursor.lastrowid


class Relay:
    """This process's relay (see the module docstring)."""

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid: int | None = None
        self.local = threading.local()  # .held: a WSGI request is being answered in this thread
        # Whether the server releases a request's kicks (release_after_close).
        self.released_by_server = False
        self.failing_since: float | None = None
        self.next_failure_log = 0.0
        # id -> payload: frames this process committed and has not published yet; forgotten
        # once published, by whichever relay (relay_once).
        self.known: dict[int, str] = {}
        self.known_bytes = 0

    def start(self) -> None:
        """Run this process's relay thread (a forked child starts its own)."""
        if self.pid == os.getpid() and self.thread is not None and self.thread.is_alive():
            return
        with self.lock:
            if self.pid != os.getpid() or self.thread is None or not self.thread.is_alive():
                self.pid = os.getpid()
                self.thread = threading.Thread(target=self._run, name="outbox relay", daemon=True)
                self.thread.start()

    def kick(self, committed: dict[int, str] | None = None) -> None:
        """Frames were committed: publish them (after the response, in a WSGI request)."""
        if committed:
            self._remember(committed)
        if getattr(self.local, "held", None) is not None:
            self.local.held = True
            return
        self.start()
        self.wake.set()

    def hold(self) -> None:
        """A WSGI request starts in this thread: its kicks wait for its response to be sent."""
        self.local.held = False

    def release_after_close(self) -> Callable[[], None]:
        """The hook a server calls once it has closed a request's connection (uWSGI's
        after_req_hook, myproject.wsgi): from then on it, not Django's request_finished (which
        fires before the connection is closed), releases each request's kicks."""
        self.released_by_server = True
        return self.release

    def release(self) -> None:
        kicked = getattr(self.local, "held", None)
        self.local.held = None
        if kicked:
            self.kick()

    def _run(self) -> None:
        delay = 0.0  # after a failure: when to try again
        while True:
            kicked = self.wake.wait(delay or POLL)
            self.wake.clear()
            try:
                if kicked or delay or self._orphaned():
                    while self.relay_once():
                        pass
            except Exception as exc:
                self._failed(exc)
                # A broken connection is replaced on the next try; closing it may fail too,
                # which must not end the thread (only a kick would start another).
                with contextlib.suppress(Exception):
                    db.close_old_connections()
                delay = min(max(delay * 2, 0.05), RETRY_MAX_DELAY)
            else:
                delay = 0.0
                self.failing_since = None

    def _failed(self, exc: Exception) -> None:
        metrics.EVENTS_PUBLISH_FAILURES.inc()
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        if now >= self.next_failure_log:
            self.next_failure_log = now + FAILURE_LOG_EVERY
            logger.warning(
                "could not publish the outbox's frames for %.0f s, retrying: %s",
                now - self.failing_since, exc,
            )  # fmt: skip

    @close_old_connections
    def _orphaned(self) -> bool:
        """Whether the oldest frame of the outbox has waited longer than GRACE."""
        oldest = Outbox.objects.using(DEFAULT_DB_ALIAS).order_by("id").values("created").first()
        return oldest is not None and oldest["created"] < timezone.now() - GRACE_DELTA

    def relay_once(self) -> bool:
        """Publish the oldest frames of the outbox (a batch) and delete them; whether there may
        be more. It runs after every write, so it costs as little as it can: plain SQL (the
        ORM's compiling of its statements cost three times their round trips, make bench:
        writes), and no health-check ping of its connection (`_orphaned`, at least once a second
        when nothing kicks, and a failure replace a connection that is stale or broken)."""
        connection = connections[DEFAULT_DB_ALIAS]
        # The statements below name the table (its quoted name); every value is a parameter.
        table = connection.ops.quote_name(Outbox._meta.db_table)
        with self.lock:
            before = list(self.known)
        with connection.cursor() as cursor:
            head_sql = f"SELECT id, topic, size FROM {table} ORDER BY id LIMIT %s"  # noqa: S608
            cursor.execute(head_sql, [BATCH])
            head = cursor.fetchall()
            batch, size = [], 0
            for id_, topic, length in head:
                if batch and size + length > BATCH_BYTES:
                    break
                batch.append((id_, topic))
                size += length
            if not batch:
                self._forget(before)  # published by another relay
                return False
            self._forget(id_ for id_ in before if id_ < batch[0][0])
            ids = [id_ for id_, _ in batch]
            payloads = self._recall(ids)
            missing = [id_ for id_ in ids if id_ not in payloads]
            if missing:
                marks = ", ".join(["%s"] * len(missing))
                cursor.execute(f"SELECT id, payload FROM {table} WHERE id IN ({marks})", missing)  # noqa: S608
                payloads.update(cursor.fetchall())
            gtid = binlog_position()
            frames = [
                Outgoing(topic, payloads[id_], key=str(id_), gtid=gtid)
                for id_, topic in batch
                if id_ in payloads  # another relay published and deleted it meanwhile
            ]
            broker().publish(frames)
            marks = ", ".join(["%s"] * len(ids))
            cursor.execute(f"DELETE FROM {table} WHERE id IN ({marks})", ids)  # noqa: S608
        self._forget(ids)
        for frame in frames:
            metrics.EVENTS_PUBLISHED.labels(topic=metrics.topic_label(frame.topic)).inc()
        return len(batch) < len(head) or len(head) == BATCH

    def _remember(self, committed: dict[int, str]) -> None:
        size = sum(len(payload) for payload in committed.values())
        with self.lock:
            if self.known_bytes + size <= KNOWN_BYTES:
                self.known.update(committed)
                self.known_bytes += size

    def _recall(self, ids: list[int]) -> dict[int, str]:
        with self.lock:
            return {id_: self.known[id_] for id_ in ids if id_ in self.known}

    def _forget(self, ids: Iterable[int]) -> None:
        with self.lock:
            for id_ in ids:
                payload = self.known.pop(id_, None)
                if payload is not None:
                    self.known_bytes -= len(payload)

    def flush_own(self, timeout: float) -> bool:
        """`flush`, if this process wrote frames (its relay runs): a command's exit."""
        return self.pid != os.getpid() or self.flush(timeout)

    def flush(self, timeout: float) -> bool:
        """Publish what the outbox holds, in the calling thread, until it is empty (True) or
        `timeout` runs out or publishing fails (False: the other relays will)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self.relay_once():
                    return True
        except Exception as exc:
            logger.warning("frames left in the outbox for another process's relay: %s", exc)
        return False


def binlog_position() -> str | None:
    """With database replicas: the primary's binlog position, which covers every committed
    write, the outbox's frames' included (a REST read at their position waits for a replica
    to have it: X-Stream-Position). None without replicas, or if it cannot be read."""
    return gtid.primary_variable("@@GLOBAL.gtid_binlog_pos")


def backlog() -> tuple[int, float]:
    """How many frames wait in the outbox, and the age of the oldest in seconds (metrics)."""
    pending = Outbox.objects.using(DEFAULT_DB_ALIAS)
    count = pending.count()
    oldest = pending.order_by("id").values_list("created", flat=True).first()
    age = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
    return count, max(age, 0.0)


_relay = Relay()


def relay() -> Relay:
    return _relay


@receiver(request_started)
def _request_started(**kwargs: Any) -> None:
    # WSGI (uWSGI) answers a request in one thread, from this signal to request_finished; ASGI
    # moves it between threads, so its kicks go at once there.
    if "environ" in kwargs:
        _relay.hold()


@receiver(request_finished)
def _request_finished(**kwargs: Any) -> None:
    if not _relay.released_by_server:
        _relay.release()
