"""
The base viewset of every API: DRF's `ModelViewSet` with bulk verbs (myproject.bulk), ETags
(myproject.conditional), stream positions (myproject.realtime.rest) and lists read as values
(myproject.rows).

Writes go through the serializer as in any DRF viewset: `perform_create` and `perform_update`
are DRF's own `serializer.save()`, so a serializer's `create()`/`update()` override is
honoured. The viewset puts its `service` in the serializer's context; the serializers'
`create()`/`update()` (`ServiceSerializerMixin`, `BulkListSerializer`) hand the write to it,
so every write publishes its event.

    class ItemViewSet(ServiceModelViewSet):
        queryset = Item.objects.all()
        serializer_class = ItemSerializer   # ServiceSerializerMixin, BulkListSerializer
        service = items
"""

from typing import Any

from django.db import models
from django.db.models import QuerySet
from rest_framework import viewsets

from myproject.bulk import (
    BulkCreateModelMixin,
    BulkDestroyModelMixin,
    BulkListSerializer,
    BulkMetadata,
    BulkUpdateModelMixin,
)
from myproject.conditional import ConditionalMixin
from myproject.realtime.rest import StreamPositionMixin
from myproject.rows import ValuesListMixin
from myproject.services import ModelService


class ServiceModelViewSet(
    StreamPositionMixin,
    ConditionalMixin,
    ValuesListMixin,
    BulkCreateModelMixin,
    BulkUpdateModelMixin,
    BulkDestroyModelMixin,
    viewsets.ModelViewSet,
):
    """A `ModelViewSet` with bulk verbs, ETags and stream positions, whose writes all go
    through `service` (via the serializers' `save()`, or directly for deletes)."""

    service: ModelService
    metadata_class = BulkMetadata

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "service": self.service}

    def perform_destroy(self, instance: models.Model) -> None:
        self.service.delete(instance)

    def perform_bulk_create(self, serializer: BulkListSerializer) -> None:
        serializer.save()

    def perform_bulk_update(self, serializer: BulkListSerializer) -> None:
        serializer.save()

    def perform_bulk_destroy(self, queryset: QuerySet) -> None:
        self.service.bulk_delete(queryset)
