"""WebSocket routes: each app's own, nested under its prefix; anything else is refused."""

from importlib import import_module

from channels.routing import URLRouter
from django.apps import apps
from django.urls import path, re_path

from myproject.realtime.consumers import NoSuchRoute

# Apps whose routing module nginx reaches at /<app>/ws/ (examples: only when installed).
APPS = ["identity", "catalog", "examples"]

websocket_urlpatterns = [
    *(
        path(f"{app}/", URLRouter(import_module(f"{app}.routing").websocket_urlpatterns))
        for app in APPS
        if apps.is_installed(app)
    ),
    re_path(r"", NoSuchRoute.as_asgi()),
]
