"""Writes on the catalog, each publishing its event to group `catalog` on commit."""

from catalog.models import Category, Item
from catalog.serializers import CategorySerializer, ItemSerializer
from myproject import events
from myproject.services import ModelService


class CategoryService(ModelService[Category]):
    model = Category
    resource = "category"
    group = events.CATALOG_GROUP
    serializer_class = CategorySerializer


class ItemService(ModelService[Item]):
    model = Item
    resource = "item"
    group = events.CATALOG_GROUP
    serializer_class = ItemSerializer


categories = CategoryService()
items = ItemService()
