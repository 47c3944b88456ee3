"""Writes on the catalog, each publishing its event to topic `catalog` on commit."""

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Category, Item
from catalog.serializers import CategorySerializer, ItemSerializer
from myproject.realtime import topics
from myproject.services import ModelService


class CategoryService(ModelService[Category]):
    model = Category
    resource = "category"
    topic = topics.CATALOG
    serializer_class = CategorySerializer


class ItemService(ModelService[Item]):
    model = Item
    resource = "item"
    topic = topics.CATALOG
    serializer_class = ItemSerializer

    @transaction.atomic
    def adjust_stock(self, item: Item, delta: int) -> Item:
        """Add `delta` (negative: take) to the stock; refused, changing nothing, if the stock
        would go below zero or past what its column holds. The row is locked first: a bare
        `UPDATE ... WHERE stock >= n` was seen to match no row under contention on MariaDB
        (READ COMMITTED), refusing sales that had stock."""
        current = Item.objects.select_for_update().get(pk=item.pk)
        if current.stock + delta < 0:
            raise StockOutOfRange("Not enough stock.")
        _, maximum = connection.ops.integer_field_range("IntegerField")
        if current.stock + delta > maximum:
            raise StockOutOfRange(f"The stock would exceed {maximum}.")
        Item.objects.filter(pk=item.pk).update(stock=F("stock") + delta, updated_at=timezone.now())
        item.refresh_from_db()
        self._publish("updated", [(self.represent(current), self.represent(item))])
        return item


class StockOutOfRange(Exception):
    """The adjustment would take the stock below zero or past its column's maximum."""


categories = CategoryService()
items = ItemService()
