"""
Bulk operations on DRF's own `ListSerializer`: create, update and destroy many rows in one
request, all or nothing.

    router = BulkRouter()
    router.register("items", ItemViewSet)   # ItemViewSet(myproject.viewsets.ServiceModelViewSet)

    POST   /items/            [{...}, {...}]            -> 201 [...]
    PUT    /items/            [{"uuid": ..., ...}, ...] -> 200 [...]
    PATCH  /items/            [{"uuid": ..., ...}, ...] -> 200 [...]
    DELETE /items/?enable=false                         -> 204

A serializer takes part by naming `BulkListSerializer` as its `Meta.list_serializer_class`.
Writes go through `serializer.save()`, as DRF users expect: `ServiceSerializerMixin` (single
rows) and `BulkListSerializer` (batches) hand them to the model's service, which the viewset
puts in the serializer's context (`"service"`), so that every write publishes its event. A
serializer saved without a service refuses (`NoService`) rather than write without an event.
A failed batch writes nothing and answers 400 with one error object per element, in order
(`{}` for the valid ones). Validation costs a constant number of queries whatever the batch
size: uniqueness and related rows are looked up once for the whole batch, and uniqueness is
checked within the batch too. `djangorestframework-bulk` cannot do this on current DRF (a 500
on bulk update of any model with a unique field), hence this module.
"""

import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import models
from django.db.models import QuerySet
from rest_framework import mixins, routers, serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request, clone_request
from rest_framework.response import Response
from rest_framework.validators import UniqueValidator

from myproject.services import ModelService


class BulkPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary-key relation that, inside a bulk batch, reads from one prefetched query."""

    prefetched: dict[Any, models.Model] | None = None

    def to_internal_value(self, data: Any) -> models.Model:
        if self.prefetched is None:
            return super().to_internal_value(data)
        try:
            return self.prefetched[_as_pk(data)]
        except KeyError:
            self.fail("does_not_exist", pk_value=data)
        except (TypeError, ValueError, AttributeError):
            self.fail("incorrect_type", data_type=type(data).__name__)


def _as_pk(value: Any) -> uuid.UUID:
    if isinstance(value, bool) or not isinstance(value, str | uuid.UUID):
        raise TypeError(value)
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


class NoService(ImproperlyConfigured):
    """A serializer was saved with no service in its context: the write would publish no
    event, so it is not made."""


def service_of(serializer: serializers.BaseSerializer) -> ModelService:
    """The service in the serializer's context (`ServiceModelViewSet` puts its own there)."""
    service = serializer.context.get("service")
    if service is None:
        raise NoService(
            f"{type(serializer).__name__} saves through a service: pass "
            "context={'service': ...} (ServiceModelViewSet does), or call the service."
        )
    return service


class ServiceSerializerMixin:
    """For model serializers: `save()` creates and updates through the context's service."""

    def create(self, validated_data: dict[str, Any]) -> models.Model:
        return service_of(self).create(validated_data)

    def update(self, instance: models.Model, validated_data: dict[str, Any]) -> models.Model:
        return service_of(self).update(instance, validated_data)


