"""
OpenAPI for the bulk verbs (drf-spectacular cannot infer them): POST on a list takes one
object or an array, list-level PUT/PATCH take and return arrays, and list-level DELETE takes
the list's filters. Only `list` is paginated.
"""

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import filters

from myproject.bulk import BulkModelViewSet

BULK_UPDATES = {"bulk_update", "partial_bulk_update"}


class AutoSchema(openapi.AutoSchema):
    def _bulk_action(self) -> str | None:
        if isinstance(self.view, BulkModelViewSet):
            return getattr(self.view, "action", None)
        return None

    def get_operation_id(self) -> str:
        action = self._bulk_action()
        if action in BULK_UPDATES or action == "bulk_destroy":
            return "_".join([*self._tokenize_path(), action])
        return super().get_operation_id()

    def get_request_serializer(self) -> Any:
        action = self._bulk_action()
        serializer = super().get_request_serializer()
        if action in BULK_UPDATES:
            return type(serializer)(many=True)
        if action == "create":
            return PolymorphicProxySerializer(
                component_name=f"{type(serializer).__name__.removesuffix('Serializer')}CreateOrBulk",
                serializers=[type(serializer), type(serializer)(many=True)],
                resource_type_field_name=None,
                many=False,
            )
        return serializer

    def get_response_serializers(self) -> Any:
        action = self._bulk_action()
        serializer = super().get_response_serializers()
        if action in BULK_UPDATES:
            return type(serializer)(many=True)
        if action == "create":
            return {201: self.get_request_serializer()}
        return serializer

    def get_filter_backends(self) -> list[Any]:
        if self._bulk_action() == "bulk_destroy":
            return [b for b in self.view.filter_backends if b is not filters.OrderingFilter]
        return super().get_filter_backends()

    def _get_paginator(self) -> Any:
        if getattr(self.view, "action", "list") != "list":
            return None
        return super()._get_paginator()
