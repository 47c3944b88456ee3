"""Telling a chat room something from a view, over the channel layer (docs/consumers.md)."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from examples.consumers import room_group


@extend_schema(responses={202: None})
@api_view(["POST"])
@permission_classes([permissions.IsAdminUser])
def announce(request: Request, room: str) -> Response:
    """POST {"text": ...}: every socket of the room gets it, from whichever daphne."""
    text = str(request.data.get("text", ""))[:1000]
    async_to_sync(get_channel_layer().group_send)(
        room_group(room), {"type": "chat.message", "text": text, "sender": None}
    )
    return Response(status=status.HTTP_202_ACCEPTED)