class BulkListSerializer(serializers.ListSerializer):
    """
    Validates a batch as one unit. On update, `self.instance` is a queryset; each element
    names its row by primary key and `instances` holds the matched rows, in order.
    """

    instances: list[models.Model]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", settings.BULK_MAX_BATCH)
        kwargs.setdefault("allow_empty", False)
        super().__init__(*args, **kwargs)

    @property
    def model(self) -> type[models.Model]:
        return self.child.Meta.model

    def to_internal_value(self, data: Any) -> list[dict[str, Any]]:
        if not isinstance(data, list):
            raise ValidationError({"non_field_errors": ["Expected a list of objects."]})
        if not data:
            raise ValidationError({"non_field_errors": ["This list may not be empty."]})
        if self.max_length is not None and len(data) > self.max_length:
            raise ValidationError(
                {"non_field_errors": [f"A batch holds at most {self.max_length} elements."]}
            )
        errors: list[dict[str, Any]] = [{} for _ in data]
        instances = self._match_instances(data, errors)
        self._prefetch_relations(data)
        unique = self._take_unique_validators()
        taken = self._taken_unique_values(data, unique, instances)
        seen: dict[str, set] = defaultdict(set)
        validated: list[dict[str, Any]] = []
        for index, item in enumerate(data):
            if errors[index]:
                validated.append({})
                continue
            self.child.instance = instances[index]
            self.child.initial_data = item
            try:
                attrs = self.child.run_validation(item)
            except ValidationError as exc:
                errors[index] = (
                    exc.detail
                    if isinstance(exc.detail, Mapping)
                    else {"non_field_errors": exc.detail}
                )
                validated.append({})
                continue
            for name, message in unique.items():
                key = _unique_key(attrs.get(name))
                if key is None:
                    continue
                if key in taken[name] or key in seen[name]:
                    errors[index].setdefault(name, []).append(message)
                seen[name].add(key)
            validated.append(attrs)
        self.child.instance = None
        if any(errors):
            raise ValidationError(errors)
        self.instances = [instance for instance in instances if instance is not None]
        return validated

    def create(self, validated_data: list[dict[str, Any]]) -> list[models.Model]:
        """The whole batch in the service's few statements and its bulk event."""
        return service_of(self).bulk_create(validated_data)

    def update(
        self, instance: QuerySet, validated_data: list[dict[str, Any]]
    ) -> list[models.Model]:
        """Each matched row (`instances`, in order) with its element, through the service."""
        return service_of(self).bulk_update(list(zip(self.instances, validated_data, strict=True)))

    def _match_instances(
        self, data: list[Any], errors: list[dict[str, Any]]
    ) -> list[models.Model | None]:
        """On update, find every element's row in one query; refuse unknown or repeated keys."""
        if self.instance is None:
            for index, item in enumerate(data):
                if not isinstance(item, Mapping):
                    errors[index] = {"non_field_errors": ["Expected an object."]}
            return [None] * len(data)
        pk_name = self.model._meta.pk.name
        keys: list[uuid.UUID | None] = []
        for index, item in enumerate(data):
            key = None
            if not isinstance(item, Mapping):
                errors[index] = {"non_field_errors": ["Expected an object."]}
            elif item.get(pk_name) in (None, ""):
                errors[index] = {pk_name: ["This field is required to update a row."]}
            else:
                try:
                    key = _as_pk(item[pk_name])
                except (TypeError, ValueError, AttributeError):
                    errors[index] = {pk_name: ["Must be a valid UUID."]}
            keys.append(key)
        rows = self.instance.in_bulk([key for key in keys if key is not None])
        matched: list[models.Model | None] = []
        seen: set[uuid.UUID] = set()
        for index, key in enumerate(keys):
            if key is not None and key not in rows:
                errors[index] = {pk_name: ["No such row, or not yours to change."]}
            elif key is not None and key in seen:
                errors[index] = {pk_name: ["This row appears more than once in the batch."]}
            if key is not None:
                seen.add(key)
            matched.append(rows.get(key) if key is not None else None)
        return matched

    def _prefetch_relations(self, data: list[Any]) -> None:
        """Fetch every related row the batch names in one query per relation."""
        for name, field in self.child.fields.items():
            if not isinstance(field, BulkPrimaryKeyRelatedField) or field.read_only:
                continue
            keys = set()
            for item in data:
                if isinstance(item, Mapping):
                    try:
                        keys.add(_as_pk(item.get(name)))
                    except (TypeError, ValueError, AttributeError):
                        continue
            field.prefetched = field.get_queryset().in_bulk(list(keys))

    def _take_unique_validators(self) -> dict[str, str]:
        """Swap per-element uniqueness queries for one query per unique field."""
        unique: dict[str, str] = {}
        for name, field in self.child.fields.items():
            validators = [v for v in field.validators if isinstance(v, UniqueValidator)]
            if validators:
                unique[name] = str(validators[0].message)
                field.validators = [v for v in field.validators if v not in validators]
        return unique

    def _taken_unique_values(
        self, data: list[Any], unique: dict[str, str], instances: list[models.Model | None]
    ) -> dict[str, set]:
        """Values of unique fields already held by rows outside this batch."""
        own = [instance.pk for instance in instances if instance is not None]
        taken: dict[str, set] = {}
        for name in unique:
            field = self.child.fields[name]
            # Only values the field could take: a longer one fails validation anyway, and would
            # only lengthen the query (a statement over max_allowed_packet fails whole).
            longest = getattr(field, "max_length", None)
            values = [item.get(name) for item in data if isinstance(item, Mapping)]
            values = [v for v in values if isinstance(v, str) and v]
            values = [v for v in values if longest is None or len(v) <= longest]
            source = field.source
            rows = self.model._default_manager.filter(**{f"{source}__in": values})
            rows = rows.exclude(pk__in=own).values_list(source, flat=True)
            taken[name] = {_unique_key(value) for value in rows}
        return taken


