"""
The check channel, `/identity/ws/check/<group_name>/`, for signed-in users.

    {"type": "message", "message": ...}   -> every member of the group (sender included) gets
                                             {"type": "message", "message": ..., "sender": uuid}
    {"message": ...}                      -> the same
    {"type": "check", "id": 7, "resource": "user", "field": "email", "value": "a@b.c"}
                                          -> the sender gets {"type": "check.result", "id": 7,
                                             "field": "email", "ok": false, "errors": [...]}

A check runs the validation the REST create runs on that field, uniqueness included, for every
resource the apps register (`myproject.realtime.queries.register`: user, item, category). Sockets on
group `users` (or `catalog`) also receive every user (catalog) change event; those two groups
are for server events, and a `message` to them is refused (`read_only`). A user's `message`
frames, over all of its sockets, are limited to `DJANGO_WS_MESSAGE_RATE`.
"""

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from rest_framework import serializers

from myproject import replicas
from myproject.db import close_old_connections
from myproject.realtime import queries, quotas, topics
from myproject.realtime.broker import broker
from myproject.realtime.consumers import EventConsumer, FrameError, Refused
from myproject.realtime.publish import message

CHECK_KEYS = ("id", "resource", "field", "value")


class CheckConsumer(EventConsumer):
    route = "/identity/ws/check/<group_name>/"
    in_group = True  # the channel-layer group <group_name>: signals and presence

    async def authorize(self) -> str:
        group = self.scope["url_route"]["kwargs"]["group_name"]
        if not (self.user and self.user.is_authenticated):
            raise Refused("no_credential", "no valid ticket, token or session")
        problem = topics.name_problem(group)
        if problem is not None:
            raise Refused("invalid_group", problem)
        self.check_rate = quotas.RateLimit(settings.WS_CHECK_RATE)
        return group

    async def receive_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type", "message" if "message" in frame else None)
        if kind == "message":
            await self.message(frame)
        elif kind == "check":
            await self.check(frame)
        else:
            raise FrameError(
                "unknown_type",
                '"type" is one of message, check, signal, presence, subscribe, unsubscribe.',
            )

    async def message(self, frame: dict[str, Any]) -> None:
        if "message" not in frame:
            raise FrameError("missing_keys", 'A message frame needs "message".')
        if self.topic in topics.EVENT_TOPICS:
            raise FrameError("read_only", f"{self.topic} carries server events only.")
        if not await quotas.user_rate_allowed("messages", self.user.pk, settings.WS_MESSAGE_RATE):
            raise FrameError(
                "rate_limited", f"At most {settings.WS_MESSAGE_RATE} messages per user."
            )
        await broker().apublish(self.topic, message(frame["message"], str(self.user.pk)))

    async def check(self, frame: dict[str, Any]) -> None:
        missing = [key for key in CHECK_KEYS if key not in frame]
        if missing:
            raise FrameError("missing_keys", f"A check frame needs {', '.join(missing)}.")
        if not self.check_rate.allow():
            raise FrameError("rate_limited", f"At most {settings.WS_CHECK_RATE} checks.")
        if frame["resource"] not in queries.RESOURCES:
            names = ", ".join(queries.RESOURCES)
            raise FrameError("unknown_resource", f"resource is one of {names}.")
        errors = await sync_to_async(check_field)(frame["resource"], frame["field"], frame["value"])
        await self.send_json({
            "type": "check.result", "id": frame["id"], "field": frame["field"],
            "ok": not errors, "errors": errors,
        })  # fmt: skip


@close_old_connections
def check_field(resource: str, field: Any, value: Any) -> list[str]:
    """The errors the REST create of `resource` would report for `field` set to `value`. On the
    primary, as the create's own validation: a replica behind would call a taken value free."""
    with replicas.primary():
        return _check_field(resource, field, value)


def _check_field(resource: str, field: Any, value: Any) -> list[str]:
    # The serializer the REST create of the resource validates with (its viewset's).
    serializer = queries.RESOURCES[resource].viewset.service.serializer_class()
    target = serializer.fields.get(field) if isinstance(field, str) else None
    if target is None or target.read_only:
        raise FrameError("unknown_field", f"{resource} has no writable field {field!r}.")
    try:
        validated = target.run_validation(value)
        hook = getattr(serializer, f"validate_{field}", None)
        if hook is not None:
            hook(validated)
    except serializers.ValidationError as exc:
        return [str(message) for message in _messages(exc.detail)]
    return []


def _messages(detail: Any) -> list[Any]:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list):
        return [m for value in detail for m in _messages(value)]
    return [detail]
