"""
The catalog stream, `/catalog/ws/`: read-only, open to anyone (origin still checked). Every
committed catalog write arrives as `{"type": "item.updated", "data": {...}}` and the like.
"""

from typing import Any

from myproject.realtime import topics
from myproject.realtime.consumers import EventConsumer, FrameError


class CatalogConsumer(EventConsumer):
    route = "/catalog/ws/"
    # Every frame comes from the hub: no channel-layer channel (myproject.realtime.layer).
    layer_channel = False

    async def authorize(self) -> str:
        return topics.CATALOG

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        raise FrameError("read_only", "The catalog stream is read-only.")
