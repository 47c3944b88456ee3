"""
Channels' own way, on this platform: a consumer joins a channel-layer group on connect, leaves
it on disconnect, and each message of the group reaches a handler named after its type. Two
versions of the same chat room, shown in docs/consumers.md: a sync `WebsocketConsumer` and an
`AsyncWebsocketConsumer`. They share their groups: a socket of either hears both.

    ws://…/examples/ws/chat/<room>/         ChatConsumer (sync)
    ws://…/examples/ws/async-chat/<room>/   AsyncChatConsumer
    {"text": "hi"}  ->  every socket of the room: {"text": "hi", "sender": "<user name>"}

The groups of one's own consumers start with `app.`, a prefix the check channel does not let
clients name: its messages (signals, presence) never reach a handler that does not expect them.
"""

import json
from typing import Any

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer


def room_group(room: str) -> str:
    return f"app.chat.{room}"


class ChatConsumer(WebsocketConsumer):
    def connect(self) -> None:
        if not self.scope["user"].is_authenticated:
            self.close()  # refused: HTTP 403
            return
        self.group = room_group(self.scope["url_route"]["kwargs"]["room"])
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()

    def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        text = json.loads(text_data or "{}").get("text", "")
        async_to_sync(self.channel_layer.group_send)(
            self.group,
            {"type": "chat.message", "text": text, "sender": self.scope["user"].get_username()},
        )

    def chat_message(self, event: dict[str, Any]) -> None:
        self.send(text_data=json.dumps({"text": event["text"], "sender": event["sender"]}))


class AsyncChatConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if not self.scope["user"].is_authenticated:
            await self.close()
            return
        self.group = room_group(self.scope["url_route"]["kwargs"]["room"])
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        text = json.loads(text_data or "{}").get("text", "")
        await self.channel_layer.group_send(
            self.group,
            {"type": "chat.message", "text": text, "sender": self.scope["user"].get_username()},
        )

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"text": event["text"], "sender": event["sender"]}))
