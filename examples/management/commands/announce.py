"""`python manage.py announce <room> '<text>'`: a chat room hears it (docs/consumers.md)."""

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.management.base import BaseCommand, CommandParser

from examples.consumers import room_group


class Command(BaseCommand):
    help = "Tell every socket of an example chat room something."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("room")
        parser.add_argument("text")

    def handle(self, *args: Any, room: str, text: str, **options: Any) -> None:
        async_to_sync(get_channel_layer().group_send)(
            room_group(room), {"type": "chat.message", "text": text, "sender": None}
        )
