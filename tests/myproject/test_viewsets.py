"""
`ServiceModelViewSet` (myproject/viewsets.py): writes go through `serializer.save()` as in any
DRF viewset, so a serializer's `create()` override is honoured; the service the viewset puts in
the context does the write and publishes its event; batches go through the service's bulk
methods; a serializer saved without a service refuses.
"""

from typing import Any

import pytest
from rest_framework.test import APIRequestFactory, force_authenticate

from catalog.models import Category, Item
from catalog.serializers import CategorySerializer, ItemSerializer
from catalog.services import CategoryService
from catalog.views import CategoryViewSet
from myproject.bulk import NoService
from myproject.realtime.models import Outbox
from tests.factories import CategoryFactory

pytestmark = pytest.mark.django_db


class ShoutingSerializer(CategorySerializer):
    """A serializer whose own `create()` changes what is written."""

    def create(self, validated_data: dict[str, Any]) -> Category:
        return super().create({**validated_data, "name": validated_data["name"].upper()})


class RecordingService(CategoryService):
    """The real category service, noting which of its methods wrote."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def create(self, fields: dict[str, Any]) -> Category:
        self.calls.append("create")
        return super().create(fields)

    def update(self, instance: Category, fields: dict[str, Any]) -> Category:
        self.calls.append("update")
        return super().update(instance, fields)

    def bulk_create(self, rows: Any) -> list[Category]:
        self.calls.append("bulk_create")
        return super().bulk_create(rows)

    def bulk_update(self, changes: Any) -> list[Category]:
        self.calls.append("bulk_update")
        return super().bulk_update(changes)


def call(staff, method: str, data: Any, serializer=CategorySerializer, service=None, **kwargs):
    """The categories' viewset, with this serializer and service, as staff."""
    actions = {"post": "create", "put": "bulk_update", "patch": "partial_update"}
    initkwargs = {"serializer_class": serializer, **({"service": service} if service else {})}
    view = CategoryViewSet.as_view(actions, **initkwargs)
    request = getattr(APIRequestFactory(), method)("/catalog/categories/", data, format="json")
    force_authenticate(request, user=staff)
    return view(request, **kwargs)


def events() -> list[str]:
    return [row.payload for row in Outbox.objects.order_by("pk")]


def test_a_serializers_create_override_is_honoured_and_the_event_published(staff):
    response = call(staff, "post", {"name": "shoes", "slug": "shoes"}, ShoutingSerializer)
    assert response.status_code == 201, response.data
    assert response.data["name"] == "SHOES"
    assert Category.objects.get(slug="shoes").name == "SHOES"
    (payload,) = events()
    assert '"category.created"' in payload
    assert '"SHOES"' in payload


def test_single_writes_go_through_the_service_in_the_context(staff):
    service = RecordingService()
    assert call(staff, "post", {"name": "a", "slug": "a"}, service=service).status_code == 201
    category = Category.objects.get(slug="a")
    response = call(staff, "patch", {"name": "b"}, service=service, uuid=str(category.uuid))
    assert response.status_code == 200, response.data
    assert service.calls == ["create", "update"]
    created, updated = events()
    assert '"category.created"' in created
    assert '"category.updated"' in updated


def test_batches_go_through_the_services_bulk_methods(staff):
    service = RecordingService()
    rows = [{"name": f"c{n}", "slug": f"c{n}"} for n in range(3)]
    assert call(staff, "post", rows, service=service).status_code == 201
    changes = [{"uuid": str(c.uuid), "name": c.name + "!", "slug": c.slug}
               for c in Category.objects.all()]  # fmt: skip
    assert call(staff, "put", changes, service=service).status_code == 200
    assert service.calls == ["bulk_create", "bulk_update"]
    assert sorted(Category.objects.values_list("name", flat=True)) == ["c0!", "c1!", "c2!"]
    created, updated = events()
    assert '"category.bulk_created"' in created
    assert '"category.bulk_updated"' in updated


@pytest.mark.parametrize("many", [False, True])
def test_a_serializer_without_a_service_refuses_to_save(many):
    category = CategoryFactory()
    data = {"sku": "S-1", "name": "n", "price": "1.00", "stock": 1, "category": str(category.uuid)}
    serializer = ItemSerializer(data=[data] if many else data, many=many)
    assert serializer.is_valid(), serializer.errors
    with pytest.raises(NoService):
        serializer.save()
    assert not Item.objects.exists()
    assert not events()
