"""
Django's own floor for the catalog list (make bench: floor): the plainest Django views that
answer the same page, in a uWSGI of the bench's own beside /healthz and the API's list. What
DRF, django-filter, permissions and the schema's promises cost is the distance between the
API's list and `floor/items/`; what an exact `count` costs, the distance between that and
`floor/uncounted/`.

    uwsgi --module bench.floor ...     (bench.stack.Bench.server(..., module="bench.floor"))
"""

from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from myproject.wsgi import application  # sets Django up; the WSGI callable uWSGI asks for

COLUMNS = ("uuid", "sku", "name", "description", "price", "stock", "category_id", "enable",
           "created_at", "updated_at")  # fmt: skip
SIZE = 50


def _rows() -> list[dict[str, Any]]:
    """The first page, ordered by sku as the API's list is, as the API represents an item."""
    from catalog.models import Item

    return [
        {
            "uuid": str(uuid),
            "sku": sku,
            "name": name,
            "description": description,
            "price": str(price),
            "stock": stock,
            "category": str(category),
            "enable": enable,
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "updated_at": updated.isoformat().replace("+00:00", "Z"),
        }
        for uuid, sku, name, description, price, stock, category, enable, created, updated in (
            Item.objects.order_by("sku").values_list(*COLUMNS)[:SIZE]
        )
    ]


def _page(request: HttpRequest, counted: bool) -> HttpResponse:
    from catalog.models import Item
    from myproject.realtime import topics
    from myproject.realtime.rest import HEADER, current_position

    position = current_position(topics.CATALOG)  # read before the query, as the API does
    results = _rows()
    body: dict[str, Any] = {"next": request.build_absolute_uri("?page=2"), "previous": None,
                            "results": results}  # fmt: skip
    if counted:
        body = {"count": Item.objects.count(), **body}
    response = HttpResponse(orjson.dumps(body), content_type="application/json")
    if position is not None:
        response[HEADER] = str(position)
    return response


def items(request: HttpRequest) -> HttpResponse:
    """The page with its exact count: two queries and the stream position."""
    return _page(request, counted=True)


def uncounted(request: HttpRequest) -> HttpResponse:
    """The page without a count: one query and the stream position."""
    return _page(request, counted=False)


__all__ = ["application"]
urlpatterns = [
    path("floor/items/", items),
    path("floor/uncounted/", uncounted),
    path("", include("myproject.urls")),
]
settings.ROOT_URLCONF = __name__
