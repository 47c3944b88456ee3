"""The REST representation of the catalog; `price` travels as a string, `category` as a uuid."""

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from catalog.models import Category, Item
from myproject.bulk import BulkListSerializer, BulkPrimaryKeyRelatedField, ServiceSerializerMixin
from myproject.representation import DateTimeRepresentation, decimal_writer


class CategorySerializer(ServiceSerializerMixin, serializers.ModelSerializer):
    values_representation = True  # DRF's walk of plain columns: lists read as values

    class Meta:
        model = Category
        fields = ["uuid", "name", "slug", "description"]
        read_only_fields = ["uuid"]
        list_serializer_class = BulkListSerializer


class ItemSerializer(DateTimeRepresentation, ServiceSerializerMixin, serializers.ModelSerializer):
    category = BulkPrimaryKeyRelatedField(
        queryset=Category.objects.all(), pk_field=serializers.UUIDField()
    )
    values_representation = True  # to_representation is DRF's walk: lists read as values

    class Meta:
        model = Item
        fields = [
            "uuid", "sku", "name", "description", "price", "stock", "category", "enable",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["uuid", "created_at", "updated_at"]
        extra_kwargs = {"price": {"min_value": 0}, "stock": {"min_value": 0}}
        list_serializer_class = BulkListSerializer

    def validate_price(self, value: Decimal) -> Decimal:
        # "-0" passes `min_value`, and MySQL stores it as 0.00: answer (and publish) what is
        # stored, not "-0.00".
        return value + 0

    def to_representation(self, item: Any) -> dict[str, Any]:
        """The output of DRF's field-by-field walk (tests/catalog/test_serializers.py holds them
        equal) at about a third of its cost: in lists of 50-200 items that walk was most of the
        request (bench/: per-row cost)."""
        if not isinstance(item, Item):  # validated data, not a saved row
            return super().to_representation(item)
        return {
            "uuid": str(item.uuid),
            "sku": item.sku,
            "name": item.name,
            "description": item.description,
            "price": self._price(item.price),
            "stock": item.stock,
            "category": str(item.category_id),
            "enable": item.enable,
            "created_at": self._datetime(item.created_at),
            "updated_at": self._datetime(item.updated_at),
        }

    # Built once: reading `self.fields["price"]` built every field anew on each request.
    _price = staticmethod(decimal_writer(Item._meta.get_field("price")))


class StockAdjustmentSerializer(serializers.Serializer):
    delta = serializers.IntegerField(
        min_value=-1_000_000, max_value=1_000_000, help_text="Added to the stock; negative takes."
    )
