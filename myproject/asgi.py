"""
ASGI entry point: daphne serves the WebSocket routes (and HTTP, which is how `make run` serves
everything from one process).

A handshake passes the origin check (the Origin header must name one of ALLOWED_HOSTS), then
authentication (`?token=` or the session cookie), then the routes of `myproject.routing`.
"""

import os
import sys
from typing import Any

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
django_asgi_app = get_asgi_application()  # before importing anything that touches models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from identity.middleware import WebSocketAuthMiddlewareStack  # noqa: E402
from myproject.db import close_after_asgi_request  # noqa: E402
from myproject.routing import websocket_urlpatterns  # noqa: E402


def _close_protocol_violations_with_a_code() -> None:
    """daphne's WebSocket library (autobahn) answers a protocol violation (a frame over
    daphne's 1 MiB limit, invalid UTF-8 in a text frame) by dropping the TCP connection, so
    the client sees no close code. Have it send the close frame (1009, 1007, 1002) instead."""
    if "daphne.ws_protocol" not in sys.modules:
        return  # not served by daphne
    from daphne.ws_protocol import WebSocketFactory

    init = WebSocketFactory.__init__

    def __init__(self: WebSocketFactory, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.setProtocolOptions(failByDrop=False)

    WebSocketFactory.__init__ = __init__


_close_protocol_violations_with_a_code()
request_finished.connect(close_after_asgi_request, sender=ASGIHandler)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            WebSocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
