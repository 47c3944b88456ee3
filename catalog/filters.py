"""Item filters: by category, availability, price range and stock."""

from collections.abc import Callable
from typing import Any, ClassVar

import django_filters
from django.db.models import QuerySet

from catalog.models import Item
from myproject.filters import FilterSet, StrictBooleanFilter


class ItemFilter(FilterSet):
    category = django_filters.UUIDFilter(field_name="category_id")
    enable = StrictBooleanFilter()
    price_min = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    price_max = django_filters.NumberFilter(field_name="price", lookup_expr="lte")
    in_stock = StrictBooleanFilter(method="filter_in_stock")

    class Meta:
        model = Item
        fields = ["category", "enable", "price_min", "price_max", "in_stock"]

    def filter_in_stock(self, queryset: QuerySet, name: str, value: bool) -> QuerySet:
        return queryset.filter(stock__gt=0) if value else queryset.filter(stock=0)

    # The same tests on a row's representation, for live queries (myproject.realtime.queries).
    live_tests: ClassVar[dict[str, Callable[[dict[str, Any], Any], bool]]] = {
        "in_stock": lambda row, value: (row["stock"] > 0) == value,
    }
