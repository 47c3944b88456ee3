"""
Publishing: where a frame starts. Writes call `event_on_commit`; the frame leaves only once the
transaction commits (a rolled-back write tells nobody).

    event_on_commit(CATALOG, event_type("item", "updated"), data, changes=("item", [(b, a)]))

Each uWSGI process (or management command) hands its frames to one `Publisher`: a thread with a
persistent Redis connection that numbers and stores them in batches (myproject.realtime.broker).
The request that wrote does not wait for Redis, nor share its process's one interpreter with the
publisher while it answers: a request's frames are handed over once its response has been sent
(`request_finished`). A Redis outage or failover never fails, slows or rolls back a write. The
publisher retries until Redis is back, in order, so the frames are late rather than lost; only
frames still queued when the process dies (or beyond QUEUE_LIMIT) are lost, and logged. A batch
whose reply was lost with the connection is sent again: a frame may arrive twice, never silently
not at all.

`publish_now` is the synchronous path for callers that must know the frame went out
(`manage.py broadcast`); daphne publishes chat messages itself (`broker().apublish`).
"""

import atexit
import collections
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import request_finished, request_started
from django.db import transaction
from django.dispatch import receiver

from myproject import metrics, replicas
from myproject.realtime import topics
from myproject.realtime.broker import broker
from myproject.realtime.topics import Position

logger = logging.getLogger(__name__)

# Frames kept while Redis is unreachable; beyond it new frames are dropped (and logged).
QUEUE_LIMIT = 100_000
BATCH = 200  # frames per round trip
RETRY_MAX_DELAY = 2.0
# What `flush` waits for at exit (a management command's last frames, a uWSGI worker's reload).
EXIT_FLUSH_TIMEOUT = 5.0


def payload(frame: dict[str, Any], **extra: Any) -> str:
    """A frame's payload (myproject.realtime.frames), encoded once: Decimals, UUIDs, dates."""
    body = {"frame": frame, **{key: value for key, value in extra.items() if value}}
    return json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))


def event(
    type_: str,
    data: dict[str, Any],
    *,
    public: dict[str, Any] | None = None,
    subject: object = None,
    changes: tuple[str, Sequence[tuple[Any, Any]]] | None = None,
) -> str:
    """The payload of a change event: `{"type": type_, "data": data}`, its public variant for
    others than staff and `subject`, and the rows before and after for live queries."""
    return payload(
        {"type": type_, "data": data},
        public={"type": type_, "data": public} if public is not None else None,
        subject=str(subject) if subject is not None else None,
        changes={"resource": changes[0], "rows": [list(row) for row in changes[1]]}
        if changes
        else None,
    )


def event_on_commit(topic: str, type_: str, data: dict[str, Any], **extra: Any) -> None:
    """Publish a change event to `topic` once the current transaction commits (unless
    `DJANGO_REALTIME_EVENTS` is off: `make bench` measures what events cost a write)."""
    if not settings.REALTIME_EVENTS:
        return
    text = event(type_, data, **extra)
    # With database replicas the frame carries its write's GTID, read right after the commit on
    # the same connection, so that a REST read at a position that includes this frame waits
    # for a replica that has the write (myproject.replicas, X-Stream-Position).
    transaction.on_commit(
        lambda: publisher().put(topic, text, replicas.committed_position()), robust=True
    )


def message(payload_: Any, sender: str | None) -> str:
    """The payload of a chat message (a client's or `manage.py broadcast`'s)."""
    return payload({"type": "message", "message": payload_, "sender": sender})


def publish_now(topic: str, text: str) -> Position:
    """Publish at once; raises if the broker cannot be reached."""
    (position,) = broker().publish([(topic, text)])
    published([topic])
    return position


def published(topics_: Sequence[str]) -> None:
    """Count published frames (metrics), by topic."""
    for topic in topics_:
        metrics.EVENTS_PUBLISHED.labels(topic=metrics.topic_label(topic)).inc()


def revoke_on_commit(groups: Sequence[str]) -> None:
    """Close (4401) every socket of `groups` (topics.user_group, credential_group) once the
    current transaction commits. Revocations are frames of the control topic: numbered and
    kept like any other, so a daphne whose Redis connection dropped reads back the ones it
    missed (and one that cannot checks every socket's credential at once)."""
    if groups:
        text = payload({"type": "revoke", "groups": list(groups)})
        transaction.on_commit(lambda: publisher().put(topics.CONTROL, text), robust=True)


class Publisher:
    """The background publisher of one process (see the module docstring). Frames put while a
    request is being answered in this thread wait for its end (`release`)."""

    def __init__(self) -> None:
        # (topic, payload, GTID of the write or None)
        self.queue: collections.deque[tuple[str, str, str | None]] = collections.deque()
        self.lock = threading.Condition()
        self.thread: threading.Thread | None = None
        self.busy = False
        self.dropped = 0
        self.local = threading.local()  # .held: this thread's request's frames, until it ends

    def hold(self) -> None:
        """A request starts in this thread: keep its frames until it has been answered."""
        self.release()  # a previous request's, should its end have gone unannounced
        self.local.held = []

    def release(self) -> None:
        """The request has been answered: publish what it wrote."""
        held = getattr(self.local, "held", None)
        self.local.held = None
        for item in held or ():
            self._enqueue(*item)

    def put(self, topic: str, text: str, gtid: str | None = None) -> None:
        held = getattr(self.local, "held", None)
        if held is not None:
            held.append((topic, text, gtid))
        else:
            self._enqueue(topic, text, gtid)

    def _enqueue(self, topic: str, text: str, gtid: str | None) -> None:
        with self.lock:
            if len(self.queue) >= QUEUE_LIMIT:
                self.dropped += 1
                metrics.EVENTS_DROPPED.inc()
                logger.error("publish queue full: dropped a frame (%d so far)", self.dropped)
                return
            self.queue.append((topic, text, gtid))
            metrics.EVENTS_QUEUED.set(len(self.queue))
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="publisher", daemon=True)
                self.thread.start()
            self.lock.notify()

    def flush(self, timeout: float) -> bool:
        """Wait until every queued frame is published; False if `timeout` ran out first."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.queue or self.busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(min(left, 0.05))
        return True

    def _run(self) -> None:
        delay = 0.05
        while True:
            with self.lock:
                while not self.queue:
                    self.lock.wait()
                batch = [self.queue[i] for i in range(min(BATCH, len(self.queue)))]
                self.busy = True
            try:
                broker().publish([item[:2] for item in batch], [item[2] for item in batch])
            except Exception as exc:
                with self.lock:
                    self.busy = False
                metrics.EVENTS_PUBLISH_FAILURES.inc()
                logger.warning("could not publish %d frame(s), retrying: %s", len(batch), exc)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)
                continue
            delay = 0.05
            published([item[0] for item in batch])
            with self.lock:
                for _ in batch:
                    self.queue.popleft()
                self.busy = False
                metrics.EVENTS_QUEUED.set(len(self.queue))
                self.lock.notify_all()


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


@receiver(request_started)
def _request_started(**kwargs: Any) -> None:
    # WSGI (uWSGI) answers a request in one thread, from this signal to request_finished; ASGI
    # moves it between threads, so its frames go at once there.
    if "environ" in kwargs:
        publisher().hold()


@receiver(request_finished)
def _request_finished(**kwargs: Any) -> None:
    publisher().release()


def publisher() -> Publisher:
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            _publisher = Publisher()
            atexit.register(_publisher.flush, EXIT_FLUSH_TIMEOUT)
    return _publisher
