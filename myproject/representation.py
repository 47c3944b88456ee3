"""
For serializers that write their own `to_representation` (a list's rows are most of its cost,
and DRF's field-by-field walk, with the fields built anew for every request, was most of that):
the values as DRF's fields would write them, each helper built once per process.

Each such serializer has a test holding its output equal to DRF's walk
(tests/catalog/test_serializers.py, tests/identity/test_serializers.py).
"""

import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from rest_framework import serializers


def decimal_writer(field: models.DecimalField) -> Callable[[Decimal], Any]:
    """What DRF's `DecimalField` for this model field writes (a string, to its places)."""
    return serializers.DecimalField(
        max_digits=field.max_digits, decimal_places=field.decimal_places
    ).to_representation


class DateTimeRepresentation:
    """DRF's `DateTimeField` output, with the current time zone looked up once per serializer
    (one request), not per row and field as DRF does."""

    @cached_property
    def _timezone(self) -> datetime.tzinfo:
        return timezone.get_current_timezone()

    def _datetime(self, value: datetime.datetime | None) -> str | None:
        """ISO 8601 in the current time zone, UTC spelled `Z`."""
        if value is None:
            return None
        text = value.astimezone(self._timezone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