def _unique_key(value: Any) -> Any:
    """Compare as MySQL's case-insensitive collations do, so the database never disagrees."""
    if isinstance(value, str):
        return value.strip().casefold() or None
    return value


class BulkMetadata(SimpleMetadata):
    """OPTIONS: DRF's metadata takes PUT to mean one object and looks it up; on a list route
    PUT is a bulk update, with no object to look up (an assertion, then a 500, otherwise)."""

    def determine_actions(self, request: Request, view: Any) -> dict[str, Any]:
        if (view.lookup_url_kwarg or view.lookup_field) in view.kwargs:
            return super().determine_actions(request, view)
        actions = {}
        for method in {"PUT", "POST"} & set(view.allowed_methods):
            view.request = clone_request(request, method)
            try:
                view.check_permissions(view.request)
            except (APIException, PermissionDenied):
                continue
            else:
                actions[method] = self.get_serializer_info(view.get_serializer())
            finally:
                view.request = request
        return actions


class BulkRouter(routers.DefaultRouter):
    """`DefaultRouter` plus list-level PUT, PATCH and DELETE for bulk update and destroy."""

    routes = [
        routers.Route(
            url=r"^{prefix}{trailing_slash}$",
            mapping={
                "get": "list",
                "post": "create",
                "put": "bulk_update",
                "patch": "partial_bulk_update",
                "delete": "bulk_destroy",
            },
            name="{basename}-list",
            detail=False,
            initkwargs={"suffix": "List"},
        ),
        *routers.DefaultRouter.routes[1:],
    ]


class BulkCreateModelMixin(mixins.CreateModelMixin):
    """POST an object to create one row, or a list to create them all."""

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not isinstance(request.data, list):
            return super().create(request, *args, **kwargs)
        serializer = self.get_serializer(data=request.data, many=True)
        serializer.is_valid(raise_exception=True)
        self.perform_bulk_create(serializer)
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class BulkPermissionMixin:
    """Object-level permission for bulk writes. A permission class that defines
    `has_bulk_permission(request, view, queryset)` decides on the whole set of rows a bulk
    update or delete would touch; one refusal refuses the request (403), nothing written.
    Keep it to a query or two: it runs once per request, not once per row."""

    def check_bulk_permissions(self, request: Request, queryset: QuerySet) -> None:
        for permission in self.get_permissions():
            allowed = getattr(permission, "has_bulk_permission", None)
            if allowed is not None and not allowed(request, self, queryset):
                self.permission_denied(
                    request,
                    message=getattr(permission, "message", None),
                    code=getattr(permission, "code", None),
                )


class BulkUpdateModelMixin(BulkPermissionMixin):
    """PUT or PATCH a list of objects, each naming its row by primary key."""

    def bulk_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partial = kwargs.pop("partial", False)
        queryset = self.filter_queryset(self.get_queryset())
        serializer = self.get_serializer(queryset, data=request.data, many=True, partial=partial)
        serializer.is_valid(raise_exception=True)
        self.check_bulk_permissions(
            request, queryset.filter(pk__in=[row.pk for row in serializer.instances])
        )
        self.perform_bulk_update(serializer)
        return Response(serializer.data)

    def partial_bulk_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        kwargs["partial"] = True
        return self.bulk_update(request, *args, **kwargs)


class BulkDestroyModelMixin(BulkPermissionMixin):
    """
    DELETE the filtered set; refused (400) unless the filters narrow it. What counts is what
    the filter backends did to the query, not which parameters were sent: a blank value, a
    search that reduces to no term, an unknown parameter leave the WHERE clause as it was; an
    empty quoted phrase (`?search=""`, a term every row contains) or `?price_min=0` change it
    but still match every row. Both are refused, at the cost of one or two queries.
    """

    def bulk_destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        everything = self.get_queryset()
        queryset = self.filter_queryset(everything)
        if queryset.query.where == everything.query.where:
            raise ValidationError(
                {
                    "detail": "Bulk delete needs a filter that narrows the set (e.g. "
                    "?enable=false); refusing to delete everything."
                }
            )
        if not everything.exclude(pk__in=queryset.values("pk")).exists() and queryset.exists():
            raise ValidationError(
                {"detail": "This filter matches every row; refusing to delete everything."}
            )
        self.check_bulk_permissions(request, queryset)
        self.perform_bulk_destroy(queryset)
        return Response(status=status.HTTP_204_NO_CONTENT)
