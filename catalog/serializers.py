"""The REST representation of the catalog; `price` travels as a string, `category` as a uuid."""

from rest_framework import serializers

from catalog.models import Category, Item
from myproject.bulk import BulkListSerializer, BulkPrimaryKeyRelatedField


class CategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = ["uuid", "name", "slug", "description"]
        read_only_fields = ["uuid"]
        list_serializer_class = BulkListSerializer


class ItemSerializer(serializers.ModelSerializer):
    category = BulkPrimaryKeyRelatedField(
        queryset=Category.objects.all(), pk_field=serializers.UUIDField()
    )

    class Meta:
        model = Item
        fields = [
            "uuid", "sku", "name", "description", "price", "stock", "category", "enable",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["uuid", "created_at", "updated_at"]
        extra_kwargs = {"price": {"min_value": 0}, "stock": {"min_value": 0}}
        list_serializer_class = BulkListSerializer


class StockAdjustmentSerializer(serializers.Serializer):
    delta = serializers.IntegerField(
        min_value=-1_000_000, max_value=1_000_000, help_text="Added to the stock; negative takes."
    )
