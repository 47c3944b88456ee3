"""
A change the fan-out numbers call for, measured without making it (bench/README: fanout):
the application of myproject.asgi, with the consumers relaying `forward.event` messages
straight to the socket.

Channels' `AsyncConsumer.dispatch` runs `close_old_connections` in the (single) sync thread
before every handler, database or not. For an event relayed to N sockets that is N thread hops
per event, serialized through one thread: about half of daphne's cost per delivered frame.
Relaying a frame touches no database, so skipping the hop for that one message type is safe;
handlers that use the ORM keep it (and `myproject.db.close_old_connections`).
"""

from typing import Any

from myproject import events
from myproject.asgi import application
from myproject.consumers import EventConsumer

_dispatch = EventConsumer.dispatch


async def dispatch(self: EventConsumer, message: dict[str, Any]) -> None:
    if message.get("type") == events.FORWARD:
        await self.forward_event(message)
        return
    await _dispatch(self, message)


EventConsumer.dispatch = dispatch  # type: ignore[method-assign]

__all__ = ["application"]
