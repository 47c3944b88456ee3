"""
The query parameters of every list, strict: a value a list cannot honour is a 400 keyed by its
parameter, never silently ignored (a client that misspells `?enable=flase` must not get every
row, nor a bulk delete act on more than was meant).

    GET /catalog/items/?enable=maybe        -> 400 {"enable": ["Must be true, false, 1 or 0."]}
    GET /catalog/items/?ordering=password   -> 400 {"ordering": ["Cannot order by ... "]}
    GET /catalog/items/?search=%00          -> 400 {"search": ["Null characters ..."]}
    GET /catalog/items/?search=t0+t1+...+t10 -> 400 {"search": ["At most 10 terms ..."]}

`?search=` is DRF's `SearchFilter`, bounded. Each term costs one OR of a case-insensitive
substring match per search field, so thousands of terms made one request cost thousands of
LIKEs per row; and a term longer than any field's value can match nothing. Terms are counted
as DRF splits them (spaces and commas; a quoted phrase is one term), at most
`SEARCH_MAX_TERMS` (`DJANGO_SEARCH_MAX_TERMS`), each at most `TERM_MAX_LENGTH` characters.

The filter sets are django-filter's, on `FilterSet` below (booleans strict); their classes and
form classes are built once per class, not once per request. These backends are the defaults
(settings), so every list and bulk delete uses them, and live queries
(myproject.realtime.queries) validate through the same filter sets.
"""

from typing import Any, ClassVar

import django_filters
from django import forms
from django.conf import settings
from django.db import models
from django.db.models import QuerySet
from django_filters import rest_framework as drf_filters
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

TERM_MAX_LENGTH = 100
TRUE_VALUES = {"true", "1"}
FALSE_VALUES = {"false", "0"}


class StrictBooleanField(forms.Field):
    """`true`/`false`/`1`/`0` (any case); blank means no filter; anything else is an error."""

    widget = forms.TextInput

    def to_python(self, value: Any) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if not text:
            return None
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
        raise forms.ValidationError("Must be true, false, 1 or 0.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class FilterSet(drf_filters.FilterSet):
    """django-filter's REST `FilterSet` with strict booleans, whose form class is built once
    per filter set class (django-filter builds it anew on every request)."""

    FILTER_DEFAULTS: ClassVar[dict] = {
        **drf_filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
        models.NullBooleanField: {"filter_class": StrictBooleanFilter},
    }

    def get_form_class(self) -> type[forms.Form]:
        cls = type(self)
        form_class = cls.__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            cls._form_class = form_class
        return form_class


class FilterBackend(drf_filters.DjangoFilterBackend):
    """django-filter's backend on `FilterSet`: a view's filter set class is built once (for
    `filterset_fields` django-filter makes a new class per request), and a request naming none
    of its parameters is not filtered at all (an empty form filters nothing anyway)."""

    filterset_base = FilterSet
    _classes: ClassVar[dict[tuple[type, type], type | None]] = {}

    def get_filterset_class(self, view: Any, queryset: QuerySet | None = None) -> type | None:
        if queryset is None:
            return super().get_filterset_class(view, queryset)
        key = (type(view), queryset.model)
        if key not in self._classes:
            self._classes[key] = super().get_filterset_class(view, queryset)
        return self._classes[key]

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return queryset
        params = request.query_params
        if not any(name in params for name in filterset_class.base_filters):
            return queryset
        return super().filter_queryset(request, queryset, view)


class SearchFilter(filters.SearchFilter):
    search_description = (
        f"Terms separated by spaces or commas (a quoted phrase is one term), each a "
        f"case-insensitive substring of one of the searched fields; all must match. At most "
        f"{settings.SEARCH_MAX_TERMS} terms of at most {TERM_MAX_LENGTH} characters."
    )

    def get_search_terms(self, request: Request) -> list[str]:
        try:
            terms = super().get_search_terms(request)
        except ValidationError as exc:  # DRF's own checks (a null character) answer a bare list
            detail = exc.detail if isinstance(exc.detail, dict) else {self.search_param: exc.detail}
            raise ValidationError(detail) from exc
        limit = settings.SEARCH_MAX_TERMS
        if len(terms) > limit:
            raise ValidationError({self.search_param: [f"At most {limit} terms in a search."]})
        if any(len(term) > TERM_MAX_LENGTH for term in terms):
            raise ValidationError(
                {self.search_param: [f"Search terms are at most {TERM_MAX_LENGTH} characters."]}
            )
        return terms


class OrderingFilter(filters.OrderingFilter):
    """DRF's `?ordering=`, where a field the list may not be ordered by (for this reader) is a
    400 naming those it may be ordered by, not silently the default order."""

    ordering_description = (
        "Comma-separated fields to order by, `-` before one for descending; the list's "
        "orderable fields are in docs/rest-api.md. Any other is a 400."
    )

    def remove_invalid_fields(
        self, queryset: QuerySet, fields: list[str], view: Any, request: Request
    ) -> list[str]:
        terms = [term for term in fields if term]
        valid = super().remove_invalid_fields(queryset, terms, view, request)
        invalid = [term for term in terms if term not in valid]
        if invalid:
            context = {"request": request}
            allowed = [name for name, _ in self.get_valid_fields(queryset, view, context)]
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Cannot order by {', '.join(invalid)}. Allowed: {', '.join(allowed)}"
                        " (each may be prefixed with - for descending)."
                    ]
                }
            )
        return valid
