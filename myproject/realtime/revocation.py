"""
Closing sockets when what opened them ends, with 4401.

- At once: the control topic's frames name groups of sockets (a user's, a credential's:
  myproject.realtime.topics) that must close, and every daphne process hears them like any
  other topic's frames (numbered, kept, read back after a dropped connection). A socket joins its
  groups with `watch`.
- Within the sweep's period: every daphne asks, for its sockets, which credentials still stand
  (the check an app registers: identity's tokens and sessions), and closes the others: an
  expiry no write announced, a revocation lost while Redis was away (`lost` sweeps at once when
  the control topic had a gap the history could not fill).

The platform knows credentials only by this: a `group` to be revoked by, and a check that says
which still stand (`register_check`).
"""

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from asgiref.sync import sync_to_async

from myproject.realtime.frames import Frame

logger = logging.getLogger(__name__)

CLOSE_REVOKED = 4401  # the socket's credential ended: reconnecting would not help


class Credential(Protocol):
    """What a socket was opened with (a token, a session...), as far as revoking goes."""

    @property
    def group(self) -> str: ...


# The registered check: which of these credentials still stand (called in a thread: it may
# use the ORM), and how often to ask it.
_check: Callable[[set[Any]], set[Any]] | None = None
_period = 30.0


def register_check(check: Callable[[set[Any]], set[Any]], every: float) -> None:
    """Ask `check` every `every` seconds which credentials of the open sockets still stand."""
    global _check, _period
    _check, _period = check, every


class Revocations:
    """The revocation groups of one event loop's sockets, and its sweep."""

    def __init__(self) -> None:
        self.groups: dict[str, weakref.WeakSet[Any]] = {}  # group -> consumers
        self.sockets: weakref.WeakSet[Any] = weakref.WeakSet()  # with a credential to check
        self.sweeping: asyncio.Task | None = None

    def watch(self, consumer: Any, groups: Iterable[str]) -> None:
        """Close `consumer` (4401) when any of `groups` is revoked, or its credential no longer
        stands."""
        for group in groups:
            self.groups.setdefault(group, weakref.WeakSet()).add(consumer)
        if consumer.credential is not None:
            self.sockets.add(consumer)
            if self.sweeping is None or self.sweeping.done():
                self.sweeping = asyncio.get_running_loop().create_task(self._sweep_forever())

    def unwatch(self, consumer: Any, groups: Iterable[str]) -> None:
        self.sockets.discard(consumer)
        for group in groups:
            members = self.groups.get(group)
            if members is not None:
                members.discard(consumer)
                if not members:
                    del self.groups[group]

    async def revoke(self, frame: Frame) -> None:
        for group in frame.entry["frame"].get("groups", ()):
            for consumer in list(self.groups.pop(group, ())):
                await _close(consumer)

    def lost(self) -> None:
        """Control frames may have been lost: check every socket's credential now."""
        asyncio.get_running_loop().create_task(self.sweep())

    async def _sweep_forever(self) -> None:
        while self.sockets:
            await asyncio.sleep(_period)
            await self.sweep()

    async def sweep(self) -> None:
        """Close (4401) every socket whose credential no longer stands."""
        sockets = [socket for socket in self.sockets if socket.credential is not None]
        if not sockets or _check is None:
            return
        try:
            standing = await sync_to_async(_check)({socket.credential for socket in sockets})
        except Exception:  # the database is down: try again at the next sweep
            logger.warning("could not check the sockets' credentials", exc_info=True)
            return
        for socket in sockets:
            if socket.credential not in standing:
                self.sockets.discard(socket)
                await _close(socket)


async def _close(consumer: Any) -> None:
    with contextlib.suppress(Exception):
        await consumer.close(code=CLOSE_REVOKED)
