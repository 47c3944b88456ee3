"""
The ceiling's WSGI app: the whole Django request cycle (settings, middleware, URL routing) with
a view that answers the same JSON as the DRF list from memory, with no serializer and no
query. DRF list / this = what DRF and the database cost on top of Django itself.

    BENCH_CONSTANT_JSON=var/bench/items-50.json uwsgi --module bench.constant_app:application
"""

import json
import os
from pathlib import Path

from django.http import HttpRequest, JsonResponse
from django.urls import path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "myproject.settings")

from django.conf import settings
from django.core.wsgi import get_wsgi_application

BODY = json.loads(Path(os.environ["BENCH_CONSTANT_JSON"]).read_text())


def constant(request: HttpRequest) -> JsonResponse:
    """The DRF list's JSON, encoded afresh each time like any JsonResponse."""
    return JsonResponse(BODY)


def _urlpatterns() -> list:
    from myproject.urls import urlpatterns

    return [path("bench/constant/", constant), *urlpatterns]


urlpatterns = None  # set below, once Django is configured
settings.ROOT_URLCONF = __name__
application = get_wsgi_application()
urlpatterns = _urlpatterns()
