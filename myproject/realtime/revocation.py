"""
Closing sockets when what opened them ends: the control topic's frames name groups of sockets
(a user's, a credential's: myproject.realtime.topics) that must close with 4401, and every daphne
process hears them like any other topic's frames (numbered, kept, read back after a dropped
connection). A socket joins its groups with `watch`. If control frames may have been lost (a gap
the history could not fill), `lost` runs the hook the consumers registered (a check of every
socket's credential at once).
"""

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from myproject.realtime.frames import Frame

CLOSE_REVOKED = 4401  # the socket's credential ended: reconnecting would not help


class Revocations:
    """The revocation groups of one event loop's sockets."""

    def __init__(self) -> None:
        self.groups: dict[str, weakref.WeakSet[Any]] = {}  # group -> consumers
        self.on_lost: Callable[[], Awaitable[None]] | None = None

    def watch(self, consumer: Any, groups: Iterable[str]) -> None:
        """Close `consumer` (4401) when any of `groups` is revoked."""
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

    def lost(self) -> None:
        if self.on_lost is not None:
            asyncio.get_running_loop().create_task(self.on_lost())
