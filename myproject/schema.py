"""
OpenAPI for the bulk verbs (drf-spectacular cannot infer them): POST on a list takes one
object or an array, list-level PUT/PATCH take and return arrays, and list-level DELETE takes
the list's filters. Only `list` is paginated.
"""

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import filters

from myproject.viewsets import ServiceModelViewSet

BULK_UPDATES = {"bulk_update", "partial_bulk_update"}


class AutoSchema(openapi.AutoSchema):
    def _bulk_action(self) -> str | None:
        if isinstance(self.view, ServiceModelViewSet):
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


ERROR_DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# A 400 is field errors or a detail (an object), one error object per bulk element, or a list
# of messages (an invalid query parameter): an object or an array.
VALIDATION_ERROR = {"oneOf": [{"type": "object"}, {"type": "array"}]}
ERRORS = {
    "400": ("Invalid input: field errors, or one error object per bulk element.", VALIDATION_ERROR),
    "401": ("Not authenticated.", ERROR_DETAIL),
    "403": ("Not allowed.", ERROR_DETAIL),
    "404": ("Not found.", ERROR_DETAIL),
    "413": ("Request body too large.", ERROR_DETAIL),
    "429": ("Throttled.", ERROR_DETAIL),
    "503": ("The database is unavailable; retry after `Retry-After` seconds.", ERROR_DETAIL),
}
CONDITIONAL = ("put", "patch", "delete")


def add_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every operation documents the JSON errors it can
    answer with (myproject/exceptions.py, the throttles, the body limit), and single-object
    writes document `If-Match` and its 412."""
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code, (description, schema) in ERRORS.items():
                responses.setdefault(code, _json_response(description, schema))
            if method in CONDITIONAL and "{" in path and "/set_password/" not in path:
                responses.setdefault(
                    "412", _json_response("If-Match names an outdated ETag.", ERROR_DETAIL)
                )
                operation.setdefault("parameters", []).append(
                    {
                        "in": "header",
                        "name": "If-Match",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "The ETag last read; a stale one gets 412.",
                    }
                )
    return result


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
