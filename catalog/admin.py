from django.contrib import admin

from catalog.models import Category, Item
from catalog.services import categories, items
from myproject.admin import ServiceAdmin


@admin.register(Category)
class CategoryAdmin(ServiceAdmin):
    service = categories
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Item)
class ItemAdmin(ServiceAdmin):
    service = items
    list_display = ("sku", "name", "category", "price", "stock", "enable", "updated_at")
    list_filter = ("enable", "category")
    list_select_related = ("category",)
    search_fields = ("sku", "name")
    autocomplete_fields = ("category",)
    readonly_fields = ("created_at", "updated_at")
