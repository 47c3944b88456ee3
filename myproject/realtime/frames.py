"""
A frame as it travels: the payload a publisher builds, and the text every socket receives.

The payload (JSON, stored in the history) holds the frame without its position, and what the
hub needs to send it right:

    {"frame": {"type": "user.updated", "data": {...}},      # what staff (and the user) see
     "public": {"type": "user.updated", "data": {...}},     # others' view (users topic only)
     "subject": "<uuid>",                                   # whose record: sees `frame` in full
     "changes": {"resource": "user", "rows": [[before, after], ...]}}   # for live queries

A socket receives `frame` (or `public`) with the position appended:
`{"type": ..., "data": ..., "topic": "users", "epoch": "Xk2…", "seq": 42}`. Each text is built
once per process, whatever the number of sockets.
"""

import json
from typing import Any

from myproject.realtime.queries import Row
from myproject.realtime.topics import Position


class Frame:
    """One numbered frame of a topic in a daphne process (built lazily, shared by sockets)."""

    __slots__ = ("_prepared", "_rows", "_texts", "entry", "epoch", "payload", "seq", "topic")

    def __init__(self, topic: str, epoch: str, seq: int, payload: str) -> None:
        self.topic = topic
        self.epoch = epoch
        self.seq = seq
        self.payload = payload
        self.entry: dict[str, Any] = json.loads(payload)
        self._texts: dict[str, str] = {}
        self._prepared: dict[str, Any] = {}
        self._rows: list[tuple[Row | None, Row | None]] | None = None

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.seq)

    @property
    def size(self) -> int:
        """About what the frame holds in memory, once delivered: its payload, the payload
        parsed, the text sockets receive and its framed bytes (a ring's budget counts this)."""
        return 4 * len(self.payload)

    @property
    def subject(self) -> str | None:
        return self.entry.get("subject")

    @property
    def has_public(self) -> bool:
        return "public" in self.entry

    @property
    def resource(self) -> str | None:
        """The resource whose rows the frame's write changed (live queries), if any."""
        changes = self.entry.get("changes")
        return changes["resource"] if changes else None

    @property
    def rows(self) -> list[tuple[Row | None, Row | None]]:
        """The written rows, before and after, made once per frame for every query."""
        if self._rows is None:
            changes = self.entry.get("changes") or {"rows": []}
            self._rows = [
                (Row(before) if before is not None else None,
                 Row(after) if after is not None else None)
                for before, after in changes["rows"]
            ]  # fmt: skip
        return self._rows

    def suffix(self) -> str:
        """The position fields that close every text of this frame."""
        return f', "topic": {json.dumps(self.topic)}, "epoch": "{self.epoch}", "seq": {self.seq}}}'

    def text(self, variant: str = "frame") -> str:
        """The frame (`variant` "frame" or "public") as a socket receives it."""
        text = self._texts.get(variant)
        if text is None:
            text = self._texts[variant] = with_position(self.entry[variant], self)
        return text

    def prepared(self, variant: str, factory: Any) -> Any:
        """The text framed once for every socket of the process (autobahn `PreparedMessage`)."""
        prepared = self._prepared.get(variant)
        if prepared is None:
            prepared = factory.prepareMessage(self.text(variant).encode())
            self._prepared[variant] = prepared
        return prepared


def with_position(body: dict[str, Any], frame: Frame, **extra: Any) -> str:
    """`body` (a JSON object) as text, with `extra` keys and the frame's position appended."""
    text = json.dumps({**body, **extra} if extra else body)
    return text[:-1] + frame.suffix()
