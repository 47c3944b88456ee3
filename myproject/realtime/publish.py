"""
Publishing: where a frame starts. A write's event goes into the outbox of its own transaction
(myproject.realtime.outbox) and is published once it commits, whatever happens to the process
after the commit; a rolled-back write tells nobody.

    event_on_commit(CATALOG, event_type("item", "updated"), data, changes=("item", [(b, a)]))
    revoke_on_commit([user_group(uuid)])     # close the user's sockets (4401)

`publish_now` is the synchronous path for callers that must know the frame went out
(`manage.py broadcast`); daphne publishes chat messages itself (`broker().apublish`).
"""

import json
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from myproject import metrics
from myproject.realtime import outbox, topics
from myproject.realtime.broker import Outgoing, broker
from myproject.realtime.topics import Position


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
    if settings.REALTIME_EVENTS:
        outbox.add(topic, event(type_, data, **extra))


def events_on_commit(frames: Sequence[tuple[str, str]]) -> None:
    """Several events' `(topic, payload)` at once (a bulk write's), in order."""
    if settings.REALTIME_EVENTS and frames:
        outbox.add_many(frames)


def revoke_on_commit(groups: Sequence[str]) -> None:
    """Close (4401) every socket of `groups` (topics.user_group, credential_group) once the
    current transaction commits. Revocations are frames of the control topic: numbered and
    kept like any other, so a daphne whose Redis connection dropped reads back the ones it
    missed (and one that cannot checks every socket's credential at once)."""
    if groups:
        outbox.add(topics.CONTROL, payload({"type": "revoke", "groups": list(groups)}))


def message(payload_: Any, sender: str | None) -> str:
    """The payload of a chat message (a client's or `manage.py broadcast`'s)."""
    return payload({"type": "message", "message": payload_, "sender": sender})


def publish_now(topic: str, text: str) -> Position:
    """Publish at once; raises if the broker cannot be reached."""
    (position,) = broker().publish([Outgoing(topic, text)])
    metrics.EVENTS_PUBLISHED.labels(topic=metrics.topic_label(topic)).inc()
    return position
