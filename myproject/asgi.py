"""
ASGI entry point: daphne serves the WebSocket routes (and HTTP, which is how `make run` serves
everything from one process).

A handshake passes the origin check (the Origin header must name one of ALLOWED_HOSTS), then
authentication (`?token=` or the session cookie), then the routes of `myproject.routing`.
"""

import os
import sys
from pathlib import Path

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
django_asgi_app = get_asgi_application()  # before importing anything that touches models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from identity.middleware import WebSocketAuthMiddlewareStack  # noqa: E402
from myproject import logs  # noqa: E402
from myproject.db import close_after_asgi_request  # noqa: E402
from myproject.realtime import daphne, outbox  # noqa: E402
from myproject.realtime.consumers import allowed_origins  # noqa: E402
from myproject.routing import websocket_urlpatterns  # noqa: E402

request_finished.connect(close_after_asgi_request, sender=ASGIHandler)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": daphne.ProtocolInScope(
            allowed_origins(WebSocketAuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)

if Path(sys.argv[0]).name == "daphne":
    # Served by the daphne command, not imported by a test or a tool. (Any Django process
    # imports daphne's server module: `daphne` is an installed app.)
    outbox.relay().start()  # every serving process relays the outbox
    logs.use_daphne_access_log()  # the query strings of URLs stay out of daphne's access log
    daphne.tune()  # last: once the application is loaded
