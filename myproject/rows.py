"""
Lists read as values: a page's rows come from the database as the JSON values they become, and
are put into dicts by a function built once per serializer class from its own fields, with no
model instance, no field object and no Python-side conversion per row. On a 50-row page that
work was most of the request.

MariaDB writes the text itself: a uuid as its hyphenated text, a decimal as its digits to its
places, a UTC datetime as DRF writes it (ISO 8601, `Z`, microseconds only when not zero).

    reader = RowReader.of(ItemSerializer)     # None: this serializer takes DRF's path
    rows = reader.read(queryset[0:50])         # [{"uuid": "…", "price": "9.99", …}, …]

A serializer takes this path when it says its `to_representation` is DRF's walk of its fields
(`values_representation = True`, with a test holding them equal) and every field it writes is
a plain column of a kind below; its `reduce_rows(rows, context)`, if any, then applies what it
does per reader (non-staff readers see only the public fields of other users). Anything else
(method fields, nested serializers, another database, a current time zone other than UTC) takes
DRF's path. tests/catalog/test_lists.py holds both paths' lists equal, for every filter.
"""

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist
from django.db import connections, models
from django.db.models import F, Func, Value
from django.db.models.functions import Cast
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

Row = dict[str, Any]

_TEXT = (models.CharField, models.TextField)  # Email, Slug, URL fields are CharFields
_INTEGER = (models.IntegerField,)  # Small, Big, Positive… too
_ISO_UTC = "%Y-%m-%dT%H:%i:%s"


def _datetime_text(column: str) -> Func:
    """DRF's UTC datetime: `2026-01-02T03:04:05Z`, or `…05.000600Z` with microseconds."""
    whole = Func(F(column), Value(_ISO_UTC + "Z"), function="DATE_FORMAT")
    fraction = Func(F(column), Value(_ISO_UTC + ".%fZ"), function="DATE_FORMAT")
    return Func(
        Func(F(column), function="MICROSECOND"),
        fraction,
        whole,
        function="IF",
        output_field=models.CharField(),
    )


def _column(field: models.Field) -> tuple[Any, str] | None:
    """The expression that reads `field` as its JSON value, and how Python finishes it."""
    if isinstance(field, models.ForeignKey):
        target = field.target_field
        if not isinstance(target, models.UUIDField):
            return None
        return Cast(field.attname, models.CharField()), "plain"
    if isinstance(field, models.UUIDField):
        return Cast(field.attname, models.CharField()), "plain"
    if isinstance(field, models.BooleanField):
        return F(field.attname), "bool"
    if isinstance(field, models.DecimalField):
        return Cast(field.attname, models.CharField()), "plain"
    if isinstance(field, models.DateTimeField):
        return _datetime_text(field.attname), "plain"
    if isinstance(field, _TEXT + _INTEGER):
        return F(field.attname), "plain"
    return None


def _plain(field: serializers.Field) -> bool:
    """Whether DRF writes this field's value as MariaDB's text (or a plain int, str, bool)."""
    if isinstance(field, serializers.SerializerMethodField | serializers.BaseSerializer):
        return False
    if isinstance(field, serializers.DecimalField):
        coerce = getattr(field, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
        return coerce and not field.localize
    if isinstance(field, serializers.BigIntegerField):
        return not getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
    if isinstance(field, serializers.DateTimeField):
        output = getattr(field, "format", api_settings.DATETIME_FORMAT)
        return output == ISO_8601 and getattr(field, "timezone", None) is None
    if isinstance(field, serializers.UUIDField):
        return field.uuid_format == "hex_verbose"
    if isinstance(field, serializers.PrimaryKeyRelatedField) and field.pk_field is not None:
        return _plain(field.pk_field)
    return True


def _builder(names: tuple[str, ...], booleans: tuple[str, ...]) -> Callable[[tuple], Row]:
    """A row tuple to its dict; MariaDB gives booleans as 0/1."""
    if not booleans:
        return lambda row: dict(zip(names, row, strict=True))

    def build(row: tuple) -> Row:
        data = dict(zip(names, row, strict=True))
        for name in booleans:
            value = data[name]
            data[name] = None if value is None else value == 1
        return data

    return build


class RowReader:
    """Reads a queryset's rows as a serializer class represents them (see the module doc)."""

    _readers: ClassVar[dict[type, "RowReader | None"]] = {}

    def __init__(self, names: list[str], columns: list[Any], build: Callable[[tuple], Row]):
        self.names = names
        self.columns = columns
        self.build = build

    @classmethod
    def of(cls, serializer_class: type[serializers.BaseSerializer]) -> "RowReader | None":
        """The reader of this serializer class, built once; None if it takes DRF's path."""
        if serializer_class not in cls._readers:
            cls._readers[serializer_class] = cls._build(serializer_class)
        return cls._readers[serializer_class]

    @classmethod
    def _build(cls, serializer_class: type) -> "RowReader | None":
        if not getattr(serializer_class, "values_representation", False):
            return None
        model = serializer_class.Meta.model
        names, columns, booleans = [], [], []
        for name, field in serializer_class().fields.items():
            if field.write_only:
                continue
            if not _plain(field):
                return None
            try:
                model_field = model._meta.get_field(field.source)
            except FieldDoesNotExist:
                return None
            column = _column(model_field)
            if column is None:
                return None
            expression, finish = column
            names.append(name)
            columns.append(expression)
            if finish == "bool":
                booleans.append(name)
        return cls(names, columns, _builder(tuple(names), tuple(booleans)))

    @staticmethod
    def usable(queryset: models.QuerySet) -> bool:
        """Only where the database writes the text as DRF would: MariaDB (whose uuids are
        native, hyphenated text; MySQL's are bare hex), in UTC."""
        connection = connections[queryset.db]
        return (
            connection.vendor == "mysql"
            and connection.features.has_native_uuid_field
            and timezone.get_current_timezone_name() == "UTC"
        )

    def read(self, queryset: models.QuerySet) -> list[Row]:
        """The rows of `queryset` (a page: already sliced), as their representations."""
        build = self.build
        return [build(row) for row in queryset.values_list(*self.columns)]


class ValuesListMixin:
    """For viewsets: `list` reads its page through the serializer class's `RowReader` where it
    can (see the module doc), DRF's serializer otherwise; the same JSON either way."""

    _row_reader: RowReader | None = None

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer_class = self.get_serializer_class()
        reader = RowReader.of(serializer_class)
        if reader is None or self.paginator is None:
            return super().list(request, *args, **kwargs)
        self._row_reader = reader
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        if page and not isinstance(page[0], dict):  # instances: DRF's path after all
            data = self.get_serializer(page, many=True).data
        else:
            reduce = getattr(serializer_class, "reduce_rows", None)
            data = reduce(page, self.get_serializer_context()) if reduce else page
        return self.get_paginated_response(data)

    def fetch_page(self, queryset: models.QuerySet) -> Sequence[Any]:
        """The paginator's read of a page (already sliced): values, or model instances."""
        reader = self._row_reader
        if reader is not None and RowReader.usable(queryset):
            return reader.read(queryset)
        return list(queryset)
