"""
`python manage.py broadcast <group> '<json>'`: a message from the shell to every socket in a
check-channel group, as `{"type": "message", "message": <json>, "sender": null}`.
"""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from myproject.realtime import publish, topics


class Command(BaseCommand):
    help = "Send a JSON message to every socket in a group."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("group")
        parser.add_argument("message", help='JSON, e.g. \'{"text": "maintenance at 18:00"}\'')

    def handle(self, *args: Any, group: str, message: str, **options: Any) -> None:
        if not topics.is_public(group):
            raise CommandError(f"{group!r} is not a valid group name.")
        try:
            payload = json.loads(message)
        except ValueError as exc:
            raise CommandError(f"The message is not valid JSON: {exc}") from exc
        try:
            position = publish.publish_now(group, publish.message(payload, None))
        except Exception as exc:
            raise CommandError(
                f"Nothing was sent: the broker could not be reached ({exc})."
            ) from exc
        self.stdout.write(self.style.SUCCESS(f"Sent to group {group} at {position}."))
