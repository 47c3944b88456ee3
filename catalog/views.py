"""The catalog API: categories and items, single and bulk verbs (`catalog/urls.py`)."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from catalog.filters import ItemFilter
from catalog.models import Category, Item
from catalog.permissions import IsStaffOrReadOnly
from catalog.serializers import CategorySerializer, ItemSerializer, StockAdjustmentSerializer
from catalog.services import StockOutOfRange, categories, items
from myproject.viewsets import ServiceModelViewSet


class CategoryViewSet(ServiceModelViewSet):
    queryset = Category.objects.all()
    serializer_class = CategorySerializer
    service = categories
    permission_classes = [IsStaffOrReadOnly]
    lookup_field = "uuid"
    filterset_fields = ["slug"]
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "slug"]
    ordering = ["name"]


class ItemViewSet(ServiceModelViewSet):
    # The representation needs only category_id, so listing costs no join and no extra query.
    queryset = Item.objects.all()
    serializer_class = ItemSerializer
    service = items
    permission_classes = [IsStaffOrReadOnly]
    lookup_field = "uuid"
    filterset_class = ItemFilter
    search_fields = ["sku", "name"]
    ordering_fields = ["sku", "name", "price", "stock", "created_at", "updated_at"]
    ordering = ["sku"]

    def get_serializer_class(self) -> type[BaseSerializer]:
        return StockAdjustmentSerializer if self.action == "adjust_stock" else ItemSerializer

    @extend_schema(responses={200: ItemSerializer})
    @action(detail=True, methods=["post"])
    def adjust_stock(self, request: Request, uuid: str | None = None) -> Response:
        """Add to (or take from) the stock atomically: safe under concurrent sales."""
        item = self.get_object()
        serializer = StockAdjustmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            item = items.adjust_stock(item, serializer.validated_data["delta"])
        except StockOutOfRange as exc:
            raise ValidationError({"delta": [str(exc)]}) from exc
        return Response(ItemSerializer(item).data)
