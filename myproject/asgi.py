"""
ASGI entry point: daphne serves the WebSocket routes (and HTTP, which is how `make run` serves
everything from one process).

A handshake passes the origin check (the Origin header must name one of ALLOWED_HOSTS), then
authentication (`?token=` or the session cookie), then the routes of `myproject.routing`.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
django_asgi_app = get_asgi_application()  # before importing anything that touches models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from identity.middleware import WebSocketAuthMiddlewareStack  # noqa: E402
from myproject.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            WebSocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
