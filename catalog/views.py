"""The catalog API: categories and items, single and bulk verbs (`catalog/urls.py`)."""

from catalog.filters import ItemFilter
from catalog.models import Category, Item
from catalog.permissions import IsStaffOrReadOnly
from catalog.serializers import CategorySerializer, ItemSerializer
from catalog.services import categories, items
from myproject.bulk import BulkModelViewSet


class CategoryViewSet(BulkModelViewSet):
    queryset = Category.objects.all()
    serializer_class = CategorySerializer
    service = categories
    permission_classes = [IsStaffOrReadOnly]
    lookup_field = "uuid"
    filterset_fields = ["slug"]
    search_fields = ["name", "slug"]
    ordering_fields = ["name", "slug"]
    ordering = ["name"]


class ItemViewSet(BulkModelViewSet):
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
