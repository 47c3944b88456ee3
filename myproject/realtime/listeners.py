"""
What a hub delivers to: a socket's attachments to a topic, each with its own cursor (`seq`, the
last frame of the topic it has had) and its own greeting.

- `Member`: a socket of the topic itself, greeted with `hello`; it receives every frame.
- `Follower`: one live query of a socket (myproject.realtime.queries), greeted with
  `subscribed`; it receives, for each written row its query sees, one frame saying what the row
  did (`row_frame`).
"""

import json
from collections.abc import Iterator
from typing import Any

from myproject.realtime.frames import Frame, with_position
from myproject.realtime.queries import LiveQuery, Row
from myproject.realtime.sink import Sink
from myproject.realtime.topics import Position


class Listener:
    __slots__ = ("__weakref__", "seq", "sink")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.seq = 0

    def greeting(self, topic: str, position: Position, recovered: bool | None) -> str:
        raise NotImplementedError

    def texts(self, frame: Frame) -> Iterator[str]:
        """What this listener receives of `frame` (a replay: one listener at a time)."""
        raise NotImplementedError

    def cost(self, frame: Frame) -> int:
        """What replaying `frame` to this listener costs, in row tests (Follower)."""
        return 0


class Member(Listener):
    """A socket of the topic. A `muted` one is greeted and nothing more: a socket that asked
    for its live queries alone (`?events=off`)."""

    __slots__ = ("muted",)

    def __init__(self, sink: Sink, *, muted: bool = False) -> None:
        super().__init__(sink)
        self.muted = muted

    def greeting(self, topic: str, position: Position, recovered: bool | None) -> str:
        return json.dumps({"type": "hello", "topic": topic, "epoch": position.epoch,
                           "seq": position.seq, "recovered": recovered})  # fmt: skip

    def texts(self, frame: Frame) -> Iterator[str]:
        yield frame.text(self.sink.variant(frame))

    def wire(self, frame: Frame) -> bytes:
        """The frame as this socket's reader may see it, framed once for every socket."""
        return frame.prepared(self.sink.variant(frame), self.sink.protocol.factory).payloadHybi


class Follower(Listener):
    """One live query of a socket, under the id its client gave it."""

    __slots__ = ("id", "query")

    def __init__(self, sink: Sink, id_: str, query: LiveQuery) -> None:
        super().__init__(sink)
        self.id = id_
        self.query = query

    def greeting(self, topic: str, position: Position, recovered: bool | None) -> str:
        return json.dumps({"type": "subscribed", "id": self.id, "topic": topic,
                           "epoch": position.epoch, "seq": position.seq,
                           "recovered": recovered})  # fmt: skip

    def texts(self, frame: Frame) -> Iterator[str | None]:
        """A frame per row the query sees; None for a row it does not (a replay paces itself
        between rows)."""
        if frame.resource != self.query.resource.name:
            return
        for before, after in frame.rows:
            action = self.query.action(before, after)
            yield None if action is None else row_frame(frame, self, action, before, after)

    def cost(self, frame: Frame) -> int:
        return len(frame.rows) if frame.resource == self.query.resource.name else 0


def row_frame(frame: Frame, follower: Follower, action: str, before: Row | None, after: Any) -> str:
    """One row's frame for one live query, as its reader may see the row."""
    resource = follower.query.resource
    data = {"uuid": before["uuid"]} if action == "deleted" else after
    sink = follower.sink
    if resource.public is not None and not sink.staff and data["uuid"] != sink.user_id:
        data = resource.public(data)
    body = {"type": f"{resource.name}.{action}", "subscription": follower.id, "data": data}
    return with_position(body, frame)
