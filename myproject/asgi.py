"""ASGI entry point: daphne serves HTTP (embedded default) and the WebSocket routes from here."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")
django_asgi_app = get_asgi_application()

application = django_asgi_app
