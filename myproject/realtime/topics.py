"""
Change events: every committed write tells the sockets listening on its group.

Group names and event types are built here and nowhere else. Writes call `publish_on_commit`;
the event leaves only once the transaction commits (a rolled-back write tells nobody), and a
failed publish (Redis down, slow or silently dropping packets) is logged and swallowed: the row
is saved, and a 500 for a saved row would only invite a duplicate retry.

    publish_on_commit(CATALOG_GROUP, event_type("item", "created"), data)

reaches every socket in group `catalog` as `{"type": "item.created", "data": {...}}`.
"""

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

logger = logging.getLogger(__name__)

USERS_GROUP = "users"
CATALOG_GROUP = "catalog"

# The channel-layer message type that makes every socket of a user close (`revoke_session`).
REVOKE = "revoke.session"

# The channel-layer message type of a group chat message (`chat_message`).
MESSAGE = "chat.message"

# What the channel layer accepts as a group name, minus the private per-user groups.
GROUP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
PRIVATE_PREFIX = "user."

# How long a write may wait on the channel layer before its event is given up (seconds).
PUBLISH_TIMEOUT = 0.5

# The channel-layer message type consumers handle (`forward_event`) to relay a frame as is.
FORWARD = "forward.event"


def event_type(resource: str, action: str) -> str:
    """`("item", "bulk_created")` -> `"item.bulk_created"`."""
    return f"{resource}.{action}"


def user_group(uuid: object) -> str:
    """The private group of one user's sockets: closing them all revokes a session at once."""
    return f"{PRIVATE_PREFIX}{uuid}"


def is_public_group(name: str) -> bool:
    """A group a client may name: valid for the channel layer, and not a private user group."""
    return bool(GROUP_NAME.match(name)) and not name.startswith(PRIVATE_PREFIX)


def chat(payload: Any, sender: str | None) -> dict[str, Any]:
    """The channel-layer message relaying a client's (or `broadcast`'s) message to a group."""
    return {"type": MESSAGE, "message": payload, "sender": sender}


def publish_on_commit(group: str, type_: str, data: dict[str, Any]) -> None:
    """Publish `{"type": type_, "data": data}` to `group` after the current transaction commits.

    The frame travels encoded: every socket of the group sends the same text, so it is
    encoded once here rather than once per socket in daphne."""
    text = json.dumps({"type": type_, "data": data}, cls=DjangoJSONEncoder)
    message = {"type": FORWARD, "text": text}
    transaction.on_commit(lambda: send([(group, message)]), robust=True)


def revoke_on_commit(groups: Sequence[str]) -> None:
    """Tell every socket in `groups` to close (4401) once the current transaction commits."""
    messages = [(group, {"type": REVOKE}) for group in groups]
    transaction.on_commit(lambda: send(messages), robust=True)


def send(messages: Sequence[tuple[str, dict[str, Any]]]) -> bool:
    """Send `(group, message)` pairs now, within one timeout; False (logged) if the layer failed."""
    layer = get_channel_layer()
    if layer is None or not messages:
        return False
    try:
        async_to_sync(_group_send)(layer, messages)
    except Exception:
        # Whatever the layer raised, the write stands; the next publish tries afresh.
        logger.exception(
            "could not publish %d message(s), first to %s", len(messages), messages[0][0]
        )
        return False
    return True


async def _group_send(layer: Any, messages: Sequence[tuple[str, dict[str, Any]]]) -> None:
    sends = (layer.group_send(group, message) for group, message in messages)
    await asyncio.wait_for(asyncio.gather(*sends), timeout=PUBLISH_TIMEOUT)
