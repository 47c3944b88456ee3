"""WebSocket routes: each app's own, nested under its prefix; anything else is refused."""

from channels.routing import URLRouter
from django.urls import path, re_path

import catalog.routing
import identity.routing
from myproject.realtime.consumers import NoSuchRoute

websocket_urlpatterns = [
    path("identity/", URLRouter(identity.routing.websocket_urlpatterns)),
    path("catalog/", URLRouter(catalog.routing.websocket_urlpatterns)),
    re_path(r"", NoSuchRoute.as_asgi()),
]
