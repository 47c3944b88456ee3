"""
Page-number pagination with a client-chosen page size from 1 to `max_page_size`; any other
`?page_size=` is a 400 saying the bounds (not silently the nearest one).

The page is read before the count, and the COUNT runs only when the page is full: a page
shorter than its size is the last one and gives the count itself (offset + rows). Most lists
(a category's items, a filtered page) fit one page, and the COUNT was a third of such a
request. A page past the end is a 404, as in DRF, however large its number.
"""

from typing import Any

from django.core.paginator import Page
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

# Past this offset no table of ours has a row; MariaDB refuses an OFFSET beyond 2**64 - 1, so a
# huge page number must not reach it (it did: a 500).
MAX_OFFSET = 2**62


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000
    page_size_query_description = gettext_lazy(
        "Number of results per page, from 1 to 1000 (default 50); any other is a 400."
    )

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: Any = None
    ) -> list[Any] | None:
        raw = request.query_params.get(self.page_query_param) or "1"
        if raw in self.last_page_strings:
            return super().paginate_queryset(queryset, request, view)  # needs the count first
        self.request = request
        size = self.get_page_size(request)
        try:
            number = int(raw)
        except ValueError:
            number = 0
        offset = (number - 1) * size
        if number < 1 or offset > MAX_OFFSET:
            raise NotFound(self.invalid_page_message)
        fetch = getattr(view, "fetch_page", list)  # myproject.rows.ValuesListMixin: values
        rows = fetch(queryset[offset : offset + size])
        if len(rows) == size:
            count = queryset.count()
        elif rows or number == 1:
            count = offset + len(rows)
        else:
            raise NotFound(self.invalid_page_message)
        paginator = self.django_paginator_class(queryset, size)
        paginator.count = count  # Django's cached property, known without a query
        self.page = Page(rows, number, paginator)
        self.display_page_controls = paginator.num_pages > 1 and self.template is not None
        return rows

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param, "")
        if raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"Must be a whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        return size

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters
