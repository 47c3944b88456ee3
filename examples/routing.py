from django.urls import re_path

from examples.consumers import AsyncChatConsumer, ChatConsumer

ROOM = r"(?P<room>[A-Za-z0-9_-]{1,64})"

websocket_urlpatterns = [
    re_path(rf"^ws/chat/{ROOM}/$", ChatConsumer.as_asgi()),
    re_path(rf"^ws/async-chat/{ROOM}/$", AsyncChatConsumer.as_asgi()),
]
