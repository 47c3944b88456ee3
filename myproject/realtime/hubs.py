"""
The hubs of one event loop (a daphne process): one per topic that has sockets here
(myproject.realtime.hub), fed by one listening connection to the broker, plus the revocation
groups of its sockets (myproject.realtime.revocation), which listen to the control topic.

    hub = hubs().get("catalog")      # created, and listened to, on first use
"""

import asyncio
import weakref
from collections.abc import Iterable

from myproject.realtime.broker import Listening, broker
from myproject.realtime.hub import Hub
from myproject.realtime.revocation import Revocations
from myproject.realtime.topics import CONTROL


class Hubs:
    def __init__(self) -> None:
        self.hubs: dict[str, Hub] = {}
        self.listening = Listening()
        self.listen_task: asyncio.Task | None = None
        self.revocations = Revocations()

    def get(self, topic: str) -> Hub:
        hub = self.hubs.get(topic)
        if hub is None:
            self._drop_idle()
            hub = self.hubs[topic] = Hub(topic, self)
        if self.listen_task is None or self.listen_task.done():
            self.listen_task = asyncio.get_running_loop().create_task(
                broker().listen(self.topics, self._frame, self._connected, self.listening),
                name="realtime listener",
            )
        return hub

    def watch(self, consumer: object, groups: Iterable[str]) -> None:
        """Close `consumer` (4401) when any of `groups` is revoked (the control topic) or its
        credential no longer stands (myproject.realtime.revocation)."""
        self.get(CONTROL)
        self.revocations.watch(consumer, groups)

    def topics(self) -> Iterable[str]:
        return list(self.hubs)

    def _frame(self, topic: str, epoch: str, seq: int, payload: str) -> None:
        hub = self.hubs.get(topic)
        if hub is not None:
            hub.frame_arrived(epoch, seq, payload)

    async def _connected(self) -> None:
        for hub in self.hubs.values():
            hub.resync()

    def _drop_idle(self) -> None:
        for topic, hub in list(self.hubs.items()):
            if hub.idle and topic != CONTROL:
                hub.task.cancel()
                del self.hubs[topic]
                self.listening.drop(topic)


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hubs] = (
    weakref.WeakKeyDictionary()
)


def hubs() -> Hubs:
    """The running event loop's hubs (daphne runs one loop; tests run one per test)."""
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = Hubs()
    return registry
