"""
The catalog stream, `/catalog/ws/`: read-only, open to anyone (origin still checked). Every
committed catalog write arrives as `{"type": "item.updated", "data": {...}}` and the like.
"""

from typing import Any

from myproject import events
from myproject.consumers import EventConsumer, FrameError


class CatalogConsumer(EventConsumer):
    async def authorize(self) -> list[str] | None:
        return [events.CATALOG_GROUP]

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        raise FrameError("read_only", "The catalog stream is read-only.")
